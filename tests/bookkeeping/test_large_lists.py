"""The lists at a million vouchers (issue 15): stored totals kept by the write paths and backfilled by the
migration, counts that estimate beyond 10,000 and say so, filters read from the companies table.

Every test of the suite also checks, when it ends, that each voucher's stored totals are its rows' sums
(``_voucher_totals_hold`` in tests/conftest.py): the imports, expense documents, payouts and the admin's
row editing are held to it by their own tests too."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from bookkeeping.admin.lists import CompanyFilter, EstimatedCountPaginator
from bookkeeping.models import Voucher
from bookkeeping.selectors import counts
from bookkeeping.services.bulk import vouchers_insert
from ledger_journals.services.journal_import import journals_import
from tests.factories import (
    CompanyFactory,
    UserFactory,
    VoucherRowFactory,
    balanced_voucher,
    fortnox_plan,
    vouchers_with_wrong_totals,
)
from tests.ledger_journals.test_bulk_import import csv_file

LIST = "admin:bookkeeping_voucher_changelist"


def _paginator_text(response) -> str:
    found = re.search(r'<p class="paginator">(.*?)</p>', response.content.decode(), re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def _stored(reference: str) -> tuple[Decimal, Decimal]:
    return Voucher.objects.values_list("debit_total", "credit_total").get(source_reference=reference)


# --- totals on every write path ------------------------------------------------------------------


def test_bulk_insert_sums_each_vouchers_rows_into_its_totals(company):
    # Rows as generators, as the journal import gives them (COPY on PostgreSQL, bulk_create on SQLite).
    base = {"company_id": company.pk, "system": "fortnox", "kind": "journal", "source_system": "ledger",
            "date": dt.date(2026, 1, 5), "series": "A"}
    rows = [[{"account": "1510", "debit": Decimal("125.40"), "credit": Decimal("0")},
             {"account": "3011", "credit": Decimal("100.32")}, {"account": "2610", "credit": Decimal("25.08")}],
            [],
            [{"account": "1930", "debit": Decimal("0.01"), "credit": Decimal("0.00")}]]
    ids = vouchers_insert(vouchers=[{**base, "source_reference": f"B{i}", "description": f"B{i}"} for i in range(3)],
                          rows=((dict(row) for row in voucher_rows) for voucher_rows in rows))
    assert len(ids) == 3
    assert _stored("B0") == (Decimal("125.40"), Decimal("125.40"))
    assert _stored("B1") == (Decimal("0.00"), Decimal("0.00"))
    assert _stored("B2") == (Decimal("0.01"), Decimal("0.00"))
    assert Voucher.objects.get(source_reference="B0").rows.count() == 3


def test_a_journal_imported_again_with_other_amounts_gets_their_totals(company):
    fortnox_plan(company, accounts=(1510, 3011), cost_centres=("100",))
    day = timezone.localdate().isoformat()
    journals_import(company=company, data=csv_file([("J1", day, "1510", "100.00", "", "", "", "hyra"),
                                                    ("J1", day, "3011", "", "100.00", "100", "", "hyra")]),
                    filename="j.csv", actor="test")
    assert _stored("J1") == (Decimal("100.00"), Decimal("100.00"))
    result = journals_import(company=company, data=csv_file([("J1", day, "1510", "80.50", "", "", "", "hyra"),
                                                             ("J1", day, "3011", "", "80.00", "100", "", "hyra"),
                                                             ("J1", day, "3011", "", "0.50", "100", "", "öre")]),
                             filename="j.csv", actor="test")
    assert result.updated == 1
    assert _stored("J1") == (Decimal("80.50"), Decimal("80.50"))


def test_rows_edited_on_the_voucher_page_change_its_totals(client, superuser):
    voucher = balanced_voucher(rows=((1930, "10.00", "0"), (3011, "0", "10.00")))
    voucher.state = "failed"
    voucher.save()
    rows = list(voucher.rows.order_by("position"))
    client.force_login(superuser)
    form = {
        "company": voucher.company_id, "system": "fortnox", "kind": "journal", "source_system": "ledger",
        "source_reference": voucher.source_reference, "date": voucher.date.isoformat(),
        "description": voucher.description, "series": "A", "currency": "SEK",
        "rows-TOTAL_FORMS": "3", "rows-INITIAL_FORMS": "2", "rows-MIN_NUM_FORMS": "0", "rows-MAX_NUM_FORMS": "1000",
        "audit_events-TOTAL_FORMS": "0", "audit_events-INITIAL_FORMS": "0",
        "audit_events-MIN_NUM_FORMS": "0", "audit_events-MAX_NUM_FORMS": "1000",
    }
    for i, (row, debit, credit) in enumerate(((rows[0], "12.00", "0.00"), (rows[1], "0.00", "7.00"))):
        form.update({f"rows-{i}-id": row.pk, f"rows-{i}-voucher": voucher.pk, f"rows-{i}-position": i,
                     f"rows-{i}-account": row.account, f"rows-{i}-debit": debit, f"rows-{i}-credit": credit})
    form.update({"rows-2-voucher": voucher.pk, "rows-2-position": 2, "rows-2-account": "2610",
                 "rows-2-debit": "0.00", "rows-2-credit": "5.00"})
    response = client.post(reverse("admin:bookkeeping_voucher_change", args=[voucher.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _stored(voucher.source_reference) == (Decimal("12.00"), Decimal("12.00"))
    # and a row deleted there
    form.update({"rows-TOTAL_FORMS": "2", "rows-1-DELETE": "on"})
    for key in [k for k in form if k.startswith("rows-2-")]:
        del form[key]
    client.post(reverse("admin:bookkeeping_voucher_change", args=[voucher.pk]), form)
    assert _stored(voucher.source_reference) == (Decimal("12.00"), Decimal("5.00"))


def test_the_check_after_each_test_sees_a_row_written_past_the_services(company):
    """The suite-wide check is real: a row written behind the services' back is found."""
    voucher = balanced_voucher(company)
    assert vouchers_with_wrong_totals() == []
    voucher.rows.filter(position=0).update(debit=Decimal("99.00"))
    assert vouchers_with_wrong_totals() == [(voucher.pk, (Decimal("100.00"), Decimal("100.00")),
                                             (Decimal("99.00"), Decimal("100.00")))]
    voucher.rows.filter(position=0).update(debit=Decimal("100.00"))  # leave the books as they were


