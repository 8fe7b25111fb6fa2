from __future__ import annotations

import time

from django.db.models import Count, IntegerField, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce

from ..models import Account, AccountKind, AccountPlan
from ..rules import AccountInfo, PlanSnapshot


def account_plan(company, system: str) -> AccountPlan:
    plan, _created = AccountPlan.objects.get_or_create(company=company, system=system)
    return plan


# Sending a batch checks every voucher against the same plan; a snapshot is reused for a few
# seconds unless the plan was imported again meanwhile (the target checks again anyway).
_CACHE: dict[tuple[int, str], tuple[float, object, PlanSnapshot]] = {}
CACHE_SECONDS = 5.0


def plan_snapshot(company, system: str, *, fresh: bool = False) -> PlanSnapshot:
    """A read-only picture of the company's account plan in ``system`` for the rules."""
    # The plan and its accounts' stamp in one statement: a cached snapshot costs one query per call.
    accounts = Account.objects.filter(plan=OuterRef("pk")).order_by().values("plan")
    plan = (AccountPlan.objects.filter(company=company, system=system)
            .annotate(accounts_count=Coalesce(Subquery(accounts.annotate(n=Count("pk")).values("n"),
                                                       output_field=IntegerField()), 0),
                      accounts_last=Subquery(accounts.annotate(last=Max("pk")).values("last"),
                                             output_field=IntegerField()))
            .first())
    if plan is None:
        return PlanSnapshot(system=system)
    key = (plan.pk, system)
    stamp = (plan.imported_at, plan.locked_until, plan.accounts_count, plan.accounts_last)
    cached = _CACHE.get(key)
    now = time.monotonic()
    if not fresh and cached and cached[1] == stamp and now - cached[0] < CACHE_SECONDS:
        return cached[2]
    snapshot = _build(plan, system)
    _CACHE[key] = (now, stamp, snapshot)
    return snapshot


def forget_plan_snapshots() -> None:
    _CACHE.clear()


def _build(plan: AccountPlan, system: str) -> PlanSnapshot:
    accounts = {
        number: AccountInfo(number=number, name=name, active=active, is_balance=(kind == AccountKind.BALANCE),
                            cost_centre_setting=setting)
        for number, name, active, kind, setting in plan.accounts.values_list(
            "number", "name", "active", "kind", "cost_centre_setting"
        )
    }
    return PlanSnapshot(
        system=system,
        accounts=accounts,
        cost_centres=dict(plan.cost_centres.values_list("code", "active")),
        series=dict(plan.series.values_list("code", "manual")),
        financial_years=list(plan.financial_years.values_list("start", "end", "remote_id")),
        locked_until=plan.locked_until,
        imported=bool(accounts) or plan.imported_at is not None,
    )
