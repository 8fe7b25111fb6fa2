"""The bookkeeping rules, each in exactly one function, used by the admin, services and connectors.

Every rule returns a list of ``Problem``; an empty list means the rule holds. The rules work on
plain values (rows with account, debit, credit, cost centre) and a ``PlanSnapshot`` of the
company's account plan, so they can check a voucher before it exists in the database (an import
preview) as well as one that does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from django.utils.translation import gettext_lazy as _

from wording import Msg

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    row: int | None = None  # 1-based row number, when the problem belongs to a row

    def __str__(self) -> str:
        # A Msg (a str carrying its code), so that it is stored as a code and shown translated.
        if self.row is not None:
            return Msg("Row %(row)s: %(message)s", row=self.row, message=self.message)
        return self.message if isinstance(self.message, str) else str(self.message)


class RowLike(Protocol):
    account: int
    debit: Decimal
    credit: Decimal
    cost_centre: str


@dataclass(frozen=True)
class AccountInfo:
    number: int
    name: str
    active: bool = True
    is_balance: bool = False
    cost_centre_setting: str = "allowed"


@dataclass
class PlanSnapshot:
    """What the rules need to know about one company's account plan in one target system."""

    system: str
    accounts: dict[int, AccountInfo] = field(default_factory=dict)
    cost_centres: dict[str, bool] = field(default_factory=dict)  # code -> active
    series: dict[str, bool] = field(default_factory=dict)  # code -> allows manual vouchers
    financial_years: list[tuple[date, date, str]] = field(default_factory=list)  # (start, end, remote id)
    locked_until: date | None = None
    imported: bool = False

    def financial_year_for(self, day: date) -> tuple[date, date, str] | None:
        for start, end, remote_id in self.financial_years:
            if start <= day <= end:
                return start, end, remote_id
        return None


