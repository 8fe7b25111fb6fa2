"""The property-ledger flow: journals in by SIE 4 and CSV, out to Fortnox, and back out as SIE."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from bookkeeping import sie
from bookkeeping.models import Voucher, VoucherState
from bookkeeping.services.sending import vouchers_dispatch
from bookkeeping.services.sie_export import sie_export
from ledger_journals.services.journal_import import JournalImportError, journals_import
from tests.factories import CompanyFactory

SIE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "sie"
UNBALANCED = {"transaktioner_ovnbolag-bad-balance.se": 3905, "XE_SIE_4_20151125095119.SE": 1356}
needs_testdata = pytest.mark.skipif(not SIE_DIR.exists(), reason="../shared/testdata/sie is not next to the repository")


def sie_files():
    return sorted(p.name for p in SIE_DIR.glob("*") if p.suffix.lower() in {".se", ".si"}) if SIE_DIR.exists() else []


@needs_testdata
@pytest.mark.parametrize("name", [n for n in sie_files() if n not in UNBALANCED])
def test_every_real_file_imports_once(db, name):
    company = CompanyFactory()
    data = (SIE_DIR / name).read_bytes()
    expected = len(sie.read(data).vouchers)
    first = journals_import(company=company, data=data, filename=name, actor="test")
    assert first.created == expected
    assert Voucher.objects.filter(company=company, kind="journal").count() == expected
    again = journals_import(company=company, data=data, filename=name, actor="test")
    assert (again.created, again.updated, again.unchanged) == (0, 0, expected)
    for voucher in Voucher.objects.filter(company=company).prefetch_related("rows")[:50]:
        debit, credit = voucher.totals()
        assert debit == credit


@needs_testdata
@pytest.mark.parametrize("name,line", sorted(UNBALANCED.items()))
def test_unbalanced_files_are_refused_with_the_line(db, name, line):
    company = CompanyFactory()
    with pytest.raises(JournalImportError) as refused:
        journals_import(company=company, data=(SIE_DIR / name).read_bytes(), filename=name, actor="test")
    assert any(err_line == line and "does not balance" in message for err_line, message in refused.value.errors)
    assert not Voucher.objects.filter(company=company).exists()


def test_dimensions_become_cost_centre_and_project(db):
    company = CompanyFactory()
    data = ('#FLAGGA 0\n#FORMAT PC8\n#SIETYP 4\n#FNAMN "Brf"\n#VER A 25 20221201 "Hyror december"\n{\n'
            '#TRANS 1510 {} 83849.00\n#TRANS 3011 {1 "100" 6 "P7"} -83849.00 "" "Hyra lgh 1001"\n}\n').encode("cp437")
    journals_import(company=company, data=data, filename="x.si", actor="test")
    voucher = Voucher.objects.get(company=company)
    rent = voucher.rows.get(account=3011)
    assert (rent.cost_centre, rent.project, rent.credit, rent.text) == ("100", "P7", Decimal("83849.00"), "Hyra lgh 1001")
    assert voucher.source_reference == "A25:2022-12-01"


CSV = (
    "journal,date,series,account,debit,credit,cost_centre,project,text\n"
    "A25,2022-12-01,A,1101,0,12000,,,\n"
    "A25,2022-12-01,A,1510,\"83849,00\",0,,,Avisering\n"
    "A25,2022-12-01,A,2610,0,904,,,\n"
    "A25,2022-12-01,A,3011,0,65568,100,,Bostäder\n"
    "A25,2022-12-01,A,3015,0,5247,100,,Lokaler\n"
    "A25,2022-12-01,A,3016,0,130,100,,P-platser\n"
    "A26,2022-12-02,,1930,500.50,0,,,\n"
    "A26,2022-12-02,,1510,0,500.50,,,\n"
)


def test_csv_journals_with_decimal_comma(db):
    company = CompanyFactory(default_series="L")
    result = journals_import(company=company, data=CSV.encode(), filename="journals.csv", actor="test")
    assert result.created == 2
    a25 = Voucher.objects.get(company=company, source_reference="A25")
    assert a25.totals() == (Decimal("83849.00"), Decimal("83849.00"))
    assert a25.series == "A"
    assert Voucher.objects.get(company=company, source_reference="A26").series == "L"


def test_csv_errors_name_lines_and_import_nothing(db):
    company = CompanyFactory()
    bad = CSV + "A27,2022-12-03,A,1930,10,0,,,\nA27,2022-12-03,A,1510,0,9,,,\nA28,03/12/2022,A,1930,1,0,,,\n"
    with pytest.raises(JournalImportError) as refused:
        journals_import(company=company, data=bad.encode(), filename="journals.csv", actor="test")
    text = str(refused.value)
    assert "line 12: Date '03/12/2022' is not YYYY-MM-DD" in text
    assert "line 10: Journal A27" in text and "differ by 1.00" in text
    assert not Voucher.objects.filter(company=company).exists()


def test_reimport_updates_a_draft_but_never_a_posted_journal(db):
    company = CompanyFactory()
    journals_import(company=company, data=CSV.encode(), filename="j.csv", actor="test")
    changed = CSV.replace("500.50", "600.00")
    result = journals_import(company=company, data=changed.encode(), filename="j.csv", actor="test")
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    Voucher.objects.filter(source_reference="A26").update(state=VoucherState.POSTED)
    with pytest.raises(JournalImportError, match="posted there"):
        journals_import(company=company, data=CSV.encode(), filename="j.csv", actor="test")
    assert Voucher.objects.get(source_reference="A26").totals()[0] == Decimal("600.00")


def test_sie_export_import_round_trip(connected_fortnox, fortnox_sandbox):
    company = connected_fortnox.company
    today = timezone.localdate()
    rows = [
        f"J1,{today},A,1510,83849,0,,,Avisering",
        f"J1,{today},A,3011,0,65568,100,,Hyror bostäder",
        f"J1,{today},A,3015,0,18281,100,,Hyror lokaler",
        f"J2,{today},A,1930,1200.50,0,,,Inbetalning",
        f"J2,{today},A,1510,0,1200.50,,,Inbetalning",
    ]
    data = ("journal,date,series,account,debit,credit,cost_centre,project,text\n" + "\n".join(rows) + "\n").encode()
    journals_import(company=company, data=data, filename="j.csv", actor="test")
    call_command("journals_push", company.slug, "--all", stdout=io.StringIO(), stderr=io.StringIO())
    posted = list(Voucher.objects.filter(company=company, state=VoucherState.POSTED).order_by("id"))
    assert len(posted) == 2

    exported = sie_export(company=company, date_from=today, date_to=today)
    assert b"#KSUMMA" not in exported and b"#FORMAT PC8" in exported
    parsed = sie.read(exported)
    assert [(v.series, v.number) for v in parsed.vouchers] == [(p.remote_series, p.remote_number) for p in posted]

    other = CompanyFactory(slug="kopia")
    journals_import(company=other, data=exported, filename="export.se", actor="test")

    def shape(vouchers):
        return [(v.date, sorted((r.account, r.debit, r.credit, r.cost_centre, r.project, r.text) for r in v.rows.all()))
                for v in vouchers]

    copies = list(Voucher.objects.filter(company=other).order_by("date", "id"))
    assert shape(copies) == shape(posted)


def test_journals_push_command_json_and_exit_code(connected_fortnox, fortnox_sandbox):
    company = connected_fortnox.company
    today = timezone.localdate()
    data = (f"journal,date,series,account,debit,credit\nOK1,{today},A,1930,10,0\nOK1,{today},A,1510,0,10\n"
            f"BAD1,{today},A,1930,10,0\nBAD1,{today},A,9999,0,10\n").encode()
    journals_import(company=company, data=data, filename="j.csv", actor="test")
    out = io.StringIO()
    call_command("journals_push", company.slug, "--journal", "OK1", "--json", stdout=out, stderr=io.StringIO())
    result = json.loads(out.getvalue())
    assert result["ok"] is True and result["journals"][0]["state"] == "posted"
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("journals_push", company.slug, "--journal", "BAD1", "--json", stdout=out, stderr=io.StringIO())
    assert exit_info.value.code == 1
    result = json.loads(out.getvalue())
    assert result["refused"] == 1 and "9999" in result["journals"][0]["error"]


def test_admin_import_preview_then_confirm(client, db, company, superuser):
    client.force_login(superuser)
    url = reverse("admin:bookkeeping_voucher_import_journals")
    preview = client.post(url, {"company": company.pk, "series": "",
                                "file": SimpleUploadedFile("journals.csv", CSV.encode(), "text/csv")})
    page = preview.content.decode()
    assert preview.status_code == 200 and "A25" in page and "A26" in page
    assert not Voucher.objects.filter(company=company).exists()  # a preview stores nothing
    token = preview.context["token"]
    done = client.post(url, {"token": token, "company": company.pk, "filename": "journals.csv", "series": ""})
    assert done.status_code == 302
    assert Voucher.objects.filter(company=company).count() == 2


def test_admin_import_shows_refusal_with_line(client, db, company, superuser):
    client.force_login(superuser)
    bad = CSV.replace("A26,2022-12-02,,1510,0,500.50", "A26,2022-12-02,,1510,0,500.40")
    response = client.post(reverse("admin:bookkeeping_voucher_import_journals"),
                           {"company": company.pk, "file": SimpleUploadedFile("j.csv", bad.encode(), "text/csv")})
    page = response.content.decode()
    assert "nothing was imported" in page and "Line 8" in page and "differ by 0.10" in page


def test_dispatch_handles_several_companies_round_robin(connected_fortnox, fortnox_sandbox):
    company = connected_fortnox.company
    today = timezone.localdate()
    data = "journal,date,series,account,debit,credit\n" + "".join(
        f"R{n},{today},A,1930,{n + 1},0\nR{n},{today},A,1510,0,{n + 1}\n" for n in range(5))
    journals_import(company=company, data=data.encode(), filename="j.csv", actor="test")
    from ledger_journals.services.journal_push import journals_push

    assert journals_push(company=company, everything=True, actor="test").queued == 5
    vouchers_dispatch(max_seconds=30)
    assert Voucher.objects.filter(company=company, state=VoucherState.POSTED).count() == 5
    numbers = sorted(int(v.number) for v in fortnox_sandbox.vouchers(1046823))
    assert numbers == list(range(numbers[0], numbers[0] + 5))
