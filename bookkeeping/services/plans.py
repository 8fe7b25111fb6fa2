"""Master data: the target's chart of accounts, cost centres, series, years and locked period."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from integrations import registry
from integrations.base import ConnectorError, MasterData
from integrations.models import Integration
from wording import Msg

from ..models import Account, AccountKind, AccountPlan, AuditEvent, CostCentre, FinancialYear, VatCode, VoucherSeries
from ..models.plans import Origin
from .audit import Actor, audit_record
from .preflight import vouchers_preflight_refresh


@dataclass
class ImportSummary:
    accounts: int = 0
    accounts_deactivated: int = 0
    cost_centres: int = 0
    series: int = 0
    financial_years: int = 0
    vat_codes: int = 0
    locked_until: str = ""


def chart_import(*, integration: Integration, actor: Actor = None, progress=None, connector=None) -> ImportSummary:
    """Read the target's master data (outside any transaction) and store it in one go."""
    connector = connector or registry.connector_for(integration)
    try:
        data = connector.import_master_data(progress=progress)
    except ConnectorError as exc:
        audit_record(action="master_data:import", outcome=AuditEvent.Outcome.ERROR, integration=integration,
                     actor=actor, http_status=exc.http_status, message=exc.message)
        raise
    summary = master_data_store(integration=integration, data=data)
    audit_record(
        action="master_data:import", outcome=AuditEvent.Outcome.OK, integration=integration, actor=actor,
        message=Msg("Imported %(accounts)s accounts, %(cost_centres)s cost centres, %(series)s series, "
                  "%(financial_years)s financial years.", **summary.__dict__),
        data=summary.__dict__,
    )
    return summary


def master_data_store(*, integration: Integration, data: MasterData) -> ImportSummary:
    now = timezone.now()
    summary = ImportSummary()
    with transaction.atomic():
        plan, _created = AccountPlan.objects.select_for_update().get_or_create(
            company=integration.company, system=integration.system
        )
        existing = {a.number: a for a in plan.accounts.all()}
        seen = set()
        for dto in data.accounts:
            seen.add(dto.number)
            values = {
                "name": dto.name[:200],
                "kind": AccountKind.BALANCE if dto.is_balance else AccountKind.PROFIT_AND_LOSS,
                "vat_code": dto.vat_code or "",
                "active": dto.active,
                "cost_centre_setting": dto.cost_centre_setting,
                "is_deposit": dto.is_deposit,
                "origin": Origin.IMPORTED,
                "imported_at": now,
            }
            account = existing.get(dto.number)
            if account is None:
                Account.objects.create(plan=plan, number=dto.number, **values)
            else:
                for field, value in values.items():
                    setattr(account, field, value)
                account.save()
            summary.accounts += 1
        # Imported accounts that vanished remotely are kept (history) but can no longer be used.
        summary.accounts_deactivated = plan.accounts.filter(origin=Origin.IMPORTED, active=True).exclude(
            number__in=seen).update(active=False)

        for dto in data.cost_centres:
            CostCentre.objects.update_or_create(plan=plan, code=dto.code,
                                                defaults={"name": dto.name[:200], "active": dto.active})
            summary.cost_centres += 1
        plan.cost_centres.exclude(code__in=[c.code for c in data.cost_centres]).update(active=False)

        for dto in data.series:
            VoucherSeries.objects.update_or_create(plan=plan, code=dto.code,
                                                   defaults={"description": dto.description[:200],
                                                             "manual": dto.manual})
            summary.series += 1
        plan.series.exclude(code__in=[s.code for s in data.series]).delete()

        plan.financial_years.all().delete()
        FinancialYear.objects.bulk_create(
            [FinancialYear(plan=plan, start=y.start, end=y.end, remote_id=y.remote_id) for y in data.financial_years]
        )
        summary.financial_years = len(data.financial_years)

        for dto in data.vat_codes:
            VatCode.objects.update_or_create(plan=plan, code=dto.code, defaults={"name": dto.name[:200],
                                                                                  "rate": dto.rate})
            summary.vat_codes += 1

        plan.locked_until = data.locked_until
        plan.imported_at = now
        plan.company_info = data.company_info
        plan.save()
        summary.locked_until = data.locked_until.isoformat() if data.locked_until else ""

        # The chart may have fixed what the pre-flight check refused (an account added, a year opened).
        company, system = integration.company, integration.system
        transaction.on_commit(lambda: vouchers_preflight_refresh(company=company, system=system))

        tenant = (data.company_info or {}).get("tenant_id")
        if tenant:
            locked = Integration.objects.select_for_update().get(pk=integration.pk)
            locked.settings = {**(locked.settings or {}), "tenant_id": tenant}
            locked.save(update_fields=["settings", "updated_at"])
            integration.settings = locked.settings
    return summary
