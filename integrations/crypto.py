"""Secrets at rest: a Fernet-encrypted JSON model field, key rotation and masking.

``KONTERA_ENCRYPTION_KEYS`` holds comma-separated Fernet keys: the first encrypts, every key
decrypts, so a new key can be put first and ``manage.py rotate_secrets`` re-encrypts the rows.
Without configured keys (a development machine) a key is derived from SECRET_KEY; the deploy
check warns about that.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"
MASK = "••••"


def _derived_key() -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kontera-secrets", info=b"fernet")
    return base64.urlsafe_b64encode(hkdf.derive(settings.SECRET_KEY.encode()))


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    try:
        fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"KONTERA_ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from None
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    keys = tuple(k.strip() for k in settings.KONTERA_ENCRYPTION_KEYS if k.strip())
    if not keys:
        keys = (_derived_key().decode(),)
    return _fernet_for(keys)


def encrypt_text(plain: str) -> str:
    return PREFIX + fernet().encrypt(plain.encode()).decode()


def decrypt_text(token: str) -> str:
    if not token.startswith(PREFIX):
        raise ImproperlyConfigured("An encrypted value is not in the expected format.")
    try:
        return fernet().decrypt(token[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with any key in KONTERA_ENCRYPTION_KEYS."
        ) from None


def mask_secret(value: str | None) -> str:
    """``••••3f9a``: enough to recognise a key, never enough to use it."""
    if not value:
        return ""
    value = str(value)
    return MASK + (value[-4:] if len(value) >= 12 else "")


class EncryptedJSONField(models.TextField):
    """A dict stored as one Fernet token; the database never holds the plain text."""

    description = "Encrypted JSON"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return json.loads(decrypt_text(value))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        if isinstance(value, str) and value.startswith(PREFIX):
            return json.loads(decrypt_text(value))
        return json.loads(value)

    def get_prep_value(self, value):
        if value is None:
            value = {}
        return encrypt_text(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        # Serialisers (dumpdata) get the ciphertext, never the secret.
        return self.get_prep_value(self.value_from_object(obj))
