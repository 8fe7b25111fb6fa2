"""Vouchers whose integration's credentials no configured key can open wait, queued, with that reason.

They are not failed and need no re-authorisation of their own: once the key is restored or the
credentials are entered again, the next attempt (every minute) sends them.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from integrations.models import Integration

from ..models import AuditEvent, Voucher
from .audit import Actor, audit_record

CODE = "credentials_unreadable"
RECHECK_AFTER = timedelta(minutes=1)


def voucher_wait_for_credentials(*, voucher: Voucher, integration: Integration, actor: Actor = "worker") -> str:
    """Called with the voucher locked and queued: leave it queued, say why, look again in a minute."""
    reason = integration.credentials_unreadable_message
    first_time = voucher.last_error_code != CODE
    voucher.last_error, voucher.last_error_code = reason, CODE
    voucher.next_attempt_at = timezone.now() + RECHECK_AFTER
    voucher.save(update_fields=["last_error", "last_error_code", "next_attempt_at", "updated_at"])
    if first_time:  # one audit line, not one a minute
        audit_record(action="voucher:waiting", outcome=AuditEvent.Outcome.ERROR, actor=actor, voucher=voucher,
                     integration=integration, message=reason)
    return "paused"
