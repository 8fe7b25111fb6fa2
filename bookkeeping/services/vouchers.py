"""The voucher's life: its state machine, the pre-flight check, and the one path to the target.

Every send is claim → call → record: a short transaction claims the voucher (state ``sending``,
``pending_since`` set), the remote call happens outside any transaction, and a second short
transaction records the outcome. If a worker dies or the answer is lost, ``pending_since`` stays
set, and the next attempt first asks the target whether the voucher already landed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from django.db import models, transaction
from django.utils import timezone

from config.logs import bind as log_bind
from config.logs import log_context
from integrations import ratelimit, registry
from integrations.base import (
    AuthError,
    ConnectorError,
    Deferred,
    RemoteValidationError,
    RemoteVoucher,
    RetryableError,
    VoucherDTO,
    VoucherRowDTO,
)
from integrations.models import Integration, IntegrationStatus
from wording import Msg, english, restored, set_text, stored

from .. import rules
from ..models import AuditEvent, Voucher, VoucherState
from ..selectors.plans import plan_snapshot
from ..selectors.vouchers import landed_elsewhere
from .audit import Actor, actor_parts, audit_record
from .credentials import voucher_wait_for_credentials

logger = logging.getLogger("kontera.vouchers")

S = VoucherState

# The only legal moves; anything else raises IllegalTransition.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.QUEUED, S.FAILED, S.OPTED_OUT, S.AWAITING_MAPPING}),
    S.QUEUED: frozenset({S.SENDING, S.DRAFT, S.FAILED, S.OPTED_OUT, S.AWAITING_AUTHORISATION, S.AWAITING_MAPPING}),
    S.SENDING: frozenset({S.POSTED, S.QUEUED, S.FAILED, S.AWAITING_AUTHORISATION}),
    S.POSTED: frozenset({S.NEEDS_UPDATE}),
    S.NEEDS_UPDATE: frozenset({S.QUEUED, S.POSTED, S.FAILED, S.AWAITING_MAPPING}),
    S.FAILED: frozenset({S.QUEUED, S.DRAFT, S.OPTED_OUT, S.AWAITING_MAPPING, S.HANDLED_OUTSIDE}),
    S.AWAITING_AUTHORISATION: frozenset({S.QUEUED, S.FAILED, S.AWAITING_MAPPING, S.HANDLED_OUTSIDE}),
    S.OPTED_OUT: frozenset({S.DRAFT, S.QUEUED, S.AWAITING_MAPPING}),
    S.AWAITING_MAPPING: frozenset({S.QUEUED, S.DRAFT, S.FAILED, S.OPTED_OUT, S.HANDLED_OUTSIDE}),
    # Staff booked it by hand (with a note); it can be taken back to draft if that was a mistake.
    S.HANDLED_OUTSIDE: frozenset({S.DRAFT}),
}
# Sending is attempted from these states (a waiting voucher goes on once its values are mapped).
QUEUEABLE = (S.DRAFT, S.FAILED, S.OPTED_OUT, S.NEEDS_UPDATE, S.AWAITING_AUTHORISATION, S.AWAITING_MAPPING)

MAX_ATTEMPTS = 8


class IllegalTransition(Exception):
    pass


def voucher_transition(*, voucher: Voucher, to: str, actor: Actor = None, message: str = "",
                       outcome: str = AuditEvent.Outcome.INFO, **fields) -> Voucher:
    """Move a voucher to ``to`` (it must be locked by the caller) and write the audit event.

    ``last_error`` (like ``message``) may be a ``wording.Msg``: it is kept as a code and shown in
    the reader's language.
    """
    current = voucher.state
    if to not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(
            Msg("A voucher cannot go from %(from)s to %(to)s.",
                **{"from": S(current).label, "to": S(to).label if to in S.values else to})
        )
    voucher.state = to
    changed = ["state", "updated_at"]
    if to == S.QUEUED and current != S.SENDING:  # a retry keeps its place in the queue
        fields.setdefault("queued_at", timezone.now())
        user, _label = actor_parts(actor)
        if user is not None:
            fields.setdefault("requested_by", user)
    for name, value in fields.items():
        if name in Voucher.coded_text_fields:
            changed += set_text(voucher, name, value)
        else:
            setattr(voucher, name, value)
            changed.append(name)
    if voucher.pk is None:
        voucher.save()
    else:
        voucher.save(update_fields=list(dict.fromkeys(changed)))
    audit_record(
        action=f"state:{current}->{to}", outcome=outcome, actor=actor, voucher=voucher,
        message=message or Msg("%(from)s → %(to)s", **{"from": S(current).label, "to": S(to).label}),
    )
    return voucher


# --- building what a connector sees -----------------------------------------------------------


def voucher_fingerprint(voucher: Voucher) -> str:
    """A hash of everything that is posted: a change to it means the target's copy is out of date."""
    payload = {
        "date": voucher.date.isoformat(),
        "description": voucher.description,
        "series": voucher.series,
        "currency": voucher.currency,
        "rows": [
            [r.account, f"{r.debit:.2f}", f"{r.credit:.2f}", r.cost_centre, r.project, r.text, r.vat_code]
            for r in voucher.rows.all()
        ],
        "extra": {k: v for k, v in (voucher.extra or {}).items() if not k.startswith("_")},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _integration_for(voucher: Voucher) -> Integration | None:
    return Integration.objects.filter(company_id=voucher.company_id, system=voucher.system).first()


def voucher_dto(voucher: Voucher, *, integration: Integration | None = None, plan=None) -> VoucherDTO:
    """Our voucher as the connector sees it, on the date it will actually be posted."""
    plan = plan or plan_snapshot(voucher.company, voucher.system)
    policy = (integration.settings if integration else {}).get("locked_period_policy", "refuse")
    day, _problems = rules.posting_date(plan, voucher.date, policy=policy)
    description = voucher.description
    if day != voucher.date:
        # The original date stays visible in the target, in the voucher text.
        note = Msg(" (orig. date %(date)s)", date=voucher.date.isoformat())
        description = (description[: 200 - len(note)] + note)
    year = plan.financial_year_for(day)
    return VoucherDTO(
        reference=voucher.reference,
        kind=voucher.kind,
        date=day,
        description=description,
        series=voucher.series,
        currency=voucher.currency,
        rows=tuple(
            # A placeholder ('FEL') or a row still waiting for a mapping has no number: 0, which the
            # pre-flight check refuses before anything is sent (this keeps the admin's report readable).
            VoucherRowDTO(account=rules.account_key(r.account) or 0, debit=r.debit, credit=r.credit,
                          cost_centre=r.cost_centre,
                          project=r.project, text=r.text, vat_code=r.vat_code)
            for r in voucher.rows.all()
        ),
        financial_year=year[2] if year else "",
        extra=dict(voucher.extra or {}),
    )


def voucher_preflight(voucher: Voucher, *, integration: Integration | None = None, plan=None) -> list[rules.Problem]:
    """Every rule the voucher must pass before it may be sent, against the imported account plan."""
    integration = integration if integration is not None else _integration_for(voucher)
    plan = plan or plan_snapshot(voucher.company, voucher.system)
    return preflight_problems(system=voucher.system, integration=integration, plan=plan, rows=list(voucher.rows.all()),
                              day=voucher.date, series=voucher.series, extra=voucher.extra)


def preflight_problems(*, system: str, integration: Integration | None, plan, rows, day, series: str,
                       extra: dict | None = None) -> list[rules.Problem]:
    """The pre-flight check of a voucher's content before it is stored (a bulk import checks what it holds
    in memory instead of reading every voucher back); ``voucher_preflight`` is this on a stored voucher."""
    connector = registry.connector_class(system)
    policy = (integration.settings if integration else {}).get("locked_period_policy", "refuse")
    problems = rules.preflight(
        plan, rows=rows, day=day, series=series,
        require_series=getattr(connector, "requires_series", False), locked_period_policy=policy,
    )
    if not getattr(connector, "reports_financial_years", True):
        # The target lists no financial years (Dinero): it refuses a date outside its years itself.
        problems = [p for p in problems if p.code != "no_financial_year"]
    problems += _blocking_problems(extra)
    return problems


def voucher_preflight_notes(voucher: Voucher, *, integration: Integration | None = None, plan=None,
                            dto: VoucherDTO | None = None) -> list[str]:
    """What will be changed on the way to the target — shown to staff, never a refusal (e.g. texts
    mapped into Fortnox's valid characters)."""
    notes_for = getattr(registry.connector_class(voucher.system), "preflight_notes", None)
    if notes_for is None:
        return []
    if dto is None:
        integration = integration if integration is not None else _integration_for(voucher)
        dto = voucher_dto(voucher, integration=integration, plan=plan)
    return [str(note) for note in notes_for(dto)]


def _blocking_problems(extra: dict | None) -> list[rules.Problem]:
    """Problems a flow attached to the voucher before queueing it (e.g. 'no DKK amount yet')."""
    return [rules.Problem(code, restored(message)) for code, message in (extra or {}).get("_blocking", [])]


def problems_text(problems: list[rules.Problem]) -> str:
    return Msg.join("\n", [str(p) for p in problems])


def preflight_fields(voucher: Voucher, problems: list[rules.Problem]) -> list[str]:
    """Keep the pre-flight result on the voucher (shown from import on, counted on the overview).

    Only a source value without a mapping is not a refusal: ``preflight_ok`` stays None (the voucher waits
    for the mapping, and the overview counts it there)."""
    values = preflight_values(problems)
    for name, value in values.items():
        setattr(voucher, name, value)
    return list(values)


def preflight_values(problems: list[rules.Problem]) -> dict:
    """The voucher fields that keep a pre-flight result (see ``preflight_fields``)."""
    return {"preflight_ok": True if not problems else (None if only_unmapped(problems) else False),
            "preflight_problems": [{"code": p.code, "text": stored(str(p))} for p in problems]}


# --- queueing ---------------------------------------------------------------------------------


@dataclass
class QueueResult:
    queued: int = 0
    failed: int = 0
    skipped: int = 0
    awaiting_authorisation: int = 0
    awaiting_mapping: int = 0


def only_unmapped(problems: list[rules.Problem]) -> bool:
    """Nothing is wrong but a source value without a mapping: the voucher waits instead of failing."""
    return bool(problems) and all(p.code == "unmapped" for p in problems)


def _wait_for_mapping(voucher: Voucher, problems: list[rules.Problem], actor: Actor) -> None:
    text = problems_text(problems)
    checked = preflight_fields(voucher, problems)
    if voucher.state != S.AWAITING_MAPPING:
        voucher_transition(voucher=voucher, to=S.AWAITING_MAPPING, actor=actor,
                           message=Msg("Waits for a mapping: %(reasons)s", reasons=text),
                           last_error=text, last_error_code="unmapped", next_attempt_at=None,
                           **{n: getattr(voucher, n) for n in checked})
    elif voucher.last_error != english(text):
        fields = set_text(voucher, "last_error", text)
        voucher.last_error_code = "unmapped"
        voucher.save(update_fields=[*fields, *checked, "last_error_code", "updated_at"])


def voucher_queue(*, voucher: Voucher, actor: Actor = None, kick: bool = True) -> list[rules.Problem]:
    """Check the voucher and put it in the queue; a voucher that breaks a rule fails with the reason,
    one that only lacks a mapping waits for it."""
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        if voucher.state not in QUEUEABLE:
            return []
        problems = voucher_preflight(voucher)
        checked = preflight_fields(voucher, problems)
        if only_unmapped(problems):
            _wait_for_mapping(voucher, problems, actor)
            return problems
        if problems:
            if voucher.state != S.FAILED:
                voucher_transition(voucher=voucher, to=S.FAILED, actor=actor, outcome=AuditEvent.Outcome.ERROR,
                                   message=Msg("Not sent: %(reasons)s", reasons=problems_text(problems)),
                                   last_error=problems_text(problems), last_error_code=problems[0].code,
                                   **{name: getattr(voucher, name) for name in checked})
            else:
                fields = set_text(voucher, "last_error", problems_text(problems))
                voucher.last_error_code = problems[0].code
                voucher.save(update_fields=[*fields, *checked, "last_error_code", "updated_at"])
            return problems
        voucher_transition(voucher=voucher, to=S.QUEUED, actor=actor, next_attempt_at=None, last_error="",
                           last_error_code="", **{name: getattr(voucher, name) for name in checked})
        if kick:
            transaction.on_commit(lambda: _kick(voucher.system))
    return []


def vouchers_queue(*, vouchers, actor: Actor = None) -> QueueResult:
    result = QueueResult()
    systems = set()
    for voucher in vouchers:
        before = voucher.state
        problems = voucher_queue(voucher=voucher, actor=actor, kick=False)
        voucher.refresh_from_db(fields=["state"])
        if problems and voucher.state == S.AWAITING_MAPPING:
            result.awaiting_mapping += 1
        elif problems:
            result.failed += 1
        elif voucher.state == S.QUEUED and before != S.QUEUED:
            result.queued += 1
            systems.add(voucher.system)
        else:
            result.skipped += 1
    for system in systems:
        transaction.on_commit(lambda system=system: _kick(system))
    return result


def _kick(system: str | None = None) -> None:
    from .dispatchers import kick_dispatch

    kick_dispatch()


# --- sending ----------------------------------------------------------------------------------


def _backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    seconds = min(30 * 2 ** max(attempts - 1, 0), 3600)
    if retry_after:
        seconds = max(seconds, retry_after)
    return timedelta(seconds=seconds)


def voucher_send(*, voucher_id: int, actor: Actor = "worker", connector=None) -> str:
    """Send one queued voucher to its target: claim → call → record. Returns what happened."""
    now = timezone.now()
    with transaction.atomic():
        voucher = (Voucher.objects.select_for_update().select_related("company").prefetch_related("rows")
                   .filter(pk=voucher_id).first())
        if voucher is None or voucher.state != S.QUEUED:
            return "skipped"
        if voucher.next_attempt_at and voucher.next_attempt_at > now:
            return "not_due"
        integration = _integration_for(voucher)
        if integration is None or integration.status in (IntegrationStatus.NEEDS_REAUTHORISATION,
                                                        IntegrationStatus.SETTING_UP):
            voucher_transition(
                voucher=voucher, to=S.AWAITING_AUTHORISATION, actor=actor,
                message=Msg("Waiting: the %(system)s connection needs to be authorised.", system=voucher.get_system_display()),
            )
            return "awaiting_authorisation"
        if integration.status != IntegrationStatus.ACTIVE:
            return "paused"
        if integration.credentials_unreadable:
            return voucher_wait_for_credentials(voucher=voucher, integration=integration, actor=actor)
        plan = plan_snapshot(voucher.company, voucher.system)
        problems = voucher_preflight(voucher, integration=integration, plan=plan)
        checked = preflight_fields(voucher, problems)
        if only_unmapped(problems):
            _wait_for_mapping(voucher, problems, actor)
            return "awaiting_mapping"
        if problems:
            voucher_transition(voucher=voucher, to=S.FAILED, actor=actor, outcome=AuditEvent.Outcome.ERROR,
                               message=Msg("Not sent: %(reasons)s", reasons=problems_text(problems)),
                               last_error=problems_text(problems), last_error_code=problems[0].code,
                               pending_since=voucher.pending_since, **{n: getattr(voucher, n) for n in checked})
            return "failed"
        log_bind(company_id=voucher.company_id, integration_id=integration.pk)
        look_up_first = voucher.pending_since is not None
        previous = _remote_of(voucher) if voucher.remote_id else None
        dto = voucher_dto(voucher, integration=integration, plan=plan)
        if look_up_first:
            dto = replace(dto, known_elsewhere=landed_elsewhere(voucher, day=dto.date))
        fingerprint = voucher_fingerprint(voucher)  # what we are about to post
        voucher_transition(voucher=voucher, to=S.SENDING, actor=actor, attempts=voucher.attempts + 1,
                           pending_since=voucher.pending_since or now, **{n: getattr(voucher, n) for n in checked})
        for note in voucher_preflight_notes(voucher, dto=dto):
            if not AuditEvent.objects.filter(voucher=voucher, action="preflight:note", message=english(note)).exists():
                audit_record(action="preflight:note", voucher=voucher, actor=actor, message=note)

    connector = connector or registry.connector_for(integration)
    # Once an outcome is unknown it stays so until a look-up succeeds and says "not there": a failed
    # look-up (5xx, timeout, 429, a refusal) proves nothing, so no failure below may clear the marker.
    known_absent = not look_up_first
    try:
        remote = None
        if look_up_first:
            remote = connector.find_voucher(dto)
            known_absent = remote is None
            audit_record(
                action="remote:lookup", voucher=voucher, actor=actor,
                message=(Msg("The previous attempt's outcome was unknown; found it in %(system)s as %(ref)s.", system=voucher.get_system_display(), ref=remote.remote_id)) if remote else
                        Msg("The previous attempt's outcome was unknown; it is not in %(system)s, so we send it.", system=voucher.get_system_display()),
            )
        if remote is None:
            if previous is not None:
                remote = connector.update_voucher(dto, previous)
            else:
                remote = connector.post_voucher(dto)
    except AuthError as exc:
        return _record_auth_error(voucher, integration, exc, actor)
    except RemoteValidationError as exc:
        return _record_failure(voucher, exc, actor, definite=known_absent and not exc.outcome_unknown)
    except Deferred as exc:
        return _record_deferred(voucher, exc, actor, outcome_unknown=exc.outcome_unknown or not known_absent)
    except RetryableError as exc:
        return _record_retry(voucher, exc, actor, outcome_unknown=exc.outcome_unknown or not known_absent)
    except ConnectorError as exc:
        return _record_failure(voucher, exc, actor, definite=known_absent and not exc.outcome_unknown)
    except Exception as exc:  # anything unexpected: we cannot know whether it landed
        logger.exception("Unexpected error sending voucher %s", voucher.pk)
        return _record_retry(voucher, RetryableError(Msg("Unexpected error: %(error)s", error=exc)), actor,
                             outcome_unknown=True)
    return _record_posted(voucher, remote, actor, updated=previous is not None, fingerprint=fingerprint)


def _remote_of(voucher: Voucher) -> RemoteVoucher:
    return RemoteVoucher(remote_id=voucher.remote_id, series=voucher.remote_series, number=voucher.remote_number,
                         year=voucher.remote_year, timestamp=voucher.remote_timestamp, status=voucher.remote_status)


def _record_posted(voucher: Voucher, remote: RemoteVoucher, actor: Actor, *, updated: bool, fingerprint: str) -> str:
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
        # once a minute is enough to show the connection is alive (and spares a write per voucher)
        now = timezone.now()
        Integration.objects.filter(company_id=voucher.company_id, system=voucher.system).filter(
            models.Q(last_success_at__isnull=True) | models.Q(last_success_at__lt=now - timedelta(minutes=1))
        ).update(last_success_at=now)
    return "posted"


def _record_failure(voucher: Voucher, exc: ConnectorError, actor: Actor, *, definite: bool) -> str:
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        voucher_transition(
            voucher=voucher, to=S.FAILED, actor=actor, outcome=AuditEvent.Outcome.ERROR,
            message=Msg("Refused by %(system)s: %(error)s", system=voucher.get_system_display(), error=exc.message),
            last_error=exc.message, last_error_code=exc.code,
            pending_since=None if definite else voucher.pending_since,
        )
    return "failed"


def _record_retry(voucher: Voucher, exc: RetryableError, actor: Actor, *, outcome_unknown: bool) -> str:
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


def _record_deferred(voucher: Voucher, exc: Deferred, actor: Actor, *, outcome_unknown: bool) -> str:
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


def _record_auth_error(voucher: Voucher, integration: Integration, exc: AuthError, actor: Actor) -> str:
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


@dataclass
class DispatchResult:
    sent: int = 0
    posted: int = 0
    failed: int = 0
    retried: int = 0
    awaiting_authorisation: int = 0
    deferred: int = 0  # given back until a target's request limit frees
    remaining: bool = False


def vouchers_dispatch(*, system: str | None = None, max_seconds: float = 240, progress=None,
                      on_claim=None) -> DispatchResult:
    """Send due vouchers company by company, each under its dispatch lease (``dispatchers``), until no
    company with due vouchers is free or time is up."""

    from ..selectors.vouchers import companies_with_due_vouchers, dispatchable_vouchers
    from .dispatchers import SLICE, LeaseKeeper, dispatcher_id, lease_claim_next, lease_release

    result = DispatchResult()
    holder = dispatcher_id()
    idle: set[int] = set()  # companies whose due vouchers could not be sent now (this run leaves them)
    # Every wait of every send counts against the budget (pacing, pauses after a 429): issue 8, cause 5.
    with LeaseKeeper(holder), ratelimit.send_budget(max_seconds):
        while ratelimit.budget_left() > 0:
            company_id = lease_claim_next(holder=holder, system=system, exclude=idle)
            if company_id is None:
                break
            if on_claim:
                on_claim()
            moved = False
            try:
                ids = list(dispatchable_vouchers(system=system, company_ids=[company_id])
                           .values_list("id", flat=True)[:SLICE])
                for voucher_id in ids:
                    if ratelimit.budget_left() <= 0:
                        break
                    with log_context(voucher_id=voucher_id):  # every log line of this send names the voucher
                        outcome = voucher_send(voucher_id=voucher_id)
                    if outcome == "deferred":  # the company waits for its limit; go on with others
                        result.deferred += 1
                        break
                    if outcome in ("skipped", "not_due", "paused"):
                        continue
                    moved = True
                    result.sent += 1
                    result.posted += outcome == "posted"
                    result.failed += outcome == "failed"
                    result.retried += outcome == "retry"
                    result.awaiting_authorisation += outcome == "awaiting_authorisation"
                    if progress:
                        progress(result)
            finally:
                lease_release(holder=holder, company_id=company_id)
            if not moved:
                idle.add(company_id)
    result.remaining = bool(companies_with_due_vouchers(system=system, exclude=idle))
    return result


def vouchers_recover_stuck(*, older_than: timedelta | None = None) -> int:
    """Vouchers left in 'sending' by a worker that died: queue them again, to be looked up first.

    A voucher counts as left once no dispatcher holds its company's lease (a live one renews it while
    it waits for the answer) and it has been sending longer than a lease lives."""
    from django.conf import settings

    from ..selectors.vouchers import vouchers_stuck_sending

    now = timezone.now()
    older_than = older_than if older_than is not None else timedelta(seconds=settings.KONTERA_DISPATCH_LEASE_SECONDS)
    count = 0
    for voucher_id in vouchers_stuck_sending(older_than=now - older_than, unleased_at=now).values_list("id", flat=True):
        with transaction.atomic():
            voucher = Voucher.objects.select_for_update().get(pk=voucher_id)
            if voucher.state != S.SENDING:
                continue
            voucher_transition(
                voucher=voucher, to=S.QUEUED, actor="sweeper", outcome=AuditEvent.Outcome.ERROR,
                message=Msg("The send was interrupted; the outcome is unknown. It will be looked up before any new post."),
                last_error=Msg("Send interrupted; outcome unknown."), next_attempt_at=None,
            )
            count += 1
    return count


def voucher_mark_changed(*, voucher: Voucher, actor: Actor = None) -> bool:
    """Call after editing a posted voucher's content: it needs an update in the target if it changed."""
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        changed = voucher_fingerprint(voucher) != voucher.posted_fingerprint
        if voucher.state == S.POSTED and changed:
            voucher_transition(voucher=voucher, to=S.NEEDS_UPDATE, actor=actor,
                               message=Msg("Changed after posting; the target's copy will be updated."))
            return True
        if voucher.state == S.NEEDS_UPDATE and not changed:
            voucher_transition(voucher=voucher, to=S.POSTED, actor=actor,
                               message=Msg("The change was undone; the target's copy is up to date again."))
        return False


def voucher_reset_to_draft(*, voucher: Voucher, actor: Actor = None) -> None:
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        voucher_transition(voucher=voucher, to=S.DRAFT, actor=actor, message=Msg("Back to draft for editing."))