def account_key(value) -> int | None:
    """An account number as the plan keys it; None for a placeholder such as 'FEL'."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _two_places(amount: Decimal) -> bool:
    return amount == amount.quantize(CENT)


def check_balance(rows: Iterable[RowLike]) -> list[Problem]:
    """At least two rows, no negative amounts, at most two decimals, total debit = total credit."""
    rows = list(rows)
    problems: list[Problem] = []
    if len(rows) < 2:
        problems.append(Problem("too_few_rows", Msg("A voucher needs at least two rows.")))
    debit_total = credit_total = ZERO
    for index, row in enumerate(rows, start=1):
        debit, credit = Decimal(row.debit or 0), Decimal(row.credit or 0)
        if debit < 0 or credit < 0:
            problems.append(Problem("negative_amount", Msg("Amounts cannot be negative; use the other column."), index))
        if not (_two_places(debit) and _two_places(credit)):
            problems.append(Problem("too_many_decimals", Msg("Amounts have at most two decimals."), index))
        if debit and credit:
            problems.append(Problem("debit_and_credit", Msg("A row has either a debit or a credit, not both."), index))
        if not debit and not credit:
            problems.append(Problem("zero_row", Msg("The row has no amount."), index))
        debit_total += debit
        credit_total += credit
    if debit_total != credit_total:
        problems.append(Problem(
            "unbalanced",
            Msg("Debit %(debit)s and credit %(credit)s differ by %(diff)s.", debit=f"{debit_total:.2f}", credit=f"{credit_total:.2f}", diff=f"{debit_total - credit_total:.2f}"),
        ))
    return problems


def _account_problem(plan: PlanSnapshot, number, row: int | None) -> Problem | None:
    account = plan.accounts.get(account_key(number))
    if account is None:
        return Problem("unknown_account", Msg("Account %(account)s is not in the account plan.", account=number), row)
    if not account.active:
        return Problem("inactive_account", Msg("Account %(account)s is not active.", account=number), row)
    return None


def check_accounts(plan: PlanSnapshot, rows: Iterable[RowLike]) -> list[Problem]:
    """Every account exists in the plan and is active."""
    found = (_account_problem(plan, row.account, index) for index, row in enumerate(rows, start=1))
    return [problem for problem in found if problem]


def check_account_number(plan: PlanSnapshot, number: int) -> list[Problem]:
    """One account number on its own (mappings, settings): exists and is active."""
    problem = _account_problem(plan, number, None)
    return [problem] if problem else []


def check_profit_and_loss(plan: PlanSnapshot, number: int) -> list[Problem]:
    """Only P&L accounts may be expense categories (Dinero refuses balance accounts on purchases)."""
    account = plan.accounts.get(account_key(number))
    if account is not None and account.is_balance:
        return [Problem(
            "balance_account",
            Msg("Account %(account)s is a balance-sheet account. Dinero only accepts categories from the "
              "profit and loss (drift) accounts; a balance account causes an integration error. "
              "Choose an expense account instead.", account=number),
        )]
    return []


# Which side of the books each mapping kind's account must be on (the rest: any active account).
PROFIT_AND_LOSS_KINDS = frozenset({"sales_region", "fee"})
BALANCE_KINDS = frozenset({"receivable", "bank", "output_vat"})


def check_mapping_account(plan: PlanSnapshot, kind: str, number: int) -> list[Problem]:
    """What a mapping row of ``kind`` may point at: an active account of the plan, and for an expense
    category a profit-and-loss account only (the one P&L rule), for sales and fees P&L, for the
    reconciliation, bank and output VAT accounts the balance sheet."""
    problems = check_account_number(plan, number)
    if problems:
        return problems
    if kind == "expense_category":
        return check_profit_and_loss(plan, number)
    account = plan.accounts[account_key(number)]
    if kind in PROFIT_AND_LOSS_KINDS and account.is_balance:
        return [Problem("balance_account", Msg("Account %(account)s %(name)s is a balance-sheet account; choose a "
                                               "profit-and-loss account.", account=number, name=account.name))]
    if kind in BALANCE_KINDS and not account.is_balance:
        return [Problem("profit_and_loss_account",
                        Msg("Account %(account)s %(name)s is a profit-and-loss account; choose a balance-sheet "
                            "account.", account=number, name=account.name))]
    return []


def _awaits_mapping(row) -> bool:
    return bool(getattr(row, "unmapped_keys", ()))


def check_mapped(rows: Iterable[RowLike]) -> list[Problem]:
    """Every source value a row carries has a mapping; until then the voucher waits (it is not refused)."""
    from .models import MappingKind

    problems = []
    for index, row in enumerate(rows, start=1):
        for kind, key in getattr(row, "unmapped_keys", ()):
            label = MappingKind(kind).label if kind in MappingKind.values else kind
            problems.append(Problem(
                "unmapped", Msg("%(kind)s “%(key)s” has no mapping yet; map it on the unmapped-values page.", kind=label,
                              key=key), index))
    return problems


def check_cost_centres(plan: PlanSnapshot, rows: Iterable[RowLike]) -> list[Problem]:
    """Cost centre required, not allowed, unknown or inactive, per the account's setting."""
    problems = []
    for index, row in enumerate(rows, start=1):
        code = (row.cost_centre or "").strip()
        account = plan.accounts.get(account_key(row.account))
        setting = account.cost_centre_setting if account else "allowed"
        if not code:
            if setting == "mandatory":
                problems.append(Problem(
                    "cost_centre_required",
                    Msg("Account %(account)s requires a cost centre.", account=row.account), index,
                ))
            continue
        if setting == "not_allowed":
            problems.append(Problem(
                "cost_centre_not_allowed",
                Msg("Account %(account)s does not allow a cost centre.", account=row.account), index,
            ))
        elif code not in plan.cost_centres:
            problems.append(Problem(
                "unknown_cost_centre", Msg("Cost centre %(code)s does not exist.", code=code), index
            ))
        elif not plan.cost_centres[code]:
            problems.append(Problem(
                "inactive_cost_centre", Msg("Cost centre %(code)s is not active.", code=code), index
            ))
    return problems


def check_series(plan: PlanSnapshot, series: str) -> list[Problem]:
    """The voucher series exists and allows manual (API) vouchers."""
    if not series:
        return [Problem("no_series", Msg("The voucher has no series."))]
    if series not in plan.series:
        return [Problem("unknown_series", Msg("Voucher series %(series)s does not exist.", series=series))]
    if not plan.series[series]:
        return [Problem(
            "series_not_manual",
            Msg("Voucher series %(series)s does not allow manual vouchers (tick 'Manuell kontering' in Fortnox).", series=series),
        )]
    return []


def check_financial_year(plan: PlanSnapshot, day: date) -> list[Problem]:
    """A financial year covers the date."""
    if not plan.financial_years:
        # E.g. a Dinero plan imported before accounting years were read: say what to do.
        return [Problem(
            "no_financial_year",
            Msg("No financial years have been imported from the target yet; import its master data again."),
        )]
    if plan.financial_year_for(day) is None:
        return [Problem(
            "no_financial_year", Msg("No financial year covers %(date)s. Create it in the target first.", date=day)
        )]
    return []


