"""Failures staff deal with: send again, or mark as handled outside Kontera (with a note, audited)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from wording import Msg

from ..models import AuditEvent, Voucher, VoucherState
from .audit import Actor
from .vouchers import QueueResult, voucher_transition, vouchers_queue

S = VoucherState
# What can be marked handled outside Kontera: not in the target (as far as Kontera knows) and not moving.
HANDLEABLE = (S.FAILED, S.AWAITING_AUTHORISATION, S.AWAITING_MAPPING)
NOTE_LIMIT = 1000


def vouchers_send_again(*, vouchers, actor: Actor = None) -> QueueResult:
    """Failed or waiting vouchers back in the queue (the pre-flight check runs again first); ``vouchers``
    may be a queryset (queued a chunk at a time) or Voucher objects."""
    if isinstance(vouchers, QuerySet):
        return vouchers_queue(vouchers=vouchers.filter(state__in=HANDLEABLE), actor=actor)
    return vouchers_queue(vouchers=[v for v in vouchers if v.state in HANDLEABLE], actor=actor)


def vouchers_mark_handled_outside(*, vouchers, note: str, actor: Actor = None) -> int:
    """Staff booked these by hand (or decided they need no booking): Kontera stops trying, and says so.

    The note is required — the audit trail must say how and where it was handled.
    """
    note = (note or "").strip()
    if not note:
        raise ValidationError(Msg("Write a note: how and where it was handled (e.g. “booked by hand as A 31”)."))
    if len(note) > NOTE_LIMIT:
        raise ValidationError(Msg("The note is longer than %(n)s characters.", n=NOTE_LIMIT))
    count = 0
    for voucher in vouchers:
        with transaction.atomic():
            locked = Voucher.objects.select_for_update().filter(pk=voucher.pk).first()
            if locked is None or locked.state not in HANDLEABLE:
                continue
            voucher_transition(voucher=locked, to=S.HANDLED_OUTSIDE, actor=actor, outcome=AuditEvent.Outcome.OK,
                               message=Msg("Handled outside Kontera: %(note)s", note=note), next_attempt_at=None)
            count += 1
    return count
