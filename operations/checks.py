"""System checks an operator sees in ``manage.py check`` (and at every start of a process)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connection

from .retention import LEGAL_MINIMUM_YEARS


def _stored_credentials() -> list[tuple[int, str, str]]:
    """(id, system, ciphertext) of every integration; nothing when the database is not migrated yet."""
    table = "integrations_integration"
    try:
        if table not in connection.introspection.table_names():
            return []
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, system, credentials FROM {connection.ops.quote_name(table)} ORDER BY id")
            return [(pk, system, value or "") for pk, system, value in cursor.fetchall()]
    except DatabaseError:
        return []


@register(Tags.security)
def credentials_readable(app_configs, **kwargs):
    """Every stored credential opens with the configured keys; none needs an old key only."""
    from cryptography.fernet import InvalidToken

    from integrations.crypto import PREFIX, fernet, needs_rotation

    unreadable, old_key_only = [], []
    for pk, system, value in _stored_credentials():
        if not value:
            continue
        try:
            fernet().decrypt(value.removeprefix(PREFIX).encode())
        except (InvalidToken, ValueError):
            unreadable.append(f"{system} #{pk}")
            continue
        if needs_rotation(value):
            old_key_only.append(f"{system} #{pk}")
    messages = []
    if unreadable:
        messages.append(Warning(
            f"{len(unreadable)} integration(s) have credentials no configured key can open: {', '.join(unreadable)}. "
            "Staff see 'credentials unreadable'; their vouchers wait.",
            hint="Put the lost key back in KONTERA_ENCRYPTION_KEYS (or the previous SECRET_KEY in "
                 "SECRET_KEY_FALLBACKS), or reconnect / enter the credentials of these integrations again.",
            id="kontera.W002",
        ))
    if old_key_only:
        messages.append(Warning(
            f"{len(old_key_only)} integration(s) are readable only with an old key: {', '.join(old_key_only)}.",
            hint="Run `manage.py rotate_secrets`, then the old key can be removed.",
            id="kontera.W003",
        ))
    return messages


@register()
def retention_within_the_law(app_configs, **kwargs):
    errors = []
    retention = getattr(settings, "KONTERA_RETENTION", {})
    for country, minimum in LEGAL_MINIMUM_YEARS.items():
        years = retention.get(f"bookkeeping_audit_years_{country.lower()}", minimum)
        if years < minimum:
            errors.append(Error(
                f"RETENTION_AUDIT_YEARS_{country} is {years}: the accounting law asks for at least {minimum} years.",
                id="kontera.E001",
            ))
    for key, days in retention.items():
        if key.endswith("_days") and days < 1:
            errors.append(Error(f"Retention {key} must be at least 1 day (it is {days}).", id="kontera.E002"))
    return errors
