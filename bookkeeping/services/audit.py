from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser

from integrations.http import redact

from ..models import AuditEvent

logger = logging.getLogger("kontera.audit")

Actor = AbstractBaseUser | str | None


def actor_parts(actor: Actor) -> tuple[AbstractBaseUser | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, actor
    return actor, actor.get_username()


def audit_record(*, action: str, outcome: str = AuditEvent.Outcome.INFO, message: str = "", actor: Actor = None,
                 company=None, voucher=None, integration=None, http_status: int | None = None,
                 data: dict | None = None) -> AuditEvent:
    """Append one event to the audit trail (and the log). Messages are redacted of anything secret-like."""
    user, label = actor_parts(actor)
    if voucher is not None and company is None:
        company = voucher.company
    if integration is not None and company is None:
        company = integration.company
    message = redact(str(message))[:4000]
    event = AuditEvent.objects.create(
        actor=user, actor_label=label[:100], company=company, voucher=voucher, integration=integration,
        action=action[:60], outcome=outcome, http_status=http_status, message=message, data=data or {},
    )
    level = logging.WARNING if outcome == AuditEvent.Outcome.ERROR else logging.INFO
    ids = {"company_id": company.pk if company is not None else None,
           "integration_id": integration.pk if integration is not None else None,
           "voucher_id": voucher.pk if voucher is not None else None}
    logger.log(level, "%s %s %s: %s", label, action, outcome, message,
               extra={key: value for key, value in ids.items() if value is not None})
    return event
