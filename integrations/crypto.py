"""Secrets at rest: a Fernet-encrypted JSON model field, key rotation and masking.

``KONTERA_ENCRYPTION_KEYS`` holds comma-separated Fernet keys: the first encrypts, every key
decrypts, so a new key can be put first and ``manage.py rotate_secrets`` re-encrypts the rows.
Without configured keys (a development machine) a key is derived from SECRET_KEY; the deploy
check warns about that. Keys derived from ``SECRET_KEY_FALLBACKS`` (a previous SECRET_KEY) and from
the current SECRET_KEY (when real keys are configured) only decrypt, so changing either never makes
a stored secret unreadable as long as the old value is kept as a fallback.

A value no key opens (a lost key, a key removed too early) never breaks a page or a worker: it loads
as ``UnreadableSecrets`` (empty, ``unreadable`` true), is written back unchanged if nobody replaces it,
and staff see "credentials unreadable — reconnect or enter them again".
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


def _derived_key(secret_key: str | None = None) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kontera-secrets", info=b"fernet")
    return base64.urlsafe_b64encode(hkdf.derive((secret_key or settings.SECRET_KEY).encode()))


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    try:
        fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"KONTERA_ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from None
    return MultiFernet(fernets)


def _configured_keys() -> tuple[str, ...]:
    return tuple(k.strip() for k in settings.KONTERA_ENCRYPTION_KEYS if k.strip())


def _decrypt_only_keys() -> tuple[str, ...]:
    derived = [] if not _configured_keys() else [_derived_key().decode()]
    derived += [_derived_key(old).decode() for old in getattr(settings, "SECRET_KEY_FALLBACKS", []) if old]
    return tuple(derived)


def fernet() -> MultiFernet:
    """The first key encrypts; every configured key and every decrypt-only fallback decrypts."""
    keys = _configured_keys() or (_derived_key().decode(),)
    extra = tuple(k for k in _decrypt_only_keys() if k not in keys)
    return _fernet_for(keys + extra)


def primary_fernet() -> MultiFernet:
    """The encrypting key alone: what a value needs to be readable without any fallback."""
    return _fernet_for((_configured_keys() or (_derived_key().decode(),))[:1])


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


def needs_rotation(token: str) -> bool:
    """True when only a fallback (an older key) opens the value: ``rotate_secrets`` should re-encrypt it."""
    try:
        primary_fernet().decrypt(token[len(PREFIX):].encode())
        return False
    except InvalidToken:
        return True


class UnreadableSecrets(dict):
    """Credentials no configured key can open: empty to every reader, the ciphertext kept as it was."""

    unreadable = True

    def __init__(self, ciphertext: str):
        super().__init__()
        self.ciphertext = ciphertext


def secrets_unreadable(value) -> bool:
    return bool(getattr(value, "unreadable", False))


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
        try:
            return json.loads(decrypt_text(value))
        except ImproperlyConfigured:
            # Never a 500 for a lost key: the row is shown as unreadable and kept unchanged.
            return UnreadableSecrets(value)

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        if isinstance(value, str) and value.startswith(PREFIX):
            return json.loads(decrypt_text(value))
        return json.loads(value)

    def get_prep_value(self, value):
        if secrets_unreadable(value) and not value:
            return value.ciphertext  # nobody replaced it: keep what a restored key can still open
        if value is None:
            value = {}
        return encrypt_text(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        # Serialisers (dumpdata) get the ciphertext, never the secret.
        return self.get_prep_value(self.value_from_object(obj))
