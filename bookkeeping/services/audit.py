from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace

from django.contrib.auth.models import AbstractBaseUser
from django.utils import translation

from integrations.http import redact
from wording import set_text

from ..models import AuditEvent

logger = logging.getLogger("kontera.audit")


@dataclass(frozen=True)
class Via:
    """A staff member's request carried out by someone else (``Via(anna, "worker")``): the audit
    trail names both, so it shows who caused the change even when the worker made it."""

    user: AbstractBaseUser | None
    label: str = "worker"


Actor = AbstractBaseUser | Via | str | None


def worker_for(label: str) -> Actor:
    """A task queued by a staff member (it carries their username): the worker acts for them, and the audit
    trail says so ("Anna Andersson (by the worker)"). Other labels ("worker", "demo", …) stay as they are."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=label).first() if label else None
    return Via(user, "worker") if user is not None else label


def actor_parts(actor: Actor) -> tuple[AbstractBaseUser | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, Via):
        return actor.user, actor.label
    if isinstance(actor, str):
        return None, actor
    return actor, actor.get_username()


def audit_record(*, action: str, outcome: str = AuditEvent.Outcome.INFO, message: str = "", actor: Actor = None,
                 company=None, voucher=None, integration=None, http_status: int | None = None,
                 data: dict | None = None) -> AuditEvent:
    """Append one event to the audit trail (and the log). Messages are redacted of anything secret-like.

    ``message`` may be a ``wording.Msg``: it is kept as a code with parameters and shown in the
    reader's language. When the worker acts on a voucher that a staff member asked to send, that
    staff member is recorded as the cause.
    """
    user, label = actor_parts(actor)
    if user is None and voucher is not None and isinstance(actor, str) and getattr(voucher, "requested_by_id", None):
        user_id = voucher.requested_by_id
    else:
        user_id = user.pk if user is not None else None
    # The company's id is at hand on the voucher or integration: reading the company would cost a query.
    company_id = company.pk if company is not None else None
    if voucher is not None and company_id is None:
        company_id = voucher.company_id
    if integration is not None and company_id is None:
        company_id = integration.company_id
    event = AuditEvent(
        actor_id=user_id, actor_label=label[:100], company_id=company_id, voucher=voucher, integration=integration,
        action=action[:60], outcome=outcome, http_status=http_status, data=data or {},
    )
    set_text(event, "message", message, clean=redact, limit=4000)
    event.save()
    level = logging.WARNING if outcome == AuditEvent.Outcome.ERROR else logging.INFO
    ids = {"company_id": company_id,
           "integration_id": integration.pk if integration is not None else None,
           "voucher_id": voucher.pk if voucher is not None else None}
    logger.log(level, "%s %s %s: %s", label, action, outcome, event.message,
               extra={key: value for key, value in ids.items() if value is not None})
    return event


def audit_record_many(*, action: str, actor: Actor = None, events: Iterable[tuple[int | None, str]],
                      outcome: str = AuditEvent.Outcome.INFO) -> int:
    """Append many events of one action at once (an import of many rows): ``events`` are pairs of
    (company id, message) — a generator is written as it comes —, stored in bulk as ``audit_record``
    stores one; the log gets one line for them all. Returns how many."""
    from .bulk import rows_append

    user, label = actor_parts(actor)
    common = {"actor_id": user.pk if user is not None else None, "actor_label": label[:100], "action": action[:60],
              "outcome": outcome}

    def records():
        for company_id, message in events:
            texts = SimpleNamespace(message="", coded_texts=None)
            set_text(texts, "message", message, clean=redact, limit=4000)
            yield {**common, "company_id": company_id, "message": texts.message, "coded_texts": texts.coded_texts}

    # Messages made here read in English (what the field keeps): each is rendered once, not twice.
    with translation.override("en"):
        count = rows_append(AuditEvent, records())
    if count:
        logger.info("%s %s %s: %s events", label, action, outcome, count)
    return count


def audit_record_vouchers(*, actor: Actor = None, events: Iterable[tuple]) -> int:
    """Append many vouchers' events at once, each as ``audit_record(action=…, outcome=…, message=…,
    actor=actor, voucher=…)`` stores it — the voucher's company, the staff member a worker acts for —, in
    bulk. ``events`` are (voucher, action, outcome, message); the log gets one line per action and
    outcome. Returns how many."""
    from .bulk import rows_append

    user, label = actor_parts(actor)
    counts: dict[tuple[str, str], int] = {}
    texts: dict[int, tuple] = {}  # one message shared by many events (e.g. "Draft → Queued") is rendered once
    no_data: dict = {}  # one object for every event: the bulk write encodes it once

    def records():
        for voucher, action, outcome, message in events:
            if user is None and isinstance(actor, str) and voucher.requested_by_id:
                user_id = voucher.requested_by_id
            else:
                user_id = user.pk if user is not None else None
            if id(message) not in texts:
                event = SimpleNamespace(message="", coded_texts=None)
                set_text(event, "message", message, clean=redact, limit=4000)
                texts[id(message)] = (message, event.message, event.coded_texts)
            _message, text, coded_texts = texts[id(message)]
            counts[action[:60], outcome] = counts.get((action[:60], outcome), 0) + 1
            yield {"actor_id": user_id, "actor_label": label[:100], "company_id": voucher.company_id,
                   "voucher_id": voucher.pk, "integration_id": None, "action": action[:60], "outcome": outcome,
                   "http_status": None, "data": no_data, "message": text, "coded_texts": coded_texts}

    count = rows_append(AuditEvent, records())
    for (action, outcome), n in counts.items():
        level = logging.WARNING if outcome == AuditEvent.Outcome.ERROR else logging.INFO
        logger.log(level, "%s %s %s: %s events", label, action, outcome, n)
    return count
