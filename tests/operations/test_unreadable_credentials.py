"""Issue 12: with another encryption key (or a changed SECRET_KEY while the key is derived from it),
`/admin/` and the integration list answered 500. Now an unreadable credential never breaks a page:
the integration says so, the worker leaves its vouchers waiting with that reason, `check` warns."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from bookkeeping.models import AuditEvent, VoucherState
from bookkeeping.services.sending import vouchers_dispatch
from bookkeeping.services.vouchers import voucher_queue
from integrations.models import Integration
from operations.checks import credentials_readable
from tests.factories import CompanyFactory, UserFactory, balanced_voucher

MESSAGE = "Credentials unreadable — reconnect or enter them again."
ROWS = ((1930, "100.00", "0"), (3011, "0", "100.00", "100"))


def lose_the_key(settings, how: str) -> None:
    if how == "lost key":
        settings.KONTERA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    elif how == "key removed from the list":
        settings.KONTERA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old one is gone, a new one first
    elif how == "SECRET_KEY changed":
        settings.SECRET_KEY = "another-secret-key-" + "y" * 40
    else:  # pragma: no cover
        raise AssertionError(how)


@pytest.fixture
def stored(db, settings, request):
    """An integration with credentials stored the way each scenario stores them."""
    how = request.param
    if how == "key removed from the list":
        settings.KONTERA_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), settings.KONTERA_ENCRYPTION_KEYS[0]]
    if how == "SECRET_KEY changed":
        settings.KONTERA_ENCRYPTION_KEYS = []  # the key is derived from SECRET_KEY
        settings.SECRET_KEY = "the-first-secret-key-" + "x" * 40
    integration = Integration.objects.create(company=CompanyFactory(name="Brf Exempelgården"), system="dinero",
                                             status="active", credentials={"api_key": "dinero-api-key-123456"})
    return how, integration


SCENARIOS = ["lost key", "key removed from the list", "SECRET_KEY changed"]


@pytest.mark.parametrize("stored", SCENARIOS, indirect=True)
def test_no_page_breaks_and_the_integration_says_what_to_do(client, settings, stored):
    how, integration = stored
    lose_the_key(settings, how)
    client.force_login(UserFactory(username="root", is_superuser=True))
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200 and MESSAGE in index.content.decode()
    listing = client.get(reverse("admin:integrations_integration_changelist"))
    assert listing.status_code == 200 and MESSAGE in listing.content.decode()
    page = client.get(reverse("admin:integrations_integration_change", args=[integration.pk]))
    assert page.status_code == 200 and MESSAGE in page.content.decode()
    assert client.get(reverse("admin:bookkeeping_voucher_changelist")).status_code == 200


@pytest.mark.parametrize("stored", SCENARIOS, indirect=True)
def test_check_warns_about_unreadable_credentials(settings, stored):
    how, integration = stored
    assert [m.id for m in credentials_readable(None)] == []
    lose_the_key(settings, how)
    warnings = credentials_readable(None)
    assert [m.id for m in warnings] == ["kontera.W002"]
    assert f"dinero #{integration.pk}" in warnings[0].msg


def test_manage_py_check_prints_the_warning(db, settings, capsys):
    Integration.objects.create(company=CompanyFactory(), system="dinero", credentials={"api_key": "k" * 20})
    settings.KONTERA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    call_command("check")
    assert "kontera.W002" in capsys.readouterr().err


def test_a_previous_secret_key_kept_as_fallback_still_decrypts_until_rotated(db, settings):
    settings.KONTERA_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = old = "the-old-secret-key-" + "o" * 40
    integration = Integration.objects.create(company=CompanyFactory(), system="dinero",
                                             credentials={"api_key": "dinero-api-key-123456"})
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-new-secret-key-" + "n" * 40, [old]
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": "dinero-api-key-123456"}
    assert [m.id for m in credentials_readable(None)] == ["kontera.W003"]  # readable only with the old key
    call_command("rotate_secrets")
    settings.SECRET_KEY_FALLBACKS = []
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": "dinero-api-key-123456"}
    assert credentials_readable(None) == []


def test_the_worker_leaves_vouchers_waiting_with_the_reason_then_sends_them(connected_fortnox, settings):
    key = settings.KONTERA_ENCRYPTION_KEYS[0]
    voucher = balanced_voucher(connected_fortnox.company, rows=ROWS, date=timezone.localdate(), series="A")
    assert voucher_queue(voucher=voucher, actor="test", kick=False) == []
    settings.KONTERA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    for _attempt in range(2):
        vouchers_dispatch(max_seconds=10)
        voucher.refresh_from_db()
        assert voucher.state == VoucherState.QUEUED  # waiting: not failed, not sent
        assert voucher.last_error == MESSAGE and voucher.last_error_code == "credentials_unreadable"
        assert voucher.next_attempt_at > timezone.now()
        type(voucher).objects.filter(pk=voucher.pk).update(next_attempt_at=timezone.now())
    assert AuditEvent.objects.filter(voucher=voucher, action="voucher:waiting").count() == 1  # said once
    assert voucher.attempts == 0

    settings.KONTERA_ENCRYPTION_KEYS = [key]  # the operator puts the key back
    vouchers_dispatch(max_seconds=10)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED and voucher.remote_id


def test_saving_the_integration_page_without_new_secrets_keeps_what_a_restored_key_opens(client, db, settings):
    """Changing a setting on the page of an unreadable integration must not overwrite the ciphertext."""
    from django.db import connection

    key = settings.KONTERA_ENCRYPTION_KEYS[0]
    integration = Integration.objects.create(company=CompanyFactory(), system="dinero", status="active",
                                             settings={"organization_id": "123456"},  # no raw JSON on the page
                                             credentials={"api_key": "dinero-api-key-123456"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [integration.pk])
        raw = cursor.fetchone()[0]
    settings.KONTERA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    from bookkeeping.admin.integrations import IntegrationForm

    loaded = Integration.objects.get(pk=integration.pk)
    form = IntegrationForm(data={"company": loaded.company_id, "system": "dinero",
                                 "settings": '{"organization_id": "123456"}'}, instance=loaded)
    assert form.is_valid(), form.errors
    form.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [integration.pk])
        assert cursor.fetchone()[0] == raw
    settings.KONTERA_ENCRYPTION_KEYS = [key]
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": "dinero-api-key-123456"}
