"""Dinero through Visma Connect, end to end over real HTTP to the sandbox: the Connect button, the
consent page, the callback bound to the company, the organisation choice (CVR checked), documents
posted; consent withdrawn → vouchers wait as awaiting authorisation; reconnected → they go out."""

from __future__ import annotations

import json
import re
import time
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from bookkeeping.models import AuditEvent, PaymentMethodList, VoucherState
from bookkeeping.services.sending import vouchers_dispatch
from expense_documents.services.common import SetupError
from expense_documents.services.dinero_connection import dinero_choose_organisation, normalise_cvr
from expense_documents.services.dinero_setup import dinero_setup
from integrations import tokens
from integrations.models import Integration, IntegrationStatus, OAuthState
from tests import factories
from tests.dinero_fixtures import (
    DINERO_NOPRO_ORG,
    DINERO_ORG,
    VISMA_CLIENT,
    VISMA_REDIRECT,
    VISMA_USER,
    expense,
    sync_and_send,
    visma_consent,
)


def _bookkeeper(company):
    """A staff member serving the company, with the permissions the demo's staff have (not a superuser)."""
    user = factories.UserFactory(username="lars")
    company.members.add(user)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=[
        "integrations", "bookkeeping", "expense_documents"]))
    return user


def _approve_in_visma_connect(auth_url: str, *, email=VISMA_USER[0], password=VISMA_USER[1], decision="accept"):
    """What the staff member's browser does at Visma Connect (the sandbox's login and consent page)."""
    page = requests.get(auth_url, timeout=5)
    assert page.status_code == 200 and "Tillad" in page.text, page.text
    hidden = dict(re.findall(r'<input type=hidden name="([^"]+)" value="([^"]*)"', page.text))
    answer = requests.post(auth_url.split("?")[0], data={**hidden, "email": email, "password": password,
                                                         "decision": decision}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert back.path == "/integrations/dinero/callback"
    return f"{back.path}?{back.query}"


def _connect_through_the_admin(client, integration) -> str:
    start = client.get(reverse("integrations:dinero_connect", args=[integration.pk]))
    assert start.status_code == 302
    return _approve_in_visma_connect(start["Location"])


# --- connecting --------------------------------------------------------------------------------------------


def test_the_wizard_connects_through_visma_connect_and_chooses_the_organisation(client, dinero_sandbox, dk_company):
    user = _bookkeeper(dk_company)
    client.force_login(user)
    connect_url = reverse("admin:dinero_setup_connect", args=[dk_company.pk])
    page = client.get(connect_url).content.decode()
    assert "Connect with Visma Connect" in page
    assert "Personal integration — only the company's own Dinero" in page

    start = client.post(connect_url, {"method": "visma_connect"})
    integration = Integration.objects.get(company=dk_company, system="dinero")
    assert start["Location"] == reverse("integrations:dinero_connect", args=[integration.pk])
    auth = client.get(start["Location"])["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(auth).query).items()}
    assert auth.split("?")[0] == django_settings.VISMA_CONNECT_AUTHORIZE_URL
    assert query["client_id"] == VISMA_CLIENT[0] and query["response_type"] == "code"
    assert query["scope"].split() == ["dineropublicapi:read", "dineropublicapi:write", "offline_access"]
    assert query["redirect_uri"] == VISMA_REDIRECT and query["code_challenge_method"] == "S256"
    state = OAuthState.objects.get(state=query["state"])
    assert state.integration == integration and state.user == user and state.secret_params["code_verifier"]

    callback = _approve_in_visma_connect(auth)
    chosen = client.get(callback)
    assert chosen["Location"] == reverse("admin:dinero_setup_organisation", args=[integration.pk])
    integration.refresh_from_db()
    assert integration.credentials["refresh_token"] and integration.status == IntegrationStatus.SETTING_UP
    with connection.cursor() as cursor:  # encrypted at rest
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [integration.pk])
        assert integration.credentials["refresh_token"] not in cursor.fetchone()[0]

    choice_page = client.get(chosen["Location"]).content.decode()
    assert "Demo ApS (123456) · CVR 12345678" in choice_page and "Uden Pro ApS (654321)" in choice_page
    assert "no Dinero Pro" in choice_page
    no_pro = client.post(chosen["Location"], {"organization_id": str(DINERO_NOPRO_ORG)}).content.decode()
    assert "no active Dinero Pro" in no_pro
    response = client.post(chosen["Location"], {"organization_id": str(DINERO_ORG)})
    assert response["Location"] == reverse("admin:dinero_setup_step", args=[integration.pk, "accounts"])
    integration.refresh_from_db()
    assert integration.settings["organization_id"] == str(DINERO_ORG)
    assert integration.settings["auth"] == "visma_connect" and "api_key" not in integration.credentials

    response = client.post(response["Location"], {"error_account": "7480", "import_chart": "on"})
    response = client.post(response["Location"], {"invoice_counter_account": "63000"})
    payment_list = PaymentMethodList.objects.get(company=dk_company)
    response = client.post(response["Location"], {"receipt_payment_list": payment_list.pk, "book_vouchers": "on"})
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE
    page = client.get(response["Location"]).content.decode()
    assert "Reconnect Dinero (Visma Connect)" in page

    document = expense(dk_company, "VC-1")
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED
    assert dinero_sandbox.get_purchase_voucher(DINERO_ORG, document.voucher.remote_id)["ExternalReference"]


def test_posting_then_consent_withdrawn_then_reconnected(client, visma_dinero, dinero_sandbox,
                                                         django_capture_on_commit_callbacks):
    """The issue's "done when": posts; revoking the consent queues documents as awaiting authorisation;
    reconnecting sends them."""
    company = visma_dinero.company
    user = _bookkeeper(company)
    first = expense(company, "INV-1")
    sync_and_send(first)
    assert first.voucher.state == VoucherState.POSTED

    dinero_sandbox.visma.revoke(VISMA_USER[0], VISMA_CLIENT[0])  # the client withdraws the consent in Dinero
    waiting = [expense(company, "INV-2"), expense(company, "REC-1", type="receipt", supplier="Café Norden",
                                                  supplier_vat="", lines=(("420.00", "REP", 4140, "Frokost"),))]
    with django_capture_on_commit_callbacks(execute=True):
        for document in waiting:
            sync_and_send(document)
    integration = Integration.objects.get(pk=visma_dinero.pk)
    assert [d.voucher.state for d in waiting] == [VoucherState.AWAITING_AUTHORISATION] * 2
    assert integration.status == IntegrationStatus.NEEDS_REAUTHORISATION
    assert "invalid_grant" in integration.status_message and "Connect Dinero" in integration.status_message
    assert mail.outbox and user.email in mail.outbox[-1].to and "Nothing is lost" in mail.outbox[-1].body
    client.force_login(user)
    index = client.get(reverse("admin:index")).content.decode()
    assert "Needs re-authorisation" in index and "Demo ApS" in index
    assert len([v for v in dinero_sandbox.org.purchase_vouchers.values()]) == 1

    callback = _connect_through_the_admin(client, integration)
    with django_capture_on_commit_callbacks(execute=True):
        back = client.get(callback)
    assert back["Location"] == reverse("admin:integrations_integration_change", args=[integration.pk])
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE
    vouchers_dispatch(system="dinero", max_seconds=30)
    for document in waiting:
        document.refresh_from_db()
        document.voucher.refresh_from_db()
        assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    assert len(dinero_sandbox.org.purchase_vouchers) == 3
    assert AuditEvent.objects.filter(integration=integration, action="integration:authorised").exists()


def test_the_organisation_must_still_be_reachable_after_reconnecting(client, visma_dinero, dinero_sandbox):
    dinero_sandbox.visma.revoke(VISMA_USER[0], VISMA_CLIENT[0])
    dinero_sandbox.visma.withdraw_organization(VISMA_USER[0], DINERO_ORG)
    user = _bookkeeper(visma_dinero.company)
    client.force_login(user)
    back = client.get(_connect_through_the_admin(client, visma_dinero))
    assert back["Location"] == reverse("admin:dinero_setup_organisation", args=[visma_dinero.pk])
    page = client.get(back["Location"]).content.decode()
    assert "Demo ApS (123456)" not in page and "Uden Pro ApS (654321)" in page


def test_consent_cancelled_in_visma_connect(client, dinero_sandbox, dk_company):
    user = _bookkeeper(dk_company)
    client.force_login(user)
    client.post(reverse("admin:dinero_setup_connect", args=[dk_company.pk]), {"method": "visma_connect"})
    integration = Integration.objects.get(company=dk_company)
    auth = client.get(reverse("integrations:dinero_connect", args=[integration.pk]))["Location"]
    callback = _approve_in_visma_connect(auth, decision="cancel")
    response = client.get(callback, follow=True)
    assert "Dinero did not grant access: access_denied" in response.content.decode()
    integration.refresh_from_db()
    assert not integration.credentials.get("refresh_token")


def test_the_cvr_is_checked_against_the_company(visma_dinero, dinero_sandbox):
    company = visma_dinero.company
    company.org_number = "DK 87 65 43 21"
    company.save()
    with pytest.raises(SetupError) as refused:
        dinero_choose_organisation(integration=visma_dinero, organization_id=str(DINERO_ORG), actor="test")
    assert "CVR 12345678" in refused.value.message and "DK 87 65 43 21" in refused.value.message
    dinero_choose_organisation(integration=visma_dinero, organization_id=str(DINERO_ORG), actor="test",
                               accept_other_cvr=True)
    assert AuditEvent.objects.filter(integration=visma_dinero, action="dinero:cvr_differs").exists()
    assert [normalise_cvr(v) for v in ("DK12345678", "12 34 56 78", "1234567", "SE5566778899", "")] == [
        "12345678", "12345678", "", "", ""]


def test_the_organisation_cannot_change_once_vouchers_are_there(visma_dinero, dinero_sandbox):
    document = expense(visma_dinero.company, "INV-1")
    sync_and_send(document)
    dinero_sandbox.organization(DINERO_NOPRO_ORG).is_pro = True
    with pytest.raises(SetupError) as refused:
        dinero_choose_organisation(integration=visma_dinero, organization_id=str(DINERO_NOPRO_ORG), actor="test")
    assert "already in Dinero organisation 123456" in refused.value.message


# --- tokens --------------------------------------------------------------------------------------------------


def _expire(integration):
    integration.credentials = dict(integration.credentials, expires_at=time.time() - 1)
    integration.save()
    return Integration.objects.get(pk=integration.pk)


def test_refresh_rotates_and_the_old_refresh_token_is_dead(visma_dinero, dinero_sandbox, settings):
    old = visma_dinero.credentials["refresh_token"]
    token = tokens.access_token(integration=_expire(visma_dinero))
    visma_dinero.refresh_from_db()
    assert visma_dinero.credentials["refresh_token"] != old and token == visma_dinero.credentials["access_token"]
    assert dinero_sandbox.visma.refresh_count == 1
    reuse = requests.post(settings.VISMA_CONNECT_TOKEN_URL, timeout=5, data={
        "client_id": VISMA_CLIENT[0], "client_secret": VISMA_CLIENT[1], "grant_type": "refresh_token",
        "refresh_token": old})
    assert reuse.status_code == 400 and reuse.json() == {"error": "invalid_grant"}


def test_a_401_from_dinero_refreshes_once_then_succeeds(visma_dinero, dinero_sandbox):
    from integrations import registry

    dinero_sandbox.clock.advance(3601)  # Dinero considers the access token expired; Kontera does not know yet
    info = registry.connector_for(Integration.objects.get(pk=visma_dinero.pk)).check_connection()
    assert info.remote_company_id == str(DINERO_ORG)
    assert dinero_sandbox.visma.refresh_count == 1


def test_idle_visma_connections_are_refreshed_by_the_daily_job(visma_dinero, dinero_sandbox):
    from bookkeeping.tasks import refresh_idle_tokens

    assert refresh_idle_tokens() == {"refreshed": 0, "needs_reauthorisation": 0}
    visma_dinero.credentials = dict(visma_dinero.credentials, refreshed_at=time.time() - 8 * 86400)
    visma_dinero.save()
    assert refresh_idle_tokens() == {"refreshed": 1, "needs_reauthorisation": 0}
    assert dinero_sandbox.visma.refresh_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_refresh_exactly_once(dinero_sandbox, dk_company):
    import threading

    from django.db import close_old_connections

    from expense_documents.services.dinero_connection import visma_connect_start

    integration = visma_connect_start(company=dk_company, actor="test")
    visma_consent(dinero_sandbox, integration)
    _expire(integration)
    results, errors = [], []
    barrier = threading.Barrier(8)

    def worker():
        try:
            barrier.wait()
            results.append(tokens.access_token(integration=Integration.objects.get(pk=integration.pk)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(results)) == 1
    assert dinero_sandbox.visma.refresh_count == 1 and dinero_sandbox.visma.refresh_reuse == []


# --- the doors: company membership and the named permission -------------------------------------------------


def test_connect_and_callback_check_the_company_and_the_permission(client, dinero_sandbox, dk_company):
    integration = factories.IntegrationFactory(company=dk_company, system="dinero", status="setting_up")
    outsider = factories.UserFactory(username="outsider")
    client.force_login(outsider)  # staff, serves another company
    assert client.get(reverse("integrations:dinero_connect", args=[integration.pk])).status_code == 403
    assert client.get(reverse("admin:dinero_setup_organisation", args=[integration.pk])).status_code == 403
    assert client.post(reverse("admin:dinero_setup_connect", args=[dk_company.pk]),
                       {"method": "visma_connect"}).status_code == 403

    member = factories.UserFactory(username="viewer")  # serves the company, may not connect
    dk_company.members.add(member)
    client.force_login(member)
    assert client.get(reverse("integrations:dinero_connect", args=[integration.pk])).status_code == 403

    # a state started by someone who may, returned by someone who may not: refused, nothing stored
    url = tokens.authorisation_url(integration=integration, user=None)
    callback = _approve_in_visma_connect(url)
    client.get(callback)
    integration.refresh_from_db()
    assert integration.credentials == {}


def test_a_fortnox_state_is_refused_at_the_dinero_callback(client, dinero_sandbox, dk_company, superuser):
    fortnox = factories.IntegrationFactory(company=dk_company, system="fortnox", status="setting_up")
    state = OAuthState.objects.create(state="f" * 43, integration=fortnox)
    client.force_login(superuser)
    response = client.get(f"/integrations/dinero/callback?code=x&state={state.state}", follow=True)
    assert "started for another system" in response.content.decode()
    assert Integration.objects.get(pk=fortnox.pk).credentials == {}


# --- the command twins --------------------------------------------------------------------------------------


def test_dinero_connect_prints_the_authorisation_url(dinero_sandbox, dk_company):
    out = StringIO()
    call_command("dinero_connect", dk_company.slug, "--json", stdout=out)
    result = json.loads(out.getvalue())
    query = parse_qs(urlsplit(result["authorisation_url"]).query)
    assert query["client_id"] == [VISMA_CLIENT[0]] and result["valid_minutes"] == 10
    assert OAuthState.objects.filter(state=query["state"][0], integration_id=result["integration"]).exists()


def test_dinero_setup_without_an_api_key_uses_the_visma_consent(dinero_sandbox, dk_company):
    with pytest.raises(SetupError) as refused:
        dinero_setup(company=dk_company, api_key=None, organization_id=str(DINERO_ORG), error_account=7480,
                     import_chart=True, invoice_payment_method="63000", receipt_payment_list="Kvitteringer")
    assert "run dinero_connect demo-aps" in refused.value.message
    from expense_documents.services.dinero_connection import visma_connect_start

    visma_consent(dinero_sandbox, visma_connect_start(company=dk_company))
    out = StringIO()
    call_command("dinero_connect", dk_company.slug, "--organisations", "--json", stdout=out)
    listed = json.loads(out.getvalue())["organisations"]
    assert [(o["organization_id"], o["cvr_matches"], o["dinero_pro"]) for o in listed] == [
        ("123456", True, True), ("654321", False, False)]
    out = StringIO()
    call_command("dinero_setup", dk_company.slug, "--organization-id", str(DINERO_ORG), "--error-account", "7480",
                 "--invoice-payment-method", "63000", "--receipt-payment-methods", "Kvitteringer", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["status"] == "active" and result["connection"] == "Visma Connect" and result["api_key"] == ""


def test_the_connection_pages_speak_danish_and_swedish(client, dinero_sandbox, dk_company):
    client.force_login(_bookkeeper(dk_company))
    url = reverse("admin:dinero_setup_connect", args=[dk_company.pk])
    danish = client.get(url, HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert "Forbind med Visma Connect" in danish and "Personlig integration — kun virksomhedens eget Dinero" in danish
    swedish = client.get(url, HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Anslut med Visma Connect" in swedish and "Connect with Visma Connect" not in swedish


def test_without_a_visma_connect_application_nothing_starts(client, dinero_sandbox, dk_company, settings):
    settings.VISMA_CONNECT_CLIENT_ID = ""
    integration = factories.IntegrationFactory(company=dk_company, system="dinero", status="setting_up")
    client.force_login(_bookkeeper(dk_company))
    page = client.get(reverse("integrations:dinero_connect", args=[integration.pk]), follow=True).content.decode()
    assert "no Visma Connect application configured (VISMA_CONNECT_CLIENT_ID" in page
    assert not OAuthState.objects.exists()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="VISMA_CONNECT_CLIENT_ID"):
        call_command("dinero_connect", dk_company.slug, stdout=StringIO())
