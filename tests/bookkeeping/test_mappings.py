"""The one resolution of a source value: its precedence, its checks, its suggestions, its cost per row."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from bookkeeping import rules
from bookkeeping.models import AccountMapping, AuditEvent
from bookkeeping.selectors.mappings import (
    RowSource,
    mapping_account_choices,
    mapping_problems,
    mapping_snapshot,
    mapping_suggestions,
)
from bookkeeping.selectors.plans import plan_snapshot
from bookkeeping.services.mappings import account_mapping_delete, account_mapping_save
from tests.factories import AccountMappingFactory, CompanyFactory, fortnox_plan


@pytest.fixture
def brf(db):
    company = CompanyFactory(slug="brf")
    fortnox_plan(company, accounts=(1510, 1930, 2610, 3011, 3015, 3016, 1101), cost_centres=("100", "200"))
    return company


def m(company, kind, key, account=None, **values):
    return AccountMappingFactory(company=company, kind=kind, key=key, account_number=account, **values)


def resolve(company, *keys, **explicit):
    return mapping_snapshot(company, "fortnox").resolve_row(RowSource(keys=tuple(keys), **explicit))


def test_a_specific_key_wins_over_the_kinds_default(brf):
    m(brf, "ledger_category", "*", 3016)
    m(brf, "ledger_category", "Hyra bostad", 3011, cost_centre="100")
    hit = resolve(brf, ("ledger_category", "Hyra bostad"))
    assert (hit.account, hit.cost_centre, hit.via) == (3011, "100", "mapping")
    other = resolve(brf, ("ledger_category", "Tvättstuga"))
    assert (other.account, other.via, other.key) == (3016, "default", "Tvättstuga")


def test_keys_ignore_case_and_extra_spaces(brf):
    m(brf, "ledger_category", "Hyra bostad", 3011)
    assert resolve(brf, ("ledger_category", "  HYRA   bostad ")).account == 3011


def test_the_most_specific_source_value_decides(brf):
    m(brf, "ledger_account", "1101", 1510)
    m(brf, "ledger_category", "P-plats", 3016)
    row = resolve(brf, ("addon_code", "X9"), ("ledger_category", "P-plats"), ("ledger_account", "1101"))
    assert (row.account, row.kind, row.key) == (3016, "ledger_category", "P-plats")
    # a mapping of the source's account beats the account being valid in Fortnox as it is
    assert resolve(brf, ("ledger_account", "1101")).account == 1510


def test_a_valid_target_account_without_mapping_passes_as_itself(brf):
    row = resolve(brf, ("ledger_account", "2610"))
    assert (row.account, row.via, row.unmapped) == (2610, "identity", ())
    # only where the source speaks in account numbers: a category called "3011" is not an account
    assert resolve(brf, ("ledger_category", "3011")).unmapped == (("ledger_category", "3011"),)


def test_an_explicit_target_value_wins_over_every_mapping(brf):
    m(brf, "ledger_account", "1101", 1510, cost_centre="100", project="P1")
    row = resolve(brf, ("ledger_account", "1101"), account="1930", cost_centre="200")
    assert (row.account, row.cost_centre, row.via) == (1930, "200", "explicit")


def test_unmapped_values_are_named_and_nothing_is_guessed(brf):
    row = resolve(brf, ("ledger_category", "Tvättstuga"), ("ledger_account", "9999"))
    assert row.account is None and row.via == "unmapped"
    assert row.unmapped == (("ledger_category", "Tvättstuga"), ("ledger_account", "9999"))
    fields = row.row_fields(RowSource(keys=(("ledger_category", "Tvättstuga"),)))
    assert fields["account"] == "" and fields["awaits_mapping"] is True


def test_a_property_gives_the_cost_centre_and_an_unmapped_property_waits(brf):
    m(brf, "property", "Gården 1", None, cost_centre="100")
    row = resolve(brf, ("ledger_account", "3011"), cost_centre_keys=(("property", "gården 1"),))
    assert (row.account, row.cost_centre, row.complete) == (3011, "100", True)
    row = resolve(brf, ("ledger_account", "3011"), cost_centre_keys=(("property", "Okänd väg 9"),))
    assert row.account == 3011 and row.unmapped == (("property", "Okänd väg 9"),)


def test_a_rows_own_vat_code_wins_over_the_mappings(db):
    company = CompanyFactory(slug="aps", country="DK")
    AccountMappingFactory(company=company, system="dinero", kind="expense_category", key="Kontorartikler",
                          account_number=7200, vat_code="I25")
    snapshot = mapping_snapshot(company, "dinero")
    assert snapshot.resolve_row(RowSource(keys=(("expense_category", "Kontorartikler"),))).vat_code == "I25"
    assert snapshot.resolve_row(RowSource(keys=(("expense_category", "Kontorartikler"),),
                                          vat_code="REP")).vat_code == "REP"


def test_one_query_serves_a_whole_file(brf, django_assert_num_queries):
    for n in range(30):
        m(brf, "ledger_category", f"kategori {n}", 3011)
    plan_snapshot(brf, "fortnox")  # the plan snapshot is cached for the batch
    # the plan snapshot's freshness check (1: the plan with its accounts' stamp) and the mapping rows (1),
    # however many rows are resolved
    with django_assert_num_queries(2):
        snapshot = mapping_snapshot(brf, "fortnox")
        results = [snapshot.resolve_row(RowSource(keys=(("ledger_category", f"kategori {n % 40}"),)))
                   for n in range(500)]
    assert sum(1 for r in results if r.account == 3011) == 380  # keys 0–29 of every 40 are mapped


# --- what a row may point at -------------------------------------------------------------------


def test_each_kind_points_at_its_side_of_the_books(brf):
    plan = plan_snapshot(brf, "fortnox")
    assert rules.check_mapping_account(plan, "sales_region", 1930)[0].code == "balance_account"
    assert rules.check_mapping_account(plan, "receivable", 3011)[0].code == "profit_and_loss_account"
    assert rules.check_mapping_account(plan, "ledger_account", 1930) == []
    assert rules.check_mapping_account(plan, "ledger_account", 4711)[0].code == "unknown_account"


def test_a_balance_account_can_never_be_a_dinero_category(db):
    company = CompanyFactory(slug="aps", country="DK")
    plan = fortnox_plan(company, accounts=(55000, 7200))
    plan.system = "dinero"
    plan.save()
    plan.accounts.filter(number=55000).update(kind="balance")  # Dinero: 50000–99999 is the balance sheet
    snapshot_plan = plan_snapshot(company, "dinero")
    problem = rules.check_mapping_account(snapshot_plan, "expense_category", 55000)[0]
    assert problem.code == "balance_account" and "profit and loss (drift)" in problem.message
    assert [a.number for a in mapping_account_choices(snapshot_plan, "expense_category")] == [7200]
    with pytest.raises(ValidationError) as caught:
        account_mapping_save(company=company, system="dinero", kind="expense_category", key="Bank",
                             account_number=55000)
    assert "balance-sheet account" in str(caught.value)
    assert not AccountMapping.objects.exists()


def test_what_each_kind_must_give(brf):
    def problems(kind, **values):
        return mapping_problems(company=brf, system="fortnox", kind=kind, key="x", **values)

    assert "account_number" in problems("ledger_category")
    assert "cost_centre" in problems("property")
    assert "account_number" in problems("property", account_number=3011, cost_centre="100")
    assert "series" in problems("owner")
    assert problems("owner", series="A") == {}
    assert "cost_centre" in problems("property", cost_centre="999")
    assert problems("property", cost_centre="100") == {}


def test_keys_differing_only_in_case_are_one_source_value(brf):
    account_mapping_save(company=brf, system="fortnox", kind="ledger_category", key="Hyra", account_number=3011)
    account_mapping_save(company=brf, system="fortnox", kind="ledger_category", key="HYRA", account_number=3015)
    assert list(AccountMapping.objects.values_list("key", "account_number")) == [("Hyra", 3015)]


def test_every_change_is_audited_with_who_made_it(brf, staff_user):
    mapping = account_mapping_save(company=brf, system="fortnox", kind="ledger_category", key="Hyra",
                                   account_number=3011, actor=staff_user)
    account_mapping_save(company=brf, system="fortnox", kind="ledger_category", key="Hyra", account_number=3011,
                         actor=staff_user)  # no change, no event
    account_mapping_delete(mapping=mapping, actor=staff_user)
    events = list(AuditEvent.objects.filter(action__startswith="mapping:").order_by("id"))
    assert [e.action for e in events] == ["mapping:created", "mapping:deleted"]
    assert all(e.actor == staff_user and e.company == brf for e in events)
    assert "“Hyra” → 3011" in events[0].message


def test_suggestions_for_an_unmapped_value(db):
    company = CompanyFactory(slug="aps", country="DK")
    plan = fortnox_plan(company, accounts=(7200, 7480, 55000))
    plan.system = "dinero"
    plan.save()
    plan.accounts.filter(number=7200).update(name="Kontorartikler og tryksager")
    plan.accounts.filter(number=55000).update(kind="balance")
    snapshot = mapping_snapshot(company, "dinero")
    assert [s.account for s in mapping_suggestions(snapshot, "expense_category", "kontorartikler")] == [7200]
    assert [s.account for s in mapping_suggestions(snapshot, "expense_category", "7480")] == [7480]
    assert mapping_suggestions(snapshot, "expense_category", "55000") == []  # a balance account is never offered


def test_card_payment_keys_are_regions_rates_or_the_default(brf):
    def problems(kind, key, account):
        return mapping_problems(company=brf, system="fortnox", kind=kind, key=key, account_number=account)

    assert problems("sales_region", "EU", 3011) == {}
    assert "key" in problems("sales_region", "Tyskland", 3011)
    assert problems("output_vat", "12,5", 2610) == {} and "key" in problems("output_vat", "25 %", 2610)
    assert problems("bank", "*", 1930) == {} and "key" in problems("bank", "SEK", 1930)
