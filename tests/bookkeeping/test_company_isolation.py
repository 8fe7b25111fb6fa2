"""Staff see and act on their own companies only — in lists, actions, exports and imports."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from bookkeeping.models import VoucherState
from tests.factories import AccountMappingFactory, CompanyFactory, UserFactory, balanced_voucher


@pytest.fixture
def two_companies(db):
    mine = CompanyFactory(name="Mitt Bolag AB", slug="mitt")
    theirs = CompanyFactory(name="Annat Bolag AB", slug="annat")
    user = UserFactory(username="anna")
    mine.members.add(user)
    perms = Permission.objects.filter(
        content_type__app_label="bookkeeping",
        codename__in=["view_voucher", "change_voucher", "view_accountmapping", "change_accountmapping",
                      "add_accountmapping", "import_accountmapping", "view_company", "view_auditevent",
                      "reset_voucher", "export_accountmapping"],
    )
    user.user_permissions.set(perms)
    # the alerts on the index link to integrations: seeing them needs the permission to view those
    user.user_permissions.add(Permission.objects.get(codename="view_integration"))
    return mine, theirs, user


def test_voucher_list_shows_only_my_companies(client, two_companies):
    mine, theirs, user = two_companies
    balanced_voucher(mine, source_reference="MINE-1", description="Min journal")
    balanced_voucher(theirs, source_reference="THEIRS-1", description="Deras journal")
    client.force_login(user)
    page = client.get(reverse("admin:bookkeeping_voucher_changelist")).content.decode()
    assert "MINE-1" in page
    assert "THEIRS-1" not in page


def test_other_companys_voucher_is_not_reachable(client, two_companies):
    mine, theirs, user = two_companies
    other = balanced_voucher(theirs)
    client.force_login(user)
    response = client.get(reverse("admin:bookkeeping_voucher_change", args=[other.pk]))
    assert response.status_code in (302, 403, 404)
    assert b"Deras" not in response.content


def test_actions_never_touch_other_companies(client, two_companies):
    mine, theirs, user = two_companies
    own = balanced_voucher(mine)
    other = balanced_voucher(theirs)
    for voucher in (own, other):
        voucher.state = VoucherState.FAILED
        voucher.save()
    client.force_login(user)
    client.post(reverse("admin:bookkeeping_voucher_changelist"),
                {"action": "back_to_draft", "_selected_action": [own.pk, other.pk]})
    own.refresh_from_db()
    other.refresh_from_db()
    assert own.state == VoucherState.DRAFT
    assert other.state == VoucherState.FAILED


def test_export_contains_only_my_companies(client, two_companies):
    mine, theirs, user = two_companies
    AccountMappingFactory(company=mine, key="hyra-bostad", account_number=3011)
    AccountMappingFactory(company=theirs, key="hemlig-kategori", account_number=3015)
    client.force_login(user)
    url = reverse("admin:bookkeeping_accountmapping_export")
    response = client.post(url, {"format": "0", "resource": "0",
                                 **{f"accountmappingresource_{f}": "on" for f in
                                    ("company", "system", "kind", "key", "account", "cost_centre", "vat_code",
                                     "note")}})
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["key"] for r in rows] == ["hyra-bostad"]


def test_company_list_and_superuser(client, two_companies, superuser):
    mine, theirs, user = two_companies
    client.force_login(user)
    page = client.get(reverse("admin:bookkeeping_company_changelist")).content.decode()
    assert "Mitt Bolag AB" in page and "Annat Bolag AB" not in page
    client.force_login(superuser)
    page = client.get(reverse("admin:bookkeeping_company_changelist")).content.decode()
    assert "Mitt Bolag AB" in page and "Annat Bolag AB" in page


def test_admin_index_shows_connections_needing_attention(client, two_companies):
    from integrations.models import Integration

    mine, theirs, user = two_companies
    Integration.objects.create(company=mine, system="fortnox", status="needs_reauthorisation",
                               status_message="Fortnox refused the authorisation (invalid_grant)")
    Integration.objects.create(company=theirs, system="fortnox", status="needs_reauthorisation",
                               status_message="not for anna")
    client.force_login(user)
    page = client.get("/admin/").content.decode()
    assert "Needs your attention" in page and "Mitt Bolag AB" in page and "invalid_grant" in page
    assert "not for anna" not in page
