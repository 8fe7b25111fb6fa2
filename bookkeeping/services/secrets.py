from __future__ import annotations

from django.db import transaction

from integrations.models import Integration, OAuthState


def secrets_rotate() -> int:
    """Re-encrypt every integration's credentials with the current (first) key.

    Loading decrypts with whichever configured key fits; saving encrypts with the first one, so
    after this the old keys can be removed from KONTERA_ENCRYPTION_KEYS.
    """
    count = 0
    with transaction.atomic():
        for integration in Integration.objects.select_for_update().order_by("pk"):
            integration.save(update_fields=["credentials"])
            count += 1
        # Authorisation requests still open carry a PKCE verifier; re-encrypt them too.
        for state in OAuthState.objects.select_for_update().filter(used_at__isnull=True).order_by("pk"):
            state.save(update_fields=["secret_params"])
    return count
