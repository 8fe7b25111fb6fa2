"""Settings with account checks, the test voucher with its e-mail, and OK before anything is booked."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from bookkeeping.models import Voucher, VoucherKind, VoucherState
from bookkeeping.services.plans import chart_import
from card_payments.models import NetsPayout, PayoutState
from card_payments.services.activation import activation_status, netseasy_confirm, netseasy_settings_save
from card_payments.services.settings import nets_accounts, settings_problems
from card_payments.services.sync import payouts_sync
from integrations.models import Integration, IntegrationStatus
from tests.factories import CompanyFactory, IntegrationFactory
from tests.netseasy_fixtures import (
    FORTNOX_TENANT,
    NETS_KEY,
    OTHER_NETS_KEY,
    days_ago,
    nets_values,
    remote_balance,
    sell,
    sync_and_post,
)


def save(company, actor, capture, **overrides):
    key = overrides.pop("secret_key", NETS_KEY)
    with capture(execute=True):
        saved = netseasy_settings_save(company=company, values=nets_values(**overrides), secret_key=key, actor=actor)
    saved.integration.refresh_from_db()  # the key check and the e-mail ran on commit
    return saved


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


# --- account checks on save ---------------------------------------------------------------------


@pytest.mark.parametrize("field, number, words", [
    ("sales_account_se", 3999, "is not in the account plan"),
    ("sales_account_eu", 5020, "is not active"),  # 5020 is inactive in the Fortnox chart
    ("receivable_account", 3001, "profit-and-loss account"),
    ("sales_account_world", 1930, "balance-sheet account"),
    ("fee_account", 9998, "is not in the account plan"),
])
def test_accounts_are_checked_against_the_imported_fortnox_chart(connected_fortnox, nets_sandbox, field, number,
                                                                 words, staff_user):
    with pytest.raises(ValidationError) as excinfo:
        netseasy_settings_save(company=connected_fortnox.company, values=nets_values(**{field: number}),
                               secret_key=NETS_KEY, actor=staff_user)
    assert words in " ".join(errors_of(excinfo)[field])
    assert not Integration.objects.filter(system="netseasy").exists()  # nothing saved
    assert not Voucher.objects.exists()


def test_vat_accounts_and_series_are_checked(connected_fortnox, nets_sandbox, staff_user):
    with pytest.raises(ValidationError) as excinfo:
        netseasy_settings_save(company=connected_fortnox.company,
                               values=nets_values(vat_accounts={"25": 2611, "12": 3999}, payout_series="B"),
                               secret_key=NETS_KEY, actor=staff_user)
    errors = errors_of(excinfo)
    assert "12" in errors["vat_accounts"][0] and "3999" in errors["vat_accounts"][0]
    assert "does not allow manual vouchers" in errors["payout_series"][0]


def test_an_account_deactivated_in_fortnox_is_refused_after_the_next_import(connected_fortnox, nets_sandbox,
                                                                          fortnox_sandbox):
    company = connected_fortnox.company
    assert settings_problems(company=company, values=nets_values()) == ({}, [])
    fortnox_sandbox.tenant(FORTNOX_TENANT).add_account(3106, "Försäljning varor till annat EU-land", active=False)
    chart_import(integration=connected_fortnox, actor="test")
    errors, _warnings = settings_problems(company=company, values=nets_values())
    assert list(errors) == ["sales_account_eu"] and "3106 is not active" in errors["sales_account_eu"]


def test_1516_is_allowed_with_a_warning(connected_fortnox, nets_sandbox, staff_user,
                                        django_capture_on_commit_callbacks):
    saved = save(connected_fortnox.company, staff_user, django_capture_on_commit_callbacks, receivable_account=1516)
    assert any("Tvistiga kundfordringar" in w and "1580" in w for w in saved.warnings)
    # the accounts are the company's mapping rows now (card_payments/migrations/0003)
    assert nets_accounts(connected_fortnox.company)["receivable_account"] == 1516


def test_without_a_connected_fortnox_the_settings_are_refused_clearly(db, nets_sandbox, staff_user):
    company = CompanyFactory(slug="utan-fortnox")
    with pytest.raises(ValidationError) as excinfo:
        netseasy_settings_save(company=company, values=nets_values(), secret_key=NETS_KEY, actor=staff_user)
    assert "Connect Fortnox" in errors_of(excinfo)["__all__"][0]
    IntegrationFactory(company=company, system="fortnox", status="active")  # connected, but no chart imported
    with pytest.raises(ValidationError) as excinfo:
        netseasy_settings_save(company=company, values=nets_values(), secret_key=NETS_KEY, actor=staff_user)
    assert "Import the Fortnox chart of accounts" in errors_of(excinfo)["__all__"][0]


@pytest.mark.parametrize("key, words", [
    ("", "Paste the Nets Easy live secret key"),
    ("live-checkout-key-0123456789abcdef0123456789abcdef", "checkout key"),
    ("Bearer abc", "looks like"),
])
def test_the_secret_key_is_required_and_checked_for_shape(connected_fortnox, nets_sandbox, key, words, staff_user):
    with pytest.raises(ValidationError) as excinfo:
        netseasy_settings_save(company=connected_fortnox.company, values=nets_values(), secret_key=key,
                               actor=staff_user)
    assert words in " ".join(sum(errors_of(excinfo).values(), []))


def test_the_secret_key_is_stored_encrypted(nets_saved):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [nets_saved.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith("fernet:") and NETS_KEY not in raw
    assert Integration.objects.get(pk=nets_saved.pk).credentials["secret_key"] == NETS_KEY
    assert NETS_KEY not in str(nets_saved.settings)


# --- the test voucher, its e-mail and OK ------------------------------------------------------


def test_saving_posts_a_test_voucher_and_emails_its_fortnox_number(nets_saved, fortnox_sandbox, staff_user):
    integration = nets_saved
    assert integration.status == IntegrationStatus.AWAITING_CONFIRMATION
    voucher = Voucher.objects.get(kind=VoucherKind.TEST)
    assert voucher.state == VoucherState.POSTED and voucher.remote_number
    [landed] = fortnox_sandbox.vouchers(FORTNOX_TENANT)
    assert landed.description.startswith("Kontera TESTVERIFIKATION – Nets Easy-koppling")
    assert landed.series == "A"
    # every configured account is touched and no balance changes
    accounts = {row.account for row in landed.rows}
    assert accounts == {1580, 1930, 6040, 3001, 3106, 3105, 2611, 2621, 2631}
    for account in accounts:
        assert remote_balance(fortnox_sandbox, account) == Decimal("0.00")
    [message] = mail.outbox
    assert message.to == [staff_user.email]
    assert f"A{landed.number}" in message.subject and f"A{landed.number}" in message.body
    assert "1580" in message.body and "Fordringar för kontokort" in message.body
    assert "netseasy_confirm brf-exempel" in message.body
    assert NETS_KEY not in message.body
    status = activation_status(integration)
    assert status.state == "posted" and status.key_ok is True and status.can_confirm


def test_the_followup_task_mails_once_when_the_number_is_known(nets_saved):
    from card_payments.tasks import test_voucher_followups

    assert len(mail.outbox) == 1
    assert test_voucher_followups() == {"sent": []}  # already sent: not again
    assert len(mail.outbox) == 1


def test_nothing_is_booked_before_ok(nets_saved, nets_sandbox, fortnox_sandbox, django_capture_on_commit_callbacks):
    sell(nets_sandbox, day=days_ago(3), reference="ORDER-1")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    result = sync_and_post(nets_saved)
    assert result.booking_paused and result.vouchers_created == 0
    payout = NetsPayout.objects.get()
    assert payout.state == PayoutState.NEW  # read and shown, not booked
    assert list(Voucher.objects.values_list("kind", flat=True)) == [VoucherKind.TEST]
    assert len(fortnox_sandbox.vouchers(FORTNOX_TENANT)) == 1

    with django_capture_on_commit_callbacks(execute=True):
        ok, message = netseasy_confirm(integration=nets_saved, actor="test")
    assert ok, message
    nets_saved.refresh_from_db()
    assert nets_saved.status == IntegrationStatus.ACTIVE
    # OK starts a sync at once (the worker); the vouchers then go out through the dispatcher
    payout.refresh_from_db()
    assert payout.state == PayoutState.BOOKED
    sync_and_post(nets_saved)
    assert len(fortnox_sandbox.vouchers(FORTNOX_TENANT)) == 3


def test_a_failed_test_voucher_is_explained_and_blocks_ok(connected_fortnox, nets_sandbox, fortnox_sandbox,
                                                          staff_user, django_capture_on_commit_callbacks):
    # 6040 is deactivated in Fortnox after our import: Fortnox refuses the test voucher
    fortnox_sandbox.tenant(FORTNOX_TENANT).add_account(6040, "Kontokortsavgifter", active=False)
    saved = save(connected_fortnox.company, staff_user, django_capture_on_commit_callbacks)
    status = activation_status(saved.integration)
    assert status.state == "failed"
    assert "not active in Fortnox" in status.message and "6040" in status.message
    assert not status.can_confirm
    ok, message = netseasy_confirm(integration=saved.integration, actor="test")
    assert not ok and "test voucher must be in Fortnox" in message
    saved.integration.refresh_from_db()
    assert saved.integration.status == IntegrationStatus.AWAITING_CONFIRMATION
    [message] = mail.outbox
    assert "failed" in message.subject and "not active" in message.body

    # fixed in Fortnox and re-imported: saving again sends a new test voucher, which lands
    fortnox_sandbox.tenant(FORTNOX_TENANT).add_account(6040, "Kontokortsavgifter", active=True)
    chart_import(integration=connected_fortnox, actor="test")
    again = save(connected_fortnox.company, staff_user, django_capture_on_commit_callbacks, secret_key=None)
    assert activation_status(again.integration).can_confirm
    assert Voucher.objects.filter(kind=VoucherKind.TEST).count() == 2


def test_a_refused_secret_key_is_shown_in_words_and_blocks_ok(connected_fortnox, nets_sandbox, staff_user,
                                                              django_capture_on_commit_callbacks):
    saved = save(connected_fortnox.company, staff_user, django_capture_on_commit_callbacks, secret_key=OTHER_NETS_KEY)
    status = activation_status(saved.integration)
    assert status.state == "posted" and status.key_ok is False
    assert "does not accept the secret key" in status.key_message
    ok, message = netseasy_confirm(integration=saved.integration, actor="test")
    assert not ok and "does not accept the secret key" in message


def test_saving_again_pauses_booking_until_ok_again(nets_active, nets_sandbox, staff_user,
                                                    django_capture_on_commit_callbacks):
    save(nets_active.company, staff_user, django_capture_on_commit_callbacks, secret_key=None, sales_account_eu=3108)
    nets_active.refresh_from_db()
    assert nets_active.status == IntegrationStatus.AWAITING_CONFIRMATION
    assert nets_active.credentials["secret_key"] == NETS_KEY  # kept
    sell(nets_sandbox, day=days_ago(3))
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    assert payouts_sync(integration=nets_active, actor="test").vouchers_created == 0


def test_a_key_revoked_later_stops_the_sync_and_tells_staff(nets_active, nets_sandbox, staff_user):
    nets_active.credentials = {"secret_key": OTHER_NETS_KEY}
    nets_active.save()
    mail.outbox.clear()
    result = payouts_sync(integration=nets_active, actor="test")
    assert not result.ok and "does not accept the secret key" in result.errors[0]
    nets_active.refresh_from_db()
    assert nets_active.status == IntegrationStatus.NEEDS_REAUTHORISATION
    # a second run does not fetch and does not mail again
    again = payouts_sync(integration=nets_active, actor="test")
    assert "nothing was fetched" in again.errors[0]


def test_demo_sets_up_the_web_shop_idempotently(connected_fortnox, nets_sandbox, fortnox_sandbox,
                                                django_capture_on_commit_callbacks):
    from demo.card_payments import demo_netseasy
    from integrations.sandboxes.netseasy import DEMO_SECRET_KEY

    company = connected_fortnox.company
    with django_capture_on_commit_callbacks(execute=True):
        first = demo_netseasy(company)
    second = demo_netseasy(company)
    assert first["created"] and not second["created"]
    integration = Integration.objects.get(company=company, system="netseasy")
    assert integration.credentials["secret_key"] == DEMO_SECRET_KEY
    assert integration.status == IntegrationStatus.AWAITING_CONFIRMATION
    assert Voucher.objects.filter(kind=VoucherKind.TEST).count() == 1


def test_demo_waits_for_fortnox_when_it_is_not_connected(db, nets_sandbox):
    from demo.card_payments import demo_netseasy

    company = CompanyFactory(slug="exempel-handel")
    IntegrationFactory(company=company, system="fortnox", status="setting_up")
    summary = demo_netseasy(company)
    assert "Connect Fortnox" in summary["waiting_for"]
    integration = Integration.objects.get(company=company, system="netseasy")
    assert integration.status == IntegrationStatus.SETTING_UP and integration.settings["sales_account_se"] == 3001
    assert demo_netseasy(company)["integration"] == integration.pk
    assert Integration.objects.filter(system="netseasy").count() == 1
