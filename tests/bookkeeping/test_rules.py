import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest

from bookkeeping import rules
from bookkeeping.rules import AccountInfo, PlanSnapshot


@dataclass
class Row:
    account: int
    debit: Decimal = Decimal("0")
    credit: Decimal = Decimal("0")
    cost_centre: str = ""


def codes(problems):
    return [p.code for p in problems]


def test_balanced_voucher_passes():
    assert rules.check_balance([Row(1930, Decimal("100.00")), Row(3011, credit=Decimal("100.00"))]) == []


def test_guide_journal_a25_balances():
    # The property-ledger guide's journal A25: 83 849 on each side.
    rows = [Row(1101, credit=Decimal("12000")), Row(1510, Decimal("83849")), Row(2610, credit=Decimal("904")),
            Row(3011, credit=Decimal("65568")), Row(3015, credit=Decimal("5247")), Row(3016, credit=Decimal("130"))]
    assert rules.check_balance(rows) == []


def test_one_row_is_refused():
    assert "too_few_rows" in codes(rules.check_balance([Row(1930, Decimal("1"))]))


def test_unbalanced_names_the_difference():
    problems = rules.check_balance([Row(1930, Decimal("100.00")), Row(3011, credit=Decimal("99.99"))])
    assert codes(problems) == ["unbalanced"]
    assert "0.01" in str(problems[0])


def test_negative_amount_is_refused_even_when_balanced():
    problems = rules.check_balance([Row(1930, Decimal("-100")), Row(3011, credit=Decimal("-100"))])
    assert codes(problems).count("negative_amount") == 2


def test_more_than_two_decimals_is_refused():
    problems = rules.check_balance([Row(1930, Decimal("10.005")), Row(3011, credit=Decimal("10.005"))])
    assert "too_many_decimals" in codes(problems)


def test_row_with_both_sides_or_none():
    problems = rules.check_balance([Row(1930, Decimal("5"), Decimal("5")), Row(3011), Row(1510, Decimal("1")),
                                    Row(2610, credit=Decimal("1"))])
    assert "debit_and_credit" in codes(problems)
    assert "zero_row" in codes(problems)


@pytest.fixture
def plan():
    year = dt.date(2026, 1, 1)
    return PlanSnapshot(
        system="fortnox",
        accounts={
            1930: AccountInfo(1930, "Bank", cost_centre_setting="not_allowed", is_balance=True),
            3011: AccountInfo(3011, "Hyror", cost_centre_setting="mandatory"),
            5010: AccountInfo(5010, "Lokalhyra"),
            3740: AccountInfo(3740, "Öresutjämning", active=False),
        },
        cost_centres={"100": True, "900": False},
        series={"A": True, "B": False},
        financial_years=[(year, dt.date(2026, 12, 31), "1")],
        locked_until=dt.date(2026, 3, 31),
        imported=True,
    )


def test_unknown_and_inactive_accounts(plan):
    problems = rules.check_accounts(plan, [Row(9999, Decimal("1")), Row(3740, credit=Decimal("1"))])
    assert codes(problems) == ["unknown_account", "inactive_account"]
    assert problems[0].row == 1 and problems[1].row == 2


def test_cost_centre_rules(plan):
    rows = [Row(3011), Row(1930, cost_centre="100"), Row(5010, cost_centre="777"), Row(5010, cost_centre="900"),
            Row(3011, cost_centre="100")]
    assert codes(rules.check_cost_centres(plan, rows)) == [
        "cost_centre_required", "cost_centre_not_allowed", "unknown_cost_centre", "inactive_cost_centre"]


def test_series_rules(plan):
    assert codes(rules.check_series(plan, "A")) == []
    assert codes(rules.check_series(plan, "B")) == ["series_not_manual"]
    assert codes(rules.check_series(plan, "Q")) == ["unknown_series"]


def test_financial_year_and_locked_period(plan):
    assert codes(rules.check_financial_year(plan, dt.date(2027, 1, 5))) == ["no_financial_year"]
    assert codes(rules.check_locked_period(plan, dt.date(2026, 3, 31))) == ["locked_period"]
    assert rules.check_locked_period(plan, dt.date(2026, 4, 1)) == []


def test_posting_date_policy(plan):
    day, problems = rules.posting_date(plan, dt.date(2026, 2, 10), policy="refuse")
    assert day == dt.date(2026, 2, 10) and codes(problems) == ["locked_period"]
    day, problems = rules.posting_date(plan, dt.date(2026, 2, 10), policy="first_open")
    assert day == dt.date(2026, 4, 1) and problems == []
    # no open financial year after the date: still refused, even with first_open
    day, problems = rules.posting_date(plan, dt.date(2027, 2, 10), policy="first_open")
    assert codes(problems) == ["no_financial_year"]


def test_profit_and_loss_rule(plan):
    assert rules.check_profit_and_loss(plan, 5010) == []
    problem, = rules.check_profit_and_loss(plan, 1930)
    assert problem.code == "balance_account" and "drift" in str(problem)


def test_preflight_needs_an_imported_plan():
    problems = rules.preflight(PlanSnapshot(system="fortnox"), rows=[Row(1930, Decimal("1")),
                                                                   Row(3011, credit=Decimal("1"))],
                               day=dt.date(2026, 5, 1))
    assert codes(problems) == ["no_account_plan"]


def test_a_plan_without_any_financial_year_says_to_import_again():
    # e.g. a Dinero plan imported before accounting years were read
    plan = PlanSnapshot(system="dinero", imported=True)
    [problem] = rules.check_financial_year(plan, dt.date(2026, 3, 1))
    assert problem.code == "no_financial_year" and "import its master data again" in problem.message
