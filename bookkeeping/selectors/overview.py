"""Reads for the overview (the admin's home page): what needs attention per company and integration,
and the last 30 days per target system. Grouped counts over indexed columns only — one query each,
however many companies and vouchers there are."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from integrations.models import Integration

from ..models import AccountPlan, Voucher, VoucherState

S = VoucherState
# Queued (or being sent) for longer than this without reaching the target is "longer than expected":
# a healthy queue drains within minutes at the targets' rate limits.
QUEUE_PATIENCE = dt.timedelta(minutes=30)
CHART_DAYS = 30


@dataclass
class VoucherAttention:
    """Counts per (company, target system) that a person must look at."""

    failed: int = 0  # refused by the target (or given up after retries)
    preflight: int = 0  # cannot be sent: the pre-flight check refuses it (draft or failed)
    awaiting_authorisation: int = 0
    stuck: int = 0  # queued longer than expected

    @property
    def total(self) -> int:
        return self.failed + self.preflight + self.awaiting_authorisation + self.stuck


def vouchers_waiting_for_mappings(company_ids) -> dict[tuple[int, str], int]:
    """Per (company, target): vouchers not sent yet with a row whose source value has no mapping."""
    from .mappings import SENT_STATES

    vouchers = Voucher.objects.filter(rows__awaits_mapping=True).exclude(state__in=SENT_STATES)
    if company_ids is not None:
        vouchers = vouchers.filter(company_id__in=company_ids)
    rows = vouchers.values("company_id", "system").annotate(n=Count("id", distinct=True)).order_by()
    return {(row["company_id"], row["system"]): row["n"] for row in rows}


def voucher_attention(company_ids, *, now: dt.datetime | None = None) -> dict[tuple[int, str], VoucherAttention]:
    """One grouped query over the states that need someone (index voucher_state_company_idx); ``company_ids``
    None means every company."""
    now = now or timezone.now()
    vouchers = Voucher.objects.all() if company_ids is None else Voucher.objects.filter(company_id__in=company_ids)
    rows = (vouchers.filter(state__in=[S.FAILED, S.DRAFT, S.AWAITING_AUTHORISATION, S.QUEUED, S.SENDING])
            .values("company_id", "system", "state", "preflight_ok")
            .annotate(n=Count("id"), stuck=Count("id", filter=Q(queued_at__lt=now - QUEUE_PATIENCE)))
            .order_by())
    result: dict[tuple[int, str], VoucherAttention] = defaultdict(VoucherAttention)
    for row in rows:
        item = result[(row["company_id"], row["system"])]
        state, refused = row["state"], row["preflight_ok"] is False
        if state in (S.FAILED, S.DRAFT) and refused:
            item.preflight += row["n"]
        elif state == S.FAILED:
            item.failed += row["n"]
        elif state == S.AWAITING_AUTHORISATION:
            item.awaiting_authorisation += row["n"]
        elif state in (S.QUEUED, S.SENDING):
            item.stuck += row["stuck"]
    return dict(result)


@dataclass
class IntegrationSummary:
    integration: Integration
    remote_name: str = ""
    remote_number: str = ""
    override: dict = field(default_factory=dict)


def integration_summaries(company_ids) -> dict[int, list[IntegrationSummary]]:
    """Each company's integrations with the remote company they reach (name and organisation number)."""
    plans = AccountPlan.objects.all() if company_ids is None else AccountPlan.objects.filter(company_id__in=company_ids)
    integrations = Integration.objects.all() if company_ids is None else Integration.objects.filter(
        company_id__in=company_ids)
    plans = {(company_id, system): info or {} for company_id, system, info in
             plans.values_list("company_id", "system", "company_info")}
    result: dict[int, list[IntegrationSummary]] = defaultdict(list)
    for integration in integrations.order_by("company_id", "system"):
        remote = integration.remote_company or {}
        info = plans.get((integration.company_id, integration.system), {})
        result[integration.company_id].append(IntegrationSummary(
            integration=integration,
            remote_name=remote.get("name") or info.get("name") or "",
            remote_number=remote.get("organisation_number") or info.get("organisation_number") or "",
            override=remote.get("override") or {},
        ))
    return dict(result)


@dataclass
class ChartDay:
    day: dt.date
    posted: int = 0
    failed: int = 0
    waiting: int = 0

    @property
    def total(self) -> int:
        return self.posted + self.failed + self.waiting


def daily_chart(company_ids, *, days: int = CHART_DAYS, today: dt.date | None = None, systems=()
                ) -> dict[str, list[ChartDay]]:
    """Per target system and day of the last ``days``: vouchers posted that day, vouchers failed (by the
    day they failed) and vouchers waiting now (by the day they started waiting). Three grouped queries."""
    today = today or timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    start = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    zone = timezone.get_current_timezone()
    base = Voucher.objects.all() if company_ids is None else Voucher.objects.filter(company_id__in=company_ids)
    series: dict[str, dict[dt.date, ChartDay]] = {system: {} for system in systems}

    def add(rows, attribute):
        for system, day, n in rows:
            if day is None or not first <= day <= today:
                continue
            entry = series.setdefault(system, {}).setdefault(day, ChartDay(day))
            setattr(entry, attribute, getattr(entry, attribute) + n)

    add(base.filter(posted_at__gte=start).annotate(day=TruncDate("posted_at", tzinfo=zone))
        .values_list("system", "day").annotate(n=Count("id")).order_by(), "posted")
    add(base.filter(state=S.FAILED, updated_at__gte=start).annotate(day=TruncDate("updated_at", tzinfo=zone))
        .values_list("system", "day").annotate(n=Count("id")).order_by(), "failed")
    waiting = base.filter(state__in=[S.QUEUED, S.SENDING, S.AWAITING_AUTHORISATION, S.AWAITING_MAPPING])
    add(waiting.annotate(since=Coalesce("queued_at", "updated_at"))
        .annotate(day=TruncDate("since", tzinfo=zone)).values_list("system", "day").annotate(n=Count("id"))
        .order_by(), "waiting")
    # waiting since before the window: shown on its first day, so nothing waiting is left out
    early = (waiting.annotate(since=Coalesce("queued_at", "updated_at")).filter(since__lt=start)
             .values_list("system").annotate(n=Count("id")).order_by())
    add(((system, first, n) for system, n in early), "waiting")
    return {system: [days_of.get(first + dt.timedelta(days=i), ChartDay(first + dt.timedelta(days=i)))
                     for i in range(days)] for system, days_of in series.items()}
