"""How a send's outcome is recorded: posted, refused, retried later, given back until a limit frees, or
waiting for re-authorisation — by the single path (``sending.voucher_send``) and by a batch
(``send_batches``) alike, each in its own short transaction after the remote call."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import models, transaction
from django.utils import timezone

from integrations.base import AuthError, ConnectorError, Deferred, RemoteVoucher, RetryableError
from integrations.models import Integration
from wording import Msg

from ..models import AuditEvent, Voucher, VoucherState
from .audit import Actor, audit_record
from .vouchers import voucher_transition

logger = logging.getLogger("kontera.vouchers")

S = VoucherState

MAX_ATTEMPTS = 8


def _backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    seconds = min(30 * 2 ** max(attempts - 1, 0), 3600)
    if retry_after:
        seconds = max(seconds, retry_after)
    return timedelta(seconds=seconds)


def remote_of(voucher: Voucher) -> RemoteVoucher:
    return RemoteVoucher(remote_id=voucher.remote_id, series=voucher.remote_series, number=voucher.remote_number,
                         year=voucher.remote_year, timestamp=voucher.remote_timestamp, status=voucher.remote_status)


def record_posted(voucher: Voucher, remote: RemoteVoucher, actor: Actor, *, updated: bool, fingerprint: str) -> str:
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        for step in getattr(remote, "steps", ()) or ():
            audit_record(action="remote:step", outcome=AuditEvent.Outcome.OK, actor=actor, voucher=voucher,
                         message=step)
        voucher_transition(
            voucher=voucher, to=S.POSTED, actor=actor, outcome=AuditEvent.Outcome.OK,
            message=(Msg("Updated in %(system)s: %(ref)s") if updated else Msg("Posted to %(system)s: %(ref)s"))
            % {"system": voucher.get_system_display(), "ref": remote.remote_id},
            remote_id=remote.remote_id, remote_series=remote.series, remote_number=str(remote.number or ""),
            remote_year=str(remote.year or ""), remote_timestamp=remote.timestamp or "",
            remote_status=remote.status or "", posted_at=timezone.now(), posted_fingerprint=fingerprint,
            pending_since=None, last_error="", last_error_code="", next_attempt_at=None,
        )
        last_success_mark(voucher)
    return "posted"


def forget_last_success_marks() -> None:
    _LAST_SUCCESS_MARKED.clear()


# When this process last marked each connection alive: once a minute is enough to show it is alive,
# and the memo spares even the (usually empty) UPDATE for every other voucher.
_LAST_SUCCESS_MARKED: dict[tuple[int, str], float] = {}
LAST_SUCCESS_EVERY = timedelta(minutes=1)


def last_success_mark(voucher: Voucher) -> None:
    now = timezone.now()
    key = (voucher.company_id, voucher.system)
    if now.timestamp() - _LAST_SUCCESS_MARKED.get(key, 0.0) < LAST_SUCCESS_EVERY.total_seconds():
        return
    Integration.objects.filter(company_id=voucher.company_id, system=voucher.system).filter(
        models.Q(last_success_at__isnull=True) | models.Q(last_success_at__lt=now - LAST_SUCCESS_EVERY)
    ).update(last_success_at=now)
    _LAST_SUCCESS_MARKED[key] = now.timestamp()


def record_failure(voucher: Voucher, exc: ConnectorError, actor: Actor, *, definite: bool) -> str:
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        voucher_transition(
            voucher=voucher, to=S.FAILED, actor=actor, outcome=AuditEvent.Outcome.ERROR,
            message=Msg("Refused by %(system)s: %(error)s", system=voucher.get_system_display(), error=exc.message),
            last_error=exc.message, last_error_code=exc.code,
            pending_since=None if definite else voucher.pending_since,
        )
    return "failed"


def record_retry(voucher: Voucher, exc: RetryableError, actor: Actor, *, outcome_unknown: bool) -> str:
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        pending = voucher.pending_since if outcome_unknown else None
        if voucher.attempts >= MAX_ATTEMPTS:
            voucher_transition(
                voucher=voucher, to=S.FAILED, actor=actor, outcome=AuditEvent.Outcome.ERROR,
                message=Msg("Gave up after %(n)s attempts: %(error)s", n=voucher.attempts, error=exc.message),
                last_error=exc.message, last_error_code=exc.code, pending_since=pending,
            )
            return "failed"
        next_at = timezone.now() + _backoff(voucher.attempts, exc.retry_after)
        voucher_transition(
            voucher=voucher, to=S.QUEUED, actor=actor, outcome=AuditEvent.Outcome.ERROR,
            message=Msg("Will retry at %(when)s: %(error)s", when=timezone.localtime(next_at).strftime("%Y-%m-%d %H:%M:%S"), error=exc.message),
            last_error=exc.message, last_error_code=exc.code, next_attempt_at=next_at, pending_since=pending,
        )
    return "retry"


def record_deferred(voucher: Voucher, exc: Deferred, actor: Actor, *, outcome_unknown: bool) -> str:
    """Given back before a wait the send may not make: due again when the target's limit frees, not
    counted as a failed attempt. The company's other due vouchers wait for the same moment, so the
    dispatcher goes on with other companies instead of trying each of them."""
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        free_at = timezone.now() + timedelta(seconds=exc.retry_after or 0)
        voucher_transition(
            voucher=voucher, to=S.QUEUED, actor=actor,
            message=Msg("Given back, due again at %(when)s: %(error)s",
                        when=timezone.localtime(free_at).strftime("%Y-%m-%d %H:%M:%S"), error=exc.message),
            last_error=exc.message, last_error_code=exc.code, next_attempt_at=free_at,
            attempts=max(voucher.attempts - 1, 0),
            pending_since=voucher.pending_since if outcome_unknown else None,
        )
        Voucher.objects.filter(company_id=voucher.company_id, system=voucher.system, state=S.QUEUED).filter(
            models.Q(next_attempt_at__isnull=True) | models.Q(next_attempt_at__lt=free_at)
        ).update(next_attempt_at=free_at)
    return "deferred"


def record_auth_error(voucher: Voucher, integration: Integration, exc: AuthError, actor: Actor) -> str:
    from .integrations import integration_needs_reauthorisation

    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        # A refused token means the request was not processed: nothing landed.
        voucher_transition(
            voucher=voucher, to=S.AWAITING_AUTHORISATION, actor=actor, outcome=AuditEvent.Outcome.ERROR,
            message=Msg("Waiting for re-authorisation: %(error)s", error=exc.message),
            last_error=exc.message, last_error_code=exc.code, pending_since=voucher.pending_since,
        )
    integration_needs_reauthorisation(integration=integration, reason=exc.message)
    return "awaiting_authorisation"


def record_error(voucher: Voucher, exc: ConnectorError, actor: Actor, *, integration: Integration | None,
                 known_absent: bool) -> str:
    """Record a refused or failed send as its kind asks. ``known_absent``: nothing of this voucher was in the
    target before this call (a first post, or a look-up that said "not there"); otherwise an error can never
    prove that nothing landed, so the unknown-outcome marker stays."""
    if isinstance(exc, AuthError):
        return record_auth_error(voucher, integration, exc, actor)
    if isinstance(exc, RetryableError):
        record = record_deferred if isinstance(exc, Deferred) else record_retry
        return record(voucher, exc, actor, outcome_unknown=exc.outcome_unknown or not known_absent)
    return record_failure(voucher, exc, actor, definite=known_absent and not exc.outcome_unknown)
