from __future__ import annotations

from django.db import transaction

from integrations.models import Integration, OAuthState


def secrets_rotate() -> dict[str, int]:
    """Re-encrypt every integration's credentials with the current (first) key.

    Loading decrypts with whichever configured key (or decrypt-only fallback) fits; saving encrypts
    with the first one, so after this the old keys can be removed from KONTERA_ENCRYPTION_KEYS and
    SECRET_KEY_FALLBACKS. Credentials no key opens are left exactly as they are (a restored key may
    still open them) and counted.
    """
    re_encrypted = unreadable = 0
    with transaction.atomic():
        for integration in Integration.objects.select_for_update().order_by("pk"):
            if integration.credentials_unreadable:
                unreadable += 1
                continue
            integration.save(update_fields=["credentials"])
            re_encrypted += 1
        # Authorisation requests still open carry a PKCE verifier; re-encrypt them too (one no key
        # opens is written back unchanged, see EncryptedJSONField).
        for state in OAuthState.objects.select_for_update().filter(used_at__isnull=True).order_by("pk"):
            state.save(update_fields=["secret_params"])
    return {"re_encrypted": re_encrypted, "unreadable": unreadable}
