"""Bad expense-document files get a clear error with the line, in the admin and from the command; nothing
is written and the admin keeps working (issue 11, "Inputs")."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from expense_documents.models import ExpenseDocument
from tests.factories import CompanyFactory, UserFactory

HEADER = "reference,type,supplier,date,amount,vat_code,category,description\n"


def row(amount="100.00", *, supplier="Kontorland A/S", category="7200", description="Papir") -> str:
    return f"F-1,invoice,{supplier},2026-03-14,{amount},I25,{category},{description}\n"


# (what, content, line, column, words)
BAD_FILES = [
    ("amount Infinity", (HEADER + row("Infinity")).encode(), 2, "amount", "is not an amount"),
    ("amount 1e30", (HEADER + row("1e30")).encode(), 2, "amount", "is not an amount"),
    ("amount NaN", (HEADER + row("NaN")).encode(), 2, "amount", "is not an amount"),
    ("amount of 10^12", (HEADER + row("1000000000000.00")).encode(), 2, "amount", "larger than the largest amount"),
    ("supplier of 201 characters", (HEADER + row(supplier="S" * 201)).encode(), 2, "supplier",
     "is 201 characters long"),
    ("description of 201 characters", (HEADER + row(description="D" * 201)).encode(), 2, "description",
     "is 201 characters long"),
    ("NUL in a text", (HEADER + row(description="Pa\x00pir")).encode(), 2, "description", "control character"),
    ("category of 101 characters", (HEADER + row(category="K" * 101)).encode(), 2, "category",
     "at most 100 characters"),
    ("unquoted decimal comma", (HEADER + "F-1,invoice,Kontorland A/S,2026-03-14,100,50,I25,7200,Papir\n").encode(), 2,
     "file", "more fields than the header"),
    ("binary file", bytes(range(256)) * 40, None, None, "not a text file"),
    ("UTF-16 without byte-order mark", (HEADER + row()).encode("utf-16-le"), None, None, "not a text file"),
]


@pytest.fixture
def importer(db, client):
    company = CompanyFactory(name="Demo Grænse ApS", slug="graense", country="DK", base_currency="DKK")
    user = UserFactory(username="bogholder")
    user.groups.add(Group.objects.get(name="Bookkeeper"))
    company.members.add(user)
    client.force_login(user)
    return company


@pytest.mark.parametrize("what,content,line,column,words", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_file_in_the_admin(client, importer, what, content, line, column, words):
    response = client.post(reverse("admin:expense_documents_expensedocument_import"),
                           {"company": importer.pk, "file": SimpleUploadedFile("bilag.csv", content)})
    page = response.content.decode()
    assert response.status_code == 200 and words in page
    if line:
        assert f"<td>{line}</td><td>{column}</td>" in page and 'name="confirm"' not in page
    assert not ExpenseDocument.objects.exists()
    assert client.get(reverse("admin:expense_documents_expensedocument_changelist")).status_code == 200


@pytest.mark.parametrize("what,content,line,column,words", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_file_on_the_command_line(importer, tmp_path, what, content, line, column, words):
    path = tmp_path / "bilag.csv"
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as refused:
        call_command("documents_import", importer.slug, str(path), "--json", stdout=out, stderr=err)
    assert refused.value.code == 1
    result = json.loads(out.getvalue())
    if line:
        assert any(e["line"] == line and e["field"] == column and words in e["message"] for e in result["errors"])
    else:
        assert words in result["error"]
    assert not ExpenseDocument.objects.exists()


def test_cp1252_from_danish_excel_is_read(importer, tmp_path):
    path = tmp_path / "bilag.csv"
    path.write_bytes((HEADER + row(supplier="Kø & Søn ApS")).encode("cp1252"))
    out = io.StringIO()
    call_command("documents_import", importer.slug, str(path), "--json", stdout=out, stderr=io.StringIO())
    assert json.loads(out.getvalue())["created"] == 1
    assert ExpenseDocument.objects.get(company=importer).supplier_name == "Kø & Søn ApS"


def test_cancel_forgets_the_previewed_file(client, importer):
    url = reverse("admin:expense_documents_expensedocument_import")
    preview = client.post(url, {"company": importer.pk, "file": SimpleUploadedFile("b.csv", (HEADER + row()).encode())})
    token = preview.context["token"]
    assert token and client.session.get("kontera:expense-import")
    assert client.post(url, {"cancel": token}).status_code == 302
    assert not client.session.get("kontera:expense-import")
    client.post(url, {"confirm": token})
    assert not ExpenseDocument.objects.exists()


def test_an_attachment_over_the_limit_is_stopped_and_said(client, importer, settings):
    settings.KONTERA_UPLOAD_LIMITS = {**settings.KONTERA_UPLOAD_LIMITS, "attachments": 100 * 1024}
    response = client.post(reverse("admin:expense_documents_expensedocument_add"), {
        "company": importer.pk, "type": "invoice", "reference": "BIG-1", "supplier_name": "Skanner A/S",
        "document_date": "2026-03-14", "currency": "DKK",
        "attachment": SimpleUploadedFile("scan.pdf", b"%PDF-1.4\n" + b"0" * 300 * 1024),
        "lines-TOTAL_FORMS": "0", "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "1000"})
    assert response.status_code == 200
    assert "The file is larger than 100 KB" in response.content.decode()
    assert not ExpenseDocument.objects.exists()  # not saved without its file
