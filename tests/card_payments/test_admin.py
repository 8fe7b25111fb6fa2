"""The Nets Easy pages in the admin: settings with activation, OK, sync with progress, payouts, company scoping."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse

from bookkeeping.models import Voucher, VoucherKind
from card_payments.models import NetsPayout, PayoutState, ProblemReport
from card_payments.services.settings import nets_accounts
from integrations.models import Integration, IntegrationStatus
from tests.factories import CompanyFactory, IntegrationFactory, UserFactory
from tests.netseasy_fixtures import FORTNOX_TENANT, NETS_KEY, days_ago, nets_values, sell


def url(name, company):
    return reverse(f"admin:card_payments_netspayout_{name}", args=[company.pk])


def grant(user, company):
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["integrations", "card_payments"]))
    company.members.add(user)
    return user


@pytest.fixture
def other_company(db):
    """Another client with its own Nets Easy integration and a booked payout; Anna does not serve it."""
    company = CompanyFactory(slug="annan-butik", name="Annan Butik AB")
    integration = IntegrationFactory(company=company, system="netseasy", status="active", settings=nets_values(),
                                     credentials={"secret_key": "live-secret-key-" + "9" * 32})
    payout = NetsPayout.objects.create(integration=integration, company=company, nets_id="f" * 32, reference="REF-ANNAN-999",
                                       date=days_ago(2), currency="SEK", amount=Decimal("10.00"),
                                       state=PayoutState.BOOKED)
    ProblemReport.objects.create(integration=integration, company=company, text="Annan butiks rapport")
    return company, integration, payout


@pytest.fixture
def anna(staff_user, connected_fortnox, client):
    grant(staff_user, connected_fortnox.company)
    client.force_login(staff_user)
    return staff_user


def form_data(**overrides):
    values = nets_values()
    data = {k: v for k, v in values.items() if k != "vat_accounts"}
    data.update({"vat_account_25": 2611, "vat_account_12": 2621, "vat_account_6": 2631, "secret_key": NETS_KEY,
                 "sales_account_eu_b2b": ""})
    data.update(overrides)
    return data


def test_the_settings_page_follows_the_guide(client, anna, connected_fortnox, nets_sandbox):
    page = client.get(url("settings", connected_fortnox.company))
    assert page.status_code == 200
    text = page.content.decode()
    for words in ("Nets Easy live secret key", "Book sales from", "Sales account for sales within Sweden",
                  "within the EU", "outside the EU", "reconciliation account", "Bank account", "Betalsätt"):
        assert words in text
    assert 'value="1580"' in text and 'value="6040"' in text  # BAS defaults


def test_saving_in_the_admin_sends_the_test_voucher_and_shows_ok(client, anna, connected_fortnox, nets_sandbox,
                                                                  fortnox_sandbox,
                                                                  django_capture_on_commit_callbacks):
    company = connected_fortnox.company
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("settings", company), form_data())
    assert response.status_code == 302
    integration = Integration.objects.get(company=company, system="netseasy")
    assert integration.status == IntegrationStatus.AWAITING_CONFIRMATION
    assert integration.credentials["secret_key"] == NETS_KEY
    assert len(fortnox_sandbox.vouchers(FORTNOX_TENANT)) == 1
    assert [m.to for m in mail.outbox] == [[anna.email]]
    page = client.get(url("settings", company)).content.decode()
    assert "The test voucher is in Fortnox as A1" in page
    assert 'id="confirm-ok"' in page
    assert NETS_KEY not in page  # only the masked key is shown
    # the integration page offers the flow's buttons
    tools = client.get(reverse("admin:integrations_integration_change", args=[integration.pk])).content.decode()
    for label in ("Nets Easy settings", "OK – start automatic booking", "Sync payouts now",
                  "Payouts and reconciliation", "Report a problem"):
        assert label in tools

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url("confirm", company))
    assert done.status_code == 302
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE


def test_a_wrong_account_is_shown_on_the_form_and_nothing_is_saved(client, anna, connected_fortnox, nets_sandbox):
    page = client.post(url("settings", connected_fortnox.company), form_data(sales_account_world=3999))
    assert page.status_code == 200
    assert "Account 3999 is not in the account plan" in page.content.decode()
    assert not Integration.objects.filter(system="netseasy").exists()


def test_a_failed_test_voucher_shows_the_reason_in_words(client, anna, connected_fortnox, nets_sandbox,
                                                         fortnox_sandbox, django_capture_on_commit_callbacks):
    fortnox_sandbox.tenant(FORTNOX_TENANT).add_account(1930, "Företagskonto", active=False)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("settings", connected_fortnox.company), form_data())
    page = client.get(url("settings", connected_fortnox.company)).content.decode()
    assert "The test voucher did not reach Fortnox" in page
    assert "An account on the voucher is not active in Fortnox" in page and "1930" in page
    assert 'id="confirm-ok"' not in page
    refused = client.post(url("confirm", connected_fortnox.company))
    assert refused.status_code == 302
    assert Integration.objects.get(system="netseasy").status == IntegrationStatus.AWAITING_CONFIRMATION


def test_sync_from_the_admin_shows_progress_and_the_result(client, anna, nets_active, nets_sandbox,
                                                           django_capture_on_commit_callbacks):
    sell(nets_sandbox, day=days_ago(3))
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    company = nets_active.company
    confirm_page = client.get(url("sync", company))
    assert confirm_page.status_code == 200 and "Start the sync" in confirm_page.content.decode()
    response = client.post(url("sync", company), {"from_date": ""})
    assert response.status_code == 302 and response["Location"] == url("progress", company)
    progress = client.get(url("progress", company)).content.decode()
    assert "Finished." in progress and 'http-equiv="refresh"' not in progress
    assert "Payouts booked</td><td>1<" in progress
    assert NetsPayout.objects.get().state == PayoutState.BOOKED


def test_the_payout_page_shows_expected_booked_and_residual(client, anna, nets_active, nets_sandbox):
    from tests.netseasy_fixtures import sync_and_post

    sell(nets_sandbox, day=days_ago(3))
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    sync_and_post(nets_active)
    payout = NetsPayout.objects.get()
    page = client.get(reverse("admin:card_payments_netspayout_change", args=[payout.pk])).content.decode()
    assert "Expected payout (Nets)" in page and f"{payout.amount:.2f}" in page
    assert "id='residual' style='text-align:right;color:#2e7d32'>0.00<" in page
    assert "2 of 2 vouchers are in Fortnox" in page
    listing = client.get(reverse("admin:card_payments_netspayout_changelist")).content.decode()
    assert payout.reference in listing


def test_a_residual_error_is_shown_in_red(client, anna, nets_active):
    payout = NetsPayout.objects.create(integration=nets_active, company=nets_active.company, nets_id="e" * 32,
                                       date=days_ago(1), currency="SEK", amount=Decimal("5.00"),
                                       state=PayoutState.RESIDUAL_ERROR, residual=Decimal("-0.50"),
                                       state_message="The reconciliation account does not net to zero")
    listing = client.get(reverse("admin:card_payments_netspayout_changelist")).content.decode()
    assert "color:#c62828\">-0.50<" in listing
    assert "Reconciliation error" in listing
    assert payout.pk


# --- company isolation ------------------------------------------------------------------------


def test_staff_see_only_their_companies_payouts_and_reports(client, anna, nets_active, other_company):
    company, integration, payout = other_company
    mine = NetsPayout.objects.create(integration=nets_active, company=nets_active.company, nets_id="a" * 32,
                                     reference="REF-MIN-111", date=days_ago(2), currency="SEK", amount=Decimal("1.00"))
    listing = client.get(reverse("admin:card_payments_netspayout_changelist")).content.decode()
    assert mine.reference in listing and "REF-ANNAN" not in listing and "Annan Butik" not in listing
    other = client.get(reverse("admin:card_payments_netspayout_change", args=[payout.pk]))
    assert other.status_code == 302  # "does not exist" for Anna
    reports = client.get(reverse("admin:card_payments_problemreport_changelist")).content.decode()
    assert "Annan butiks rapport" not in reports


@pytest.mark.parametrize("name, method", [("settings", "get"), ("settings", "post"), ("confirm", "get"),
                                          ("confirm", "post"), ("sync", "get"), ("sync", "post"),
                                          ("progress", "get"), ("report", "get"), ("report", "post")])
def test_the_pages_of_another_company_are_refused(client, anna, other_company, name, method):
    company, integration, _payout = other_company
    response = getattr(client, method)(url(name, company), {"text": "x", **form_data()} if method == "post" else {})
    assert response.status_code == 403
    integration.refresh_from_db()
    assert integration.status == "active" and not Voucher.objects.filter(company=company).exists()
    assert ProblemReport.objects.filter(company=company).count() == 1


def test_a_staff_member_without_change_permission_cannot_save_or_confirm(client, connected_fortnox, nets_sandbox):
    viewer = UserFactory(username="bertil")
    viewer.user_permissions.add(Permission.objects.get(codename="view_integration"))
    connected_fortnox.company.members.add(viewer)
    client.force_login(viewer)
    assert client.get(url("settings", connected_fortnox.company)).status_code == 200
    assert client.post(url("settings", connected_fortnox.company), form_data()).status_code == 403
    assert client.post(url("confirm", connected_fortnox.company)).status_code == 403
    assert not Voucher.objects.filter(kind=VoucherKind.TEST).exists()


def test_mark_a_currency_payout_as_handled_from_the_list(client, anna, nets_active):
    payout = NetsPayout.objects.create(integration=nets_active, company=nets_active.company, nets_id="b" * 32,
                                       date=dt.date.today(), currency="EUR", amount=Decimal("12.00"),
                                       state=PayoutState.WAITING_CURRENCY)
    client.post(reverse("admin:card_payments_netspayout_changelist"),
                {"action": "mark_handled_by_hand", "_selected_action": [payout.pk]})
    payout.refresh_from_db()
    assert payout.state == PayoutState.HANDLED_MANUALLY and "anna" in payout.state_message


def test_the_generic_integration_form_cannot_bypass_the_test_voucher(client, anna, nets_active):
    # The integration page has no raw-JSON settings field any more (issue 14): settings posted to it as
    # JSON are ignored, and the page sends staff to the Nets Easy settings page (new test voucher, OK).
    page = reverse("admin:integrations_integration_change", args=[nets_active.pk])
    settings = {**nets_active.settings, "sales_account_eu": 3108}
    response = client.post(page, {"settings": json.dumps(settings), "secret_secret_key": ""})
    assert response.status_code == 302
    nets_active.refresh_from_db()
    # the accounts are the company's mapping rows now (card_payments/migrations/0003)
    assert nets_accounts(nets_active.company)["sales_account_eu"] == 3106 and nets_active.status == "active"
    shown = client.get(page).content.decode()
    assert 'name="settings"' not in shown and "on the Nets Easy settings page" in shown


def test_the_integration_page_says_where_the_test_voucher_is(client, anna, nets_saved):
    page = client.get(reverse("admin:integrations_integration_change", args=[nets_saved.pk])).content.decode()
    assert "Test voucher A1 (1) is in Fortnox. Check it there, then press OK" in page
