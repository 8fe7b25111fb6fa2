"""The mapping import as staff meet it: CSV by default, a template, reasons on the page, numbers as text or
numbers, every kind's own columns, and one re-evaluation per company once an import is kept."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from bookkeeping.models import AccountMapping, AuditEvent
from bookkeeping.resources import AccountNumberWidget
from tests.factories import CompanyFactory, UserFactory, fortnox_plan

HEADER = "company,system,kind,key,account,cost_centre,project,vat_code,series,note\n"


@pytest.fixture
def brf(db):
    company = CompanyFactory(slug="brf", name="Brf Test")
    fortnox_plan(company, accounts=(1510, 1930, 3011, 3015), cost_centres=("100", "200"))
    return company


@pytest.fixture
def bo(brf):
    user = UserFactory(username="bo")
    brf.members.add(user)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="bookkeeping",
        codename__in=["view_accountmapping", "add_accountmapping", "change_accountmapping", "import_accountmapping"]))
    return user


def upload(client, content: str, name="mappings.csv"):
    return client.post(reverse("admin:bookkeeping_accountmapping_import"),
                       {"format": "0", "resource": "0",
                        "import_file": SimpleUploadedFile(name, content.encode(), "text/csv")})


def test_the_import_page_offers_csv_first_and_a_template(client, bo):
    client.force_login(bo)
    page = client.get(reverse("admin:bookkeeping_accountmapping_import"))
    assert page.status_code == 200
    assert page.context["form"].initial["format"] == "0"
    assert page.context["form"].fields["format"].choices[int(page.context["form"].initial["format"]) + 1][1] == "csv"
    assert reverse("admin:bookkeeping_accountmapping_template") in page.content.decode()
    template = client.get(reverse("admin:bookkeeping_accountmapping_template"))
    rows = list(csv.reader(io.StringIO(template.content.decode())))
    assert rows[0] == HEADER.strip().split(",")
    assert {row[2] for row in rows[1:]} >= {"ledger_account", "ledger_category", "addon_code", "property", "owner",
                                            "expense_category", "sales_region", "output_vat", "fee", "receivable",
                                            "bank"}


def test_the_template_needs_the_import_permission(client, bo):
    bo.user_permissions.remove(Permission.objects.get(codename="import_accountmapping"))
    client.force_login(bo)
    assert client.get(reverse("admin:bookkeeping_accountmapping_template")).status_code == 403


def test_row_errors_are_written_on_the_page_itself(client, bo):
    client.force_login(bo)
    page = upload(client, HEADER + "brf,fortnox,ledger_account,1101,1510,,,,,\n"
                                   "brf,fortnox,ledger_category,Hyra,9999,,,,,\n"
                                   "brf,fortnox,property,Gården 1,,999,,,,\n").content.decode()
    table = page[page.index('id="import-row-errors"'):]
    assert "<td>2</td><td>account</td><td>Account 9999 is not in the account plan.</td>" in table
    assert "Cost centre 999 does not exist." in table
    assert AccountMapping.objects.count() == 0


@pytest.mark.parametrize("written", ["3011", "3011.0", "'3011", " 3011 ", "3011 Hyresintäkter bostäder"])
def test_account_numbers_as_text_or_numbers(written):
    assert AccountNumberWidget().clean(written) == 3011


@pytest.mark.parametrize("value", [3011, 3011.0])
def test_account_numbers_as_spreadsheet_numbers(value):
    assert AccountNumberWidget().clean(value) == 3011


@pytest.mark.parametrize("wrong", ["30 11", "konto 3011", "3011.5", "3O11"])
def test_what_is_not_an_account_number(wrong):
    with pytest.raises(ValueError):
        AccountNumberWidget().clean(wrong)


def test_each_kind_imports_its_own_columns_and_a_file_may_leave_optional_ones_out(brf, tmp_path):
    brf.account_plans.get(system="fortnox").series.create(code="K", description="Fastighet", manual=True)
    path = tmp_path / "m.csv"
    path.write_text("company,system,kind,key,account,cost_centre,series\n"
                    "brf,fortnox,ledger_account,1101,1510,,\n"
                    "brf,fortnox,property,Gården 1,,100,\n"
                    "brf,fortnox,owner,Brf Test,,,k\n", encoding="utf-8")
    call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    rows = set(AccountMapping.objects.values_list("kind", "key", "account_number", "cost_centre", "series"))
    assert rows == {("ledger_account", "1101", 1510, "", ""), ("property", "Gården 1", None, "100", ""),
                    ("owner", "Brf Test", None, "", "K")}


def test_a_file_that_maps_one_value_twice_is_refused(brf, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "brf,fortnox,ledger_category,Hyra,3011,,,,,\nbrf,fortnox,ledger_category,HYRA,3015,,,,,\n")
    with pytest.raises(SystemExit):
        call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    assert AccountMapping.objects.count() == 0


def test_a_kept_import_queues_one_re_evaluation_per_company_and_a_dry_run_none(
        brf, tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    import bookkeeping.tasks as tasks
    from bookkeeping.services.mappings import reevaluation_ticket

    ran = []

    def task(company_id, actor="worker"):
        cache.delete(reevaluation_ticket(company_id))  # as the real task does first
        ran.append(company_id)

    monkeypatch.setattr(tasks, "mappings_reevaluate", task)
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "brf,fortnox,ledger_category,Hyra,3011,,,,,\nbrf,fortnox,ledger_category,P,3015,,,,,\n")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input",
                     "--dry-run")
    assert ran == [] and AccountMapping.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="mapping:").exists()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    assert ran == [brf.pk]
    assert AuditEvent.objects.filter(action="mapping:created", company=brf).count() == 2


def _rows(count: int, *, start: int = 0) -> str:
    return HEADER + "".join(f"brf,fortnox,ledger_category,Kategori {n},{(3011, 3015)[n % 2]},,,,,rad {n}\n"
                            for n in range(start, start + count))


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_queries_of_an_import_do_not_grow_with_its_rows(brf, tmp_path, dry_run):
    """Rows are checked against a snapshot read once and written in bulk: no query per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for size, start in ((5, 0), (60, 100)):
        path = tmp_path / f"m{size}.csv"
        path.write_text(_rows(size, start=start))
        args = ["import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input"]
        with CaptureQueriesContext(connection) as queries:
            call_command(*args, *(["--dry-run"] if dry_run else []))
        counts.append(len(queries))
    assert counts[1] <= counts[0] + 2  # the same statements (a batch more at most), whatever the rows
    assert AccountMapping.objects.count() == (0 if dry_run else 65)


