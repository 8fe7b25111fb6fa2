"""A big journal file is written in bulk (COPY on PostgreSQL) and checked in memory: what it stores must be
exactly what the one-by-one path stores — every field, the pre-flight result, the waiting note."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from bookkeeping.models import AuditEvent, Voucher, VoucherRow, VoucherState
from bookkeeping.services.bulk import vouchers_insert
from bookkeeping.services.preflight import vouchers_preflight_refresh
from ledger_journals.services.journal_import import JournalImportError, journals_import
from tests.factories import fortnox_plan


@pytest.fixture
def plan(company):
    return fortnox_plan(company, accounts=(1510, 3011, 2610), cost_centres=("100",))


def csv_file(rows) -> bytes:
    lines = ["journal,date,account,debit,credit,cost_centre,category,text,fortnox_account"]
    lines += [",".join(row) + ("" if len(row) == 9 else ",") for row in rows]
    return ("\n".join(lines) + "\n").encode()


def test_new_journals_keep_the_preflight_result_the_stored_check_gives(company, plan):
    day = timezone.localdate().isoformat()
    data = csv_file([
        ("J1", day, "1510", "100.00", "", "", "", "fine"), ("J1", day, "3011", "", "100.00", "100", "", "fine"),
        ("J2", day, "1510", "50.00", "", "", "", "unknown account"), ("J2", day, "", "", "50.00", "", "", "x", "4999"),
        ("J3", day, "1510", "70.00", "", "", "", "unknown cost centre"), ("J3", day, "3011", "", "70.00", "999", "", ""),
        ("J4", day, "1510", "20.00", "", "", "", "waits"), ("J4", day, "", "", "20.00", "", "Tvättstuga", "waits"),
    ])
    result = journals_import(company=company, data=data, filename="j.csv", actor="test")
    assert (result.created, result.waiting) == (4, 1)
    stored = {v.source_reference: (v.preflight_ok, v.preflight_problems, v.last_error, v.last_error_code, v.state)
              for v in Voucher.objects.filter(company=company)}
    assert stored["J1"] == (True, [], "", "", VoucherState.DRAFT)
    assert stored["J2"][0] is False and stored["J2"][1][0]["code"] == "unknown_account"
    assert stored["J3"][0] is False and stored["J3"][1][0]["code"] == "unknown_cost_centre"
    assert stored["J4"][0] is None and stored["J4"][3] == "unmapped" and "Tvättstuga" in stored["J4"][2]

    # The stored check, run on what was written, finds exactly what the import kept.
    vouchers_preflight_refresh(company=company, system="fortnox", queue_fixed=False)
    again = {v.source_reference: (v.preflight_ok, v.preflight_problems, v.last_error, v.last_error_code, v.state)
             for v in Voucher.objects.filter(company=company)}
    assert again == stored
    # the rows as written: positions in file order, amounts, the source kept beside the account
    rows = list(VoucherRow.objects.filter(voucher__source_reference="J3").order_by("position")
                .values_list("position", "account", "debit", "credit", "cost_centre", "text"))
    assert rows == [(0, "1510", Decimal("70.00"), Decimal("0.00"), "", "unknown cost centre"),
                    (1, "3011", Decimal("0.00"), Decimal("70.00"), "999", "")]
    j4 = VoucherRow.objects.get(voucher__source_reference="J4", position=1)
    assert j4.awaits_mapping and j4.source["unmapped"] == [["ledger_category", "Tvättstuga"]]
    assert AuditEvent.objects.filter(company=company, action="journals:import").count() == 1


def test_bulk_insert_fills_every_field_as_the_model_would(company):
    day = timezone.localdate()
    [pk] = vouchers_insert(vouchers=[{
        "company_id": company.pk, "system": "fortnox", "kind": "journal", "source_system": "ledger",
        "source_reference": "B1", "date": day, "description": "Tab\there, quote \" and back\\slash\nline",
        "series": "A", "extra": {"_source": {"owner": "Ägare", "series_given": True}},
    }], rows=[iter([{"account": "1510", "debit": Decimal("1.50"), "credit": Decimal("0"), "source": {"k": "ö"}},
                    {"account": "3011", "debit": Decimal("0"), "credit": Decimal("1.50")}])])
    voucher = Voucher.objects.get(pk=pk)
    assert voucher.description == "Tab\there, quote \" and back\\slash\nline"
    assert voucher.extra == {"_source": {"owner": "Ägare", "series_given": True}}
    assert (voucher.state, voucher.currency, voucher.attempts, voucher.preflight_ok, voucher.preflight_problems,
            voucher.coded_texts) == (VoucherState.DRAFT, "SEK", 0, None, [], {})
    assert voucher.created_at is not None and voucher.updated_at is not None
    rows = list(voucher.rows.order_by("position"))
    assert [(r.position, r.account, r.debit, r.credit, r.source, r.awaits_mapping) for r in rows] == [
        (0, "1510", Decimal("1.50"), Decimal("0.00"), {"k": "ö"}, False),
        (1, "3011", Decimal("0.00"), Decimal("1.50"), {}, False)]
    # the ids came from the table's own sequence: the next voucher written the ordinary way does not clash
    assert Voucher.objects.create(company=company, system="fortnox", kind="journal", source_system="ledger",
                                  source_reference="B2", date=day, description="x").pk > pk


def test_a_refused_file_writes_nothing(company, plan):
    day = timezone.localdate().isoformat()
    rows = [(f"J{i}", day, acc, d, c, "", "", "") for i in range(50) for acc, d, c in (("1510", "1.00", ""),
                                                                                      ("3011", "", "1.00"))]
    rows.append(("J9", day, "1510", "1e30", "", "", "", ""))
    with pytest.raises(JournalImportError):
        journals_import(company=company, data=csv_file(rows), filename="j.csv", actor="test")
    assert not Voucher.objects.filter(company=company).exists()
