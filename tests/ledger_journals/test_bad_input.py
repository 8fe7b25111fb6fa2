"""Bad journal files get a clear error with the line, through the admin and the command alike; nothing
is written and every admin page keeps working (issue 11, "Inputs"; issue 14, unreadable uploads)."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from bookkeeping.models import Voucher
from tests.factories import CompanyFactory

HEADER = "journal,date,series,account,debit,credit,cost_centre,project,text\n"


def csv_file(*rows: str) -> bytes:
    return (HEADER + "".join(row + "\n" for row in rows)).encode()


def journal(debit="100.00", credit="100.00", *, ref="J1", series="A", account="1930", cost_centre="", text="Hyra"):
    """One balanced journal: its first row carries the values under test, line 2 of the file."""
    return csv_file(f"{ref},2022-12-01,{series},{account},{debit},0,{cost_centre},,{text}",
                    f"{ref},2022-12-01,{series},3011,0,{credit},,,Hyra")


SIE_DUPLICATES = ('#FLAGGA 0\n#FORMAT PC8\n#SIETYP 4\n#FNAMN "Brf"\n'
                  '#VER A 9005 20221201 "Hyror"\n{\n#TRANS 1510 {} 100.00\n#TRANS 3011 {} -100.00\n}\n'
                  '#VER A 9005 20221201 "Hyror igen"\n{\n#TRANS 1510 {} 200.00\n#TRANS 3011 {} -200.00\n}\n').encode("cp437")

# (what, file name, content, line of the error, words of the message)
BAD_FILES = [
    ("amount 1e30", "j.csv", journal("1e30"), 2, "is not an amount"),
    ("amount Infinity", "j.csv", journal("Infinity"), 2, "is not an amount"),
    ("amount NaN", "j.csv", journal("NaN"), 2, "is not an amount"),
    ("amount sNaN", "j.csv", journal("sNaN"), 2, "is not an amount"),
    ("amount of 10^12", "j.csv", journal("1000000000000.00", "1000000000000.00"), 2, "larger than the largest amount"),
    ("amount of 20 digits", "j.csv", journal("99999999999999999999.99", "99999999999999999999.99"), 2,
     "larger than the largest amount"),
    ("cost centre of 7 characters", "j.csv", journal(cost_centre="1000001"), 2, "The cost centre is 7 characters"),
    ("series of 11 characters", "j.csv", journal(series="ABCDEFGHIJK"), 2, "The voucher series is 11 characters"),
    ("account of 11 digits", "j.csv", journal(account="19301930193"), 2, "The account is 11 characters"),
    ("journal id past 128", "j.csv", journal(ref="J" * 300), 2, "The journal id is 300 characters"),
    ("NUL byte in a text", "j.csv", journal(text="Hy\x00ra"), 2, "control character"),
    ("binary file", "j.csv", bytes(range(256)) * 40, 0, "not a text file"),
    ("UTF-16 without byte-order mark", "j.csv", journal().decode().encode("utf-16-le"), 0, "not a text file"),
    ("plain text", "notes.txt", b"Dear colleagues,\nthe rents for December are attached.\n", 1,
     "Missing columns"),
    ("unquoted decimal comma", "j.csv", csv_file("J1,2022-12-01,A,1930,100,50,0,,,Hyra", "J1,2022-12-01,A,3011,0,100.50"),
     2, "more fields than the header"),
    ("duplicate voucher number", "dup.se", SIE_DUPLICATES, 10, "Voucher A 9005 of 2022-12-01 appears again"),
]


@pytest.fixture
def importer(db, client):
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    company = CompanyFactory(name="Brf Gränsen", slug="brf-gransen")
    user = UserFactory(username="bokforare")
    user.groups.add(Group.objects.get(name="Bookkeeper"))
    company.members.add(user)
    client.force_login(user)
    return company


def admin_upload(client, company, name, content):
    return client.post(reverse("admin:bookkeeping_voucher_import_journals"),
                       {"company": company.pk, "series": "", "file": SimpleUploadedFile(name, content)})


def command_import(company, tmp_path, name, content) -> tuple[int, dict]:
    path = tmp_path / name
    path.write_bytes(content)
    out = io.StringIO()
    try:
        call_command("journals_import", company.slug, str(path), "--json", stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return code, json.loads(out.getvalue())


def assert_admin_still_works(client):
    assert client.get(reverse("admin:bookkeeping_voucher_changelist")).status_code == 200
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize("what,name,content,line,words", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_file_in_the_admin_is_refused_with_its_line(client, importer, what, name, content, line, words):
    response = admin_upload(client, importer, name, content)
    assert response.status_code == 200
    page = response.content.decode()
    assert "nothing was imported" in page and words in page
    if line:
        assert f"Line {line}:" in page
    assert not Voucher.objects.filter(company=importer).exists()
    assert_admin_still_works(client)


@pytest.mark.parametrize("what,name,content,line,words", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_file_on_the_command_line_is_refused_with_its_line(importer, tmp_path, what, name, content, line, words):
    code, result = command_import(importer, tmp_path, name, content)
    assert code == 1 and result["ok"] is False
    assert any(error["line"] == line and words in error["message"] for error in result["errors"]), result
    assert not Voucher.objects.filter(company=importer).exists()


def test_the_largest_amount_is_stored_exactly_and_its_pages_work(client, importer, tmp_path):
    """999 999 999 999.99 fits: on SQLite too it comes back as that decimal (not the REAL 1e12), so the
    voucher's page, Send and Delete keep working."""
    code, _result = command_import(importer, tmp_path, "j.csv", journal("999999999999.99", "999999999999.99"))
    assert code == 0
    voucher = Voucher.objects.get(company=importer)
    assert voucher.totals() == (Decimal("999999999999.99"), Decimal("999999999999.99"))
    assert client.get(reverse("admin:bookkeeping_voucher_change", args=[voucher.pk])).status_code == 200
    assert client.get(reverse("admin:bookkeeping_voucher_delete", args=[voucher.pk])).status_code == 200
    send = client.post(reverse("admin:bookkeeping_voucher_changelist"),
                       {"action": "send_selected", "_selected_action": [voucher.pk], "index": 0})
    assert send.status_code == 200 and "999999999999.99" in send.content.decode()