# --- the backfill migration -------------------------------------------------------------------


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_totals_of_the_vouchers_already_there(monkeypatch):
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    old = _migrate([("bookkeeping", "0009_dispatch_lease")])
    Company = old.get_model("bookkeeping", "Company")
    OldVoucher = old.get_model("bookkeeping", "Voucher")
    OldRow = old.get_model("bookkeeping", "VoucherRow")
    company = Company.objects.create(slug="gammal", name="Gammal AB", country="SE")
    made = []
    for n in range(5):  # in three slices of two: the backfill goes slice by slice
        voucher = OldVoucher.objects.create(company=company, system="fortnox", kind="journal", source_system="ledger",
                                            source_reference=f"G{n}", date=dt.date(2026, 1, 5), description="x")
        for position, (debit, credit) in enumerate([(Decimal(f"{n}.25"), 0), (0, Decimal(f"{n}.20")),
                                                    (0, Decimal("0.05"))][:n]):
            OldRow.objects.create(voucher=voucher, position=position, account="1930", debit=debit, credit=credit)
        made.append(voucher.pk)
    import importlib

    backfill = importlib.import_module("bookkeeping.migrations.0010_stored_totals_and_list_indexes")
    monkeypatch.setattr(backfill, "BACKFILL_SLICE", 2)
    _migrate(latest)
    stored = dict(Voucher.objects.filter(pk__in=made).values_list("source_reference", "debit_total"))
    assert stored == {"G0": Decimal("0.00"), "G1": Decimal("1.25"), "G2": Decimal("2.25"), "G3": Decimal("3.25"),
                      "G4": Decimal("4.25")}
    assert vouchers_with_wrong_totals() == []


# --- counts: exact up to 10,000, then "about N" ---------------------------------------------------


def test_a_list_beyond_the_exact_limit_says_about_and_the_estimate(client, superuser, monkeypatch):
    company = CompanyFactory()
    for n in range(4):
        balanced_voucher(company, source_reference=f"E{n}")
    client.force_login(superuser)
    assert _paginator_text(client.get(reverse(LIST))) == "4 vouchers"

    monkeypatch.setattr(counts, "EXACT_UP_TO", 3)
    monkeypatch.setattr(counts, "planner_estimate", lambda queryset: 123456)
    response = client.get(reverse(LIST))
    assert _paginator_text(response).endswith(" about 123456 vouchers")  # after the page links
    page = response.content.decode()
    assert "E0" in page and "E3" in page  # the rows themselves are still listed
    page = client.get(reverse(LIST), {"q": "E"}).content.decode()
    assert "about 123456 results" in page
    page = client.get(reverse(LIST), headers={"accept-language": "sv"}).content.decode()
    assert "ungefär 123456 verifikationer" in page
    page = client.get(reverse(LIST), headers={"accept-language": "da"}).content.decode()
    assert "cirka 123456 bilag" in page


def test_an_estimate_is_never_below_the_exact_limit_and_sqlite_counts_exactly(company, monkeypatch):
    for n in range(5):
        balanced_voucher(company, source_reference=f"C{n}")
    monkeypatch.setattr(counts, "EXACT_UP_TO", 3)
    paginator = EstimatedCountPaginator(Voucher.objects.order_by("pk"), 2)
    if connection.vendor == "postgresql":
        assert paginator.count >= 4 and paginator.estimated
    else:
        assert (paginator.count, paginator.estimated) == (5, False)
    monkeypatch.setattr(counts, "planner_estimate", lambda queryset: 1)
    assert counts.count_or_estimate(Voucher.objects.all()) == (4, True)


