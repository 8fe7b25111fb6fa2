"""CSV import of account mappings: dry-run preview with row errors, nothing written when a row is bad."""

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from bookkeeping.models import AccountMapping
from tests.factories import CompanyFactory, UserFactory, fortnox_plan

GOOD = (
    "company,system,kind,key,account,cost_centre,vat_code,note\n"
    "brf,fortnox,ledger_category,hyra-bostad,3011,100,,Bostadshyror\n"
    "brf,fortnox,ledger_category,hyra-lokal,1930,,,Lokalhyror\n"
)
BAD = GOOD + "brf,fortnox,addon_code,parkering,9999,,,Okänt konto\nannat,fortnox,fee,x,1930,,,\n"


@pytest.fixture
def setup(db):
    company = CompanyFactory(slug="brf", name="Brf Test")
    CompanyFactory(slug="annat", name="Annat AB")
    fortnox_plan(company, accounts=(1930, 3011), cost_centres=("100",))
    user = UserFactory(username="bo")
    company.members.add(user)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="bookkeeping",
        codename__in=["view_accountmapping", "add_accountmapping", "change_accountmapping", "import_accountmapping"],
    ))
    return company, user


def _import(client, content: str):
    url = reverse("admin:bookkeeping_accountmapping_import")
    return client.post(url, {"format": "0", "resource": "0",
                             "import_file": SimpleUploadedFile("mappings.csv", content.encode(), "text/csv")})


def test_bad_rows_are_reported_per_row_and_nothing_is_written(client, setup):
    company, user = setup
    client.force_login(user)
    response = _import(client, BAD)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Account 9999 is not in the account plan." in page
    assert "Unknown company annat (or not one you serve)." in page
    assert "confirm" not in page.lower() or "Confirm import" not in page
    assert AccountMapping.objects.count() == 0


def test_good_file_previews_then_imports(client, setup):
    company, user = setup
    client.force_login(user)
    response = _import(client, GOOD)
    assert response.status_code == 200
    assert AccountMapping.objects.count() == 0  # a preview writes nothing
    form = response.context["confirm_form"]
    confirm = client.post(reverse("admin:bookkeeping_accountmapping_process_import"),
                          {**form.initial, "resource": "0"})
    assert confirm.status_code == 302
    assert sorted(AccountMapping.objects.values_list("key", "account_number")) == [
        ("hyra-bostad", 3011), ("hyra-lokal", 1930)]


def test_import_needs_the_import_permission(client, setup):
    company, user = setup
    user.user_permissions.remove(Permission.objects.get(codename="import_accountmapping"))
    client.force_login(user)
    response = client.get(reverse("admin:bookkeeping_accountmapping_import"))
    assert response.status_code == 403


def test_command_line_import_refuses_the_whole_file(setup, tmp_path):
    path = tmp_path / "mappings.csv"
    path.write_text(BAD)
    with pytest.raises(SystemExit) as exit_info:
        call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    assert exit_info.value.code == 1
    assert AccountMapping.objects.count() == 0
    path.write_text(GOOD)
    call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    assert AccountMapping.objects.count() == 2
    call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    assert AccountMapping.objects.count() == 2  # re-import updates, never duplicates
