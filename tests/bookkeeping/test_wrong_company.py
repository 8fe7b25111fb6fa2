"""Connections that cannot go to the wrong company: organisation numbers compared before a connection is kept."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth.models import Permission
from django.urls import reverse

from bookkeeping import identity
from bookkeeping.models import AccountPlan, AuditEvent
from integrations.models import Integration, IntegrationStatus, OAuthState
from tests.factories import CompanyFactory, IntegrationFactory, UserFactory

OTHER_TENANT = 1053991


def test_organisation_numbers_are_normalised_and_compared():
    assert identity.same_organisation("SE", "556036-0793", "5560360793") is True
    assert identity.same_organisation("SE", "556036-0793", "SE556036079301") is True
    assert identity.same_organisation("SE", "16556036-0793", "556036-0793") is True
    assert identity.same_organisation("SE", "556036-0793", "769600-1234") is False
    assert identity.same_organisation("SE", "", "769600-1234") is None
    assert identity.same_organisation("DK", "DK 12 34 56 78", "12345678") is True
    assert identity.shown("SE", "5560360793") == "556036-0793"
    assert identity.is_valid("SE", "556036-0793") and not identity.is_valid("SE", "556036-0794")
    assert identity.is_valid("DK", "13585628")


@pytest.fixture
def staff(db, company):
    anna = UserFactory(username="anna")
    anna.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["bookkeeping", "integrations"])
                              .exclude(codename="connect_other_organisation"))
    company.members.add(anna)
    return anna


def consent(client, integration, tenant: int):
    """Connect → Fortnox's consent page (the sandbox) → choose ``tenant`` → the callback's address."""
    start = client.get(reverse("integrations:fortnox_connect", args=[integration.pk]))
    auth_url = start["Location"]
    page = requests.get(auth_url, timeout=5)
    form = dict(re.findall(r'<input type=hidden name="([^"]+)" value="([^"]*)"', page.text))
    decided = requests.post(auth_url.split("?")[0], data={**form, "tenant": str(tenant), "decision": "approve"},
                            allow_redirects=False, timeout=5)
    callback = urlsplit(decided.headers["Location"])
    return f"{callback.path}?{callback.query}"


@pytest.fixture
def other_tenant(fortnox_sandbox):
    fortnox_sandbox.add_tenant(OTHER_TENANT, "Exempel Handel AB", "556677-8899")
    return OTHER_TENANT


def test_the_right_fortnox_company_is_connected_and_named(client, fortnox_sandbox, company, staff,
                                                          django_capture_on_commit_callbacks):
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(consent(client, integration, fortnox_sandbox.tenant_id))
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE
    assert integration.remote_company["name"] == "Brf Exempelgården"
    assert integration.remote_company["organisation_number"] == "769600-1234" and integration.remote_company["same"]


def test_another_fortnox_company_is_refused_with_both_names_and_numbers(client, fortnox_sandbox, other_tenant,
                                                                        company, staff):
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    client.force_login(staff)
    page = client.get(consent(client, integration, other_tenant), follow=True).content.decode()
    assert "Exempel Handel AB" in page and "556677-8899" in page
    assert "Brf Exempelgården" in page and "769600-1234" in page
    assert "the organisation numbers differ" in page
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.SETTING_UP and not integration.credentials
    assert not AccountPlan.objects.filter(company=company).exists()  # nothing was imported
    assert AuditEvent.objects.filter(integration=integration, action="fortnox:wrong_company").exists()
    assert 'id="connect-anyway"' not in page  # anna may not override


def test_cancel_forgets_the_held_back_tokens(client, fortnox_sandbox, other_tenant, company, staff):
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    client.force_login(staff)
    held_url = client.get(consent(client, integration, other_tenant))["Location"]
    held = OAuthState.objects.get(integration=integration)
    assert held.pending_credentials["access_token"]
    client.post(held_url, {"decision": "cancel"})
    held.refresh_from_db()
    assert held.pending_credentials == {}
    assert client.get(held_url).status_code == 404


def test_connect_anyway_needs_the_permission_and_a_note(client, fortnox_sandbox, other_tenant, company, staff,
                                                        django_capture_on_commit_callbacks):
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    client.force_login(staff)
    held_url = client.get(consent(client, integration, other_tenant))["Location"]
    assert client.post(held_url, {"decision": "connect", "note": "trust me"}).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="connect_other_organisation"))
    staff = type(staff).objects.get(pk=staff.pk)  # permissions are cached per object
    client.force_login(staff)
    page = client.post(held_url, {"decision": "connect", "note": ""}).content.decode()
    assert "Write why this is the right company" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(held_url, {"decision": "connect", "note": "New organisation number after the merger in May"})
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE and integration.credentials["access_token"]
    assert integration.remote_company["override"]["note"] == "New organisation number after the merger in May"
    event = AuditEvent.objects.get(integration=integration, action="fortnox:other_organisation")
    assert event.actor == staff and "merger in May" in event.message and "556677-8899" in event.message
    page = client.get("/admin/").content.decode()
    assert "connected anyway by" in page


def test_a_company_without_an_organisation_number_cannot_be_checked(client, fortnox_sandbox, company, staff):
    company.org_number = ""
    company.save()
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    client.force_login(staff)
    page = client.get(consent(client, integration, fortnox_sandbox.tenant_id), follow=True).content.decode()
    assert "has no organisation number in Kontera" in page
    integration.refresh_from_db()
    assert not integration.credentials


# --- Dinero: the organisation's CVR against the company's ---------------------------------------------


@pytest.fixture
def lars(db, dk_company):
    lars = UserFactory(username="lars")
    lars.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["integrations"])
                              .exclude(codename="connect_other_organisation"))
    dk_company.members.add(lars)
    return lars


def connect_page(company):
    return reverse("admin:dinero_setup_connect", args=[company.pk])


def test_dinero_organisation_of_another_cvr_is_refused(client, dinero_sandbox, lars):
    from tests.dinero_fixtures import DINERO_KEY, DINERO_ORG

    other = CompanyFactory(name="Andet ApS", slug="andet", country="DK", org_number="87654321")
    other.members.add(lars)
    client.force_login(lars)
    page = client.post(connect_page(other), {"api_key": DINERO_KEY, "organization_id": DINERO_ORG}).content.decode()
    assert "Demo ApS" in page and "12345678" in page and "Andet ApS" in page and "87654321" in page
    assert not Integration.objects.filter(company=other, system="dinero").exists()
    assert 'name="connect_anyway"' not in page  # lars may not override


def test_dinero_connect_anyway_with_a_note(client, dinero_sandbox, lars):
    from tests.dinero_fixtures import DINERO_KEY, DINERO_ORG

    other = CompanyFactory(name="Andet ApS", slug="andet", country="DK", org_number="87654321")
    other.members.add(lars)
    lars.user_permissions.add(Permission.objects.get(codename="connect_other_organisation"))
    client.force_login(lars)
    page = client.post(connect_page(other), {"api_key": DINERO_KEY, "organization_id": DINERO_ORG}).content.decode()
    assert 'name="connect_anyway"' in page
    client.post(connect_page(other), {"api_key": DINERO_KEY, "organization_id": DINERO_ORG,
                                      "connect_anyway": "The holding company books for Andet ApS"})
    integration = Integration.objects.get(company=other, system="dinero")
    assert integration.remote_company["override"]["note"] == "The holding company books for Andet ApS"
    assert AuditEvent.objects.filter(integration=integration, action="dinero:other_organisation").exists()


def test_the_right_dinero_organisation_is_connected(client, dinero_sandbox, dk_company, lars):
    from tests.dinero_fixtures import DINERO_KEY, DINERO_ORG

    client.force_login(lars)
    response = client.post(connect_page(dk_company), {"api_key": DINERO_KEY, "organization_id": DINERO_ORG})
    assert response.status_code == 302
    integration = Integration.objects.get(company=dk_company, system="dinero")
    assert integration.remote_company["same"] is True and integration.remote_company["name"] == "Demo ApS"


def test_dinero_without_a_cvr_is_accepted_with_a_warning(client, dinero_sandbox, dk_company, lars):
    from tests.dinero_fixtures import DINERO_KEY, DINERO_ORG

    dinero_sandbox.org.vat_number = None
    client.force_login(lars)
    page = client.post(connect_page(dk_company), {"api_key": DINERO_KEY, "organization_id": DINERO_ORG},
                       follow=True).content.decode()
    assert "Dinero did not tell the organisation" in page
    assert Integration.objects.get(company=dk_company, system="dinero").remote_company["same"] is None
