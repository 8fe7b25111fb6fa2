from __future__ import annotations

from django.db import transaction

from integrations.models import Integration


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
    return count
