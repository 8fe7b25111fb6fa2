"""Authorised again: the integration is active and every voucher that waited for it is queued again."""

from __future__ import annotations

from django.db import transaction

from integrations.models import Integration, IntegrationStatus
from wording import Msg

from ..models import AuditEvent, Voucher, VoucherState
from .audit import Actor, audit_record
from .dispatchers import kick_dispatch
from .vouchers import voucher_transition


def integration_reconnected(*, integration: Integration, actor: Actor = None) -> int:
    """Authorised again: the integration is active and every waiting voucher goes back in the queue."""
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        integration.status = IntegrationStatus.ACTIVE
        integration.status_message = ""
        integration.save(update_fields=["status", "status_message", "updated_at"])
        audit_record(action="integration:authorised", outcome=AuditEvent.Outcome.OK, integration=integration,
                     actor=actor, message=Msg("Authorised; waiting vouchers are sent again."))
        waiting = Voucher.objects.select_for_update().filter(
            company_id=integration.company_id, system=integration.system, state=VoucherState.AWAITING_AUTHORISATION
        )
        count = 0
        for voucher in waiting:
            voucher_transition(voucher=voucher, to=VoucherState.QUEUED, actor=actor, next_attempt_at=None,
                               message=Msg("Authorisation restored; queued again."))
            count += 1
        transaction.on_commit(kick_dispatch)
    return count