def test_utf16_from_excel_is_read(client, importer):
    """Excel's "Unicode text" is UTF-16 with a byte-order mark and tabs: read it, do not answer 500."""
    text = journal(text="Hyra lägenhet").decode().replace(",", "\t")
    response = admin_upload(client, importer, "j.txt", "\ufeff".encode("utf-16-le") + text.encode("utf-16-le"))
    assert response.status_code == 200 and "J1" in response.content.decode()
    done = client.post(reverse("admin:bookkeeping_voucher_import_journals"), {"token": response.context["token"]})
    assert done.status_code == 302
    assert Voucher.objects.get(company=importer).rows.filter(text="Hyra lägenhet").exists()


def test_same_voucher_number_on_another_date_stays_two_journals(importer):
    """BL Administration numbers its monthly depreciations #VER # 1 every month: those are distinct."""
    from ledger_journals.services.journal_import import journals_import

    data = SIE_DUPLICATES.replace(b"#VER A 9005 20221201 \"Hyror igen\"", b"#VER A 9005 20221231 \"Hyror igen\"")
    assert journals_import(company=importer, data=data, filename="x.se", actor="test").created == 2


def test_progress_page_with_an_id_too_large_for_the_database(client, importer):
    for ids in ("99999999999999999999", "1,²,abc,-3", ",".join(str(n) for n in range(20000))):
        response = client.get(reverse("admin:bookkeeping_voucher_progress") + f"?ids={ids}")
        assert response.status_code == 200