def check_locked_period(plan: PlanSnapshot, day: date) -> list[Problem]:
    """The date is after the locked period."""
    if plan.locked_until and day <= plan.locked_until:
        return [Problem(
            "locked_period",
            Msg("%(date)s is inside the locked period (locked until %(locked)s).", date=day, locked=plan.locked_until),
        )]
    return []


def first_open_date(plan: PlanSnapshot, day: date) -> date | None:
    """The first date on or after ``day`` that is after the locked period and inside a financial year."""
    candidate = day
    if plan.locked_until and candidate <= plan.locked_until:
        candidate = plan.locked_until + timedelta(days=1)
    for start, end, _remote in sorted(plan.financial_years):
        if end < candidate:
            continue
        return max(candidate, start)
    return None


def posting_date(plan: PlanSnapshot, day: date, *, policy: str) -> tuple[date, list[Problem]]:
    """Decide the date a voucher is posted on.

    policy ``refuse`` (the default): a locked period or missing financial year is a problem.
    policy ``first_open``: move the voucher to the first open date; the caller keeps the original
    date in the voucher text.
    """
    problems = check_locked_period(plan, day) + check_financial_year(plan, day)
    if not problems or policy != "first_open":
        return day, problems
    moved = first_open_date(plan, day)
    if moved is None:
        return day, problems
    return moved, []


def _renumbered(problems: list[Problem], rows: list) -> list[Problem]:
    """Row numbers of problems found on the mapped rows only, given back as positions among all rows."""
    mapped = [index for index, row in enumerate(rows, start=1) if not _awaits_mapping(row)]
    return [Problem(p.code, p.message, mapped[p.row - 1]) if p.row else p for p in problems]


def preflight(plan: PlanSnapshot, *, rows, day: date, series: str = "", require_series: bool = False,
              locked_period_policy: str = "refuse") -> list[Problem]:
    """Every rule a voucher must pass before it is sent."""
    rows = list(rows)
    problems = check_balance(rows)
    if not plan.imported:
        problems.append(Problem(
            "no_account_plan", Msg("The account plan has not been imported yet; import master data first.")
        ))
        return problems
    # A row still waiting for a mapping has no target account yet: it is reported as waiting, not as wrong.
    problems += check_mapped(rows)
    problems += _renumbered(check_accounts(plan, [r for r in rows if not _awaits_mapping(r)]), rows)
    problems += _renumbered(check_cost_centres(plan, [r for r in rows if not _awaits_mapping(r)]), rows)
    if require_series:
        problems += check_series(plan, series)
    _date, date_problems = posting_date(plan, day, policy=locked_period_policy)
    problems += date_problems
    return problems


# --- sales regions ------------------------------------------------------------------------------

# The 27 EU member states (ISO 3166-1 alpha-3, as payment providers report countries). Special
# territories outside the EU VAT area (Åland, the Canary Islands …) are not modelled.
EU_MEMBER_STATES = frozenset({
    "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL",
    "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE",
})
_ALPHA2_TO_ALPHA3 = {
    "AT": "AUT", "BE": "BEL", "BG": "BGR", "HR": "HRV", "CY": "CYP", "CZ": "CZE", "DK": "DNK", "EE": "EST",
    "FI": "FIN", "FR": "FRA", "DE": "DEU", "GR": "GRC", "EL": "GRC", "HU": "HUN", "IE": "IRL", "IT": "ITA",
    "LV": "LVA", "LT": "LTU", "LU": "LUX", "MT": "MLT", "NL": "NLD", "PL": "POL", "PT": "PRT", "RO": "ROU",
    "SK": "SVK", "SI": "SVN", "ES": "ESP", "SE": "SWE",
}

REGION_SWEDEN = "se"
REGION_EU = "eu"
REGION_WORLD = "world"
# How staff read a region (sv: Sverige / EU / utanför EU); the values are what Kontera stores.
REGION_CHOICES = [(REGION_SWEDEN, _("Sweden")), (REGION_EU, _("EU")), (REGION_WORLD, _("outside the EU"))]
REGION_LABELS = dict(REGION_CHOICES)


def sales_region(country: str) -> str | None:
    """The one place that decides a customer's sales region: Sweden, another EU member state, or the world.

    ``country`` is ISO 3166-1 alpha-3 (alpha-2 is accepted too); ``None`` when it is unknown, so
    that the caller asks staff instead of guessing. Norway, Switzerland and the UK are outside the EU.
    """
    code = (country or "").strip().upper()
    if len(code) not in (2, 3) or not code.isalpha():
        return None
    code = _ALPHA2_TO_ALPHA3.get(code, code)
    if code == "SWE":
        return REGION_SWEDEN
    return REGION_EU if code in EU_MEMBER_STATES else REGION_WORLD