def test_a_kept_import_audits_every_row_and_a_changed_row_says_what_it_is_now(brf, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(_rows(3))
    call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    path.write_text(HEADER + "brf,fortnox,ledger_category,kategori 1,3011,100,,,,rad 1\n")
    call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    changed = AccountMapping.objects.get(company=brf, key="kategori 1")  # respelt: the same source value
    assert (changed.account_number, changed.cost_centre, AccountMapping.objects.count()) == (3011, "100", 3)
    assert AuditEvent.objects.filter(action="mapping:created", company=brf).count() == 3
    event = AuditEvent.objects.get(action="mapping:changed", company=brf)
    assert event.message == "Now: Ledger category “kategori 1” → 3011, cost centre 100"
    assert event.coded_texts["message"]["m"] == "Now: %(mapping)s"


def test_the_preview_counts_every_row_and_shows_the_first_hundred(client, bo):
    client.force_login(bo)
    page = upload(client, _rows(150)).content.decode()
    assert "New: 150, changed: 0, unchanged: 0." in page
    assert page.count('<tr class="new">') == 100
    assert AccountMapping.objects.count() == 0


def test_a_row_without_a_company_says_so_in_swedish_too(client, bo):
    client.force_login(bo)
    page = upload(client, HEADER + ",fortnox,ledger_category,Hyra,3011,,,,,\n",
                  ).content.decode()
    assert "The company is missing (its slug)." in page
    with translation.override("sv"):
        assert str(_("The company is missing (its slug).")) == "Företaget saknas (dess kortnamn)."