@pytest.mark.postgres
def test_postgresql_estimates_from_its_statistics(company, monkeypatch):
    for n in range(30):
        balanced_voucher(company, source_reference=f"P{n}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bookkeeping_voucher")
    monkeypatch.setattr(counts, "EXACT_UP_TO", 10)
    count, estimated = counts.count_or_estimate(Voucher.objects.filter(company=company))
    assert estimated and 11 <= count <= 300


# --- the company filter: the companies table, as far as the user may see -------------------------


def test_the_company_filter_lists_the_companies_the_user_serves_not_those_with_vouchers(client, superuser):
    mine = CompanyFactory(name="Mitt Bolag AB")
    mine_empty = CompanyFactory(name="Mitt Tomma AB")  # no vouchers: DISTINCT over vouchers would miss it
    theirs = CompanyFactory(name="Deras AB")
    balanced_voucher(mine, source_reference="MINE-001")
    balanced_voucher(theirs, source_reference="THEIRS-001")
    anna = UserFactory(username="anna-filter")
    anna.groups.add(Group.objects.get(name="Bookkeeper"))
    mine.members.add(anna)
    mine_empty.members.add(anna)

    client.force_login(anna)
    response = client.get(reverse(LIST))
    company_filter = next(spec for spec in response.context["cl"].filter_specs if isinstance(spec, CompanyFilter))
    assert [label for _value, label in company_filter.lookup_choices] == ["Mitt Bolag AB", "Mitt Tomma AB"]
    page = response.content.decode()
    assert "Deras AB" not in page and "MINE-001" in page and "THEIRS-001" not in page
    # another company's id in the address shows nothing of it
    page = client.get(reverse(LIST), {"company__id__exact": theirs.pk}).content.decode()
    assert "THEIRS-001" not in page and "0 vouchers" in page
    page = client.get(reverse(LIST), {"company__id__exact": "x"}).content.decode()
    assert "MINE-001" not in page

    client.force_login(superuser)
    response = client.get(reverse(LIST), {"company__id__exact": mine.pk})
    company_filter = next(spec for spec in response.context["cl"].filter_specs if isinstance(spec, CompanyFilter))
    assert {"Mitt Bolag AB", "Mitt Tomma AB", "Deras AB"} <= {label for _v, label in company_filter.lookup_choices}
    page = response.content.decode()
    assert "MINE-001" in page and "THEIRS-001" not in page


def test_the_audit_trail_filters_by_company_from_the_companies_table(client, db):
    mine, theirs = CompanyFactory(name="Mitt Bolag AB"), CompanyFactory(name="Deras AB")
    user = UserFactory(username="eva-filter")
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    mine.members.add(user)
    client.force_login(user)
    response = client.get(reverse("admin:bookkeeping_auditevent_changelist"))
    company_filter = next(spec for spec in response.context["cl"].filter_specs if isinstance(spec, CompanyFilter))
    assert [label for _value, label in company_filter.lookup_choices] == ["Mitt Bolag AB"]
    assert theirs.name not in response.content.decode()


# --- the list reads the stored totals; search through indexed fields ------------------------------


def test_the_list_shows_and_sorts_by_the_stored_total(client, superuser):
    company = CompanyFactory()
    balanced_voucher(company, source_reference="SMALL", rows=((1930, "5.00", "0"), (3011, "0", "5.00")))
    big = balanced_voucher(company, source_reference="BIG", rows=((1930, "900.00", "0"), (3011, "0", "900.00")))
    VoucherRowFactory(voucher=big, position=2, account=1510, debit=Decimal("0.50"))
    client.force_login(superuser)
    page = client.get(reverse(LIST), {"o": "-5"}).content.decode()
    assert "900.50" in page and page.index("BIG") < page.index("SMALL")
    page = client.get(reverse(LIST), {"o": "5"}).content.decode()
    assert page.index("SMALL") < page.index("BIG")


def test_search_by_reference_words_and_the_number_in_the_target(client, superuser):
    company = CompanyFactory()
    posted = balanced_voucher(company, source_reference="A-2026-0042", description="Hyra lokal mars")
    Voucher.objects.filter(pk=posted.pk).update(remote_number="742", remote_id="fx-77")
    balanced_voucher(company, source_reference="B-7", description="Snöröjning")
    client.force_login(superuser)

    def found(term):
        page = client.get(reverse(LIST), {"q": term}).content.decode()
        return {ref for ref in ("A-2026-0042", "B-7") if ref in page}

    assert found("a-2026") == {"A-2026-0042"}
    assert found("lokal") == {"A-2026-0042"}
    assert found("SNöRöJ") == {"B-7"}
    assert found("742") == {"A-2026-0042"} and found("74") == set()  # the target's number is matched whole
    assert found("FX-77") == {"A-2026-0042"}
