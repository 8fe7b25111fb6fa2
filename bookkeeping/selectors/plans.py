from __future__ import annotations

from ..models import AccountKind, AccountPlan
from ..rules import AccountInfo, PlanSnapshot


def account_plan(company, system: str) -> AccountPlan:
    plan, _created = AccountPlan.objects.get_or_create(company=company, system=system)
    return plan


def plan_snapshot(company, system: str) -> PlanSnapshot:
    """A read-only picture of the company's account plan in ``system`` for the rules."""
    plan = AccountPlan.objects.filter(company=company, system=system).first()
    if plan is None:
        return PlanSnapshot(system=system)
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
