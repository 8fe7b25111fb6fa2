"""Secrets at rest: the raw database row never holds plain text; keys rotate."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from integrations.crypto import decrypt_text, mask_secret
from integrations.models import Integration
from tests.factories import CompanyFactory

SECRET = "live-secret-key-0123456789abcdef0123456789abcdef"


def raw_credentials(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_raw_row_holds_no_plaintext(db):
    integration = Integration.objects.create(company=CompanyFactory(), system="netseasy",
                                             credentials={"secret_key": SECRET})
    raw = raw_credentials(integration.pk)
    assert SECRET not in raw
    assert "0123456789abcdef" not in raw
    assert raw.startswith("fernet:")
    assert Integration.objects.get(pk=integration.pk).credentials == {"secret_key": SECRET}


def test_masked_display():
    assert mask_secret(SECRET) == "••••cdef"
    assert mask_secret("short") == "••••"
    assert mask_secret("") == ""


def test_key_rotation(db, settings):
    old_key = settings.KONTERA_ENCRYPTION_KEYS[0]
    integration = Integration.objects.create(company=CompanyFactory(), system="dinero",
                                             credentials={"api_key": "dinero-api-key-123456"})
    before = raw_credentials(integration.pk)
    new_key = Fernet.generate_key().decode()
    settings.KONTERA_ENCRYPTION_KEYS = [new_key, old_key]
    # old rows still decrypt while both keys are configured
    assert Integration.objects.get(pk=integration.pk).credentials["api_key"] == "dinero-api-key-123456"
    call_command("rotate_secrets")
    after = raw_credentials(integration.pk)
    assert after != before
    settings.KONTERA_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert Integration.objects.get(pk=integration.pk).credentials["api_key"] == "dinero-api-key-123456"
    Fernet(new_key.encode()).decrypt(after.removeprefix("fernet:").encode())


def test_a_row_without_its_key_is_unreadable_but_never_breaks_loading(db, settings):
    """Issue 12: a lost key used to raise on every query of the row (500 on the admin pages)."""
    key = settings.KONTERA_ENCRYPTION_KEYS[0]
    integration = Integration.objects.create(company=CompanyFactory(), system="dinero", credentials={"api_key": "x" * 20})
    raw = raw_credentials(integration.pk)
    settings.KONTERA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    # the crypto layer still says so loudly …
    with pytest.raises(Exception, match="cannot be decrypted"):
        decrypt_text(raw)
    # … but the model loads, empty and marked unreadable, and saving it keeps the ciphertext as it was
    loaded = Integration.objects.get(pk=integration.pk)
    assert loaded.credentials_unreadable and loaded.credentials == {}
    loaded.status = "paused"
    loaded.save()
    assert raw_credentials(integration.pk) == raw
    settings.KONTERA_ENCRYPTION_KEYS = [key]  # the key is found again: nothing was lost
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": "x" * 20}


def test_entering_credentials_again_replaces_an_unreadable_value(db, settings):
    integration = Integration.objects.create(company=CompanyFactory(), system="dinero", credentials={"api_key": "x" * 20})
    settings.KONTERA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    loaded = Integration.objects.get(pk=integration.pk)
    loaded.credentials = {**loaded.credentials, "api_key": "new-api-key-0000"}
    loaded.save()
    again = Integration.objects.get(pk=integration.pk)
    assert not again.credentials_unreadable and again.credentials == {"api_key": "new-api-key-0000"}
