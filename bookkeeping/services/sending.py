"""Sending: the one path of a voucher to its target, and the dispatchers' loop over companies.

Every send is claim → call → record: a short transaction claims the voucher (state ``sending``,
``pending_since`` set), the remote call happens outside any transaction, and a second short
transaction records the outcome. If a worker dies or the answer is lost, ``pending_since`` stays
set, and the next attempt first asks the target whether the voucher already landed (issue 8).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.logs import bind as log_bind
from integrations import ratelimit, registry
from integrations.base import AuthError, ConnectorError, RetryableError
from integrations.http import make_session
from integrations.models import Integration, IntegrationStatus
from wording import Msg, english

from ..models import AuditEvent, Voucher, VoucherState
from ..selectors.plans import plan_snapshot
from ..selectors.vouchers import landed_elsewhere
from .audit import Actor, audit_record
from .credentials import voucher_wait_for_credentials
from .send_outcomes import (  # noqa: F401 - forget_last_success_marks is read from here
    forget_last_success_marks,
    record_error,
    record_posted,
    record_retry,
    remote_of,
)
from .vouchers import (
    only_unmapped,
    preflight_fields,
    problems_text,
    voucher_dto,
    voucher_fingerprint,
    voucher_integration,
    voucher_preflight,
    voucher_preflight_notes,
    voucher_transition,
    voucher_wait_for_mapping,
)

logger = logging.getLogger("kontera.vouchers")

S = VoucherState

@dataclass
class CompanyTurn:
    """What the vouchers of one company's turn share (a dispatcher's slice, a few seconds): the
    integration row (its token refreshed in place), the plan snapshot, and one kept-alive HTTP session
    per integration instead of a new connection per voucher. Each voucher is still claimed, sent and
    recorded on its own."""

    integrations: dict = field(default_factory=dict)
    plans: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)

    def integration(self, voucher: Voucher) -> Integration | None:
        key = (voucher.company_id, voucher.system)
        if key not in self.integrations:
            self.integrations[key] = voucher_integration(voucher)
        return self.integrations[key]

    def forget_integration(self, voucher: Voucher) -> None:
        """Its state changed (re-authorisation needed): the next voucher reads it again."""
        self.integrations.pop((voucher.company_id, voucher.system), None)

    def plan(self, voucher: Voucher):
        key = (voucher.company_id, voucher.system)
        if key not in self.plans:
            self.plans[key] = plan_snapshot(voucher.company, voucher.system)
        return self.plans[key]

    def session(self, integration: Integration):
        if integration.pk not in self.sessions:
            self.sessions[integration.pk] = make_session()
        return self.sessions[integration.pk]

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()


def voucher_send(*, voucher_id: int, actor: Actor = "worker", connector=None, turn: CompanyTurn | None = None) -> str:
    """Send one queued voucher to its target: claim → call → record. Returns what happened.

    ``turn``: what the dispatcher keeps for the company's turn (``CompanyTurn``); without it the
    integration and plan are read for this voucher alone."""
    now = timezone.now()
    with transaction.atomic():
        voucher = (Voucher.objects.select_for_update().select_related("company").prefetch_related("rows")
                   .filter(pk=voucher_id).first())
        if voucher is None or voucher.state != S.QUEUED:
            return "skipped"
        if voucher.next_attempt_at and voucher.next_attempt_at > now:
            return "not_due"
        integration = turn.integration(voucher) if turn is not None else voucher_integration(voucher)
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
        plan = turn.plan(voucher) if turn is not None else plan_snapshot(voucher.company, voucher.system)
        problems = voucher_preflight(voucher, integration=integration, plan=plan)
        checked = preflight_fields(voucher, problems)
        if only_unmapped(problems):
            voucher_wait_for_mapping(voucher, problems, actor)
            return "awaiting_mapping"
        if problems:
            voucher_transition(voucher=voucher, to=S.FAILED, actor=actor, outcome=AuditEvent.Outcome.ERROR,
                               message=Msg("Not sent: %(reasons)s", reasons=problems_text(problems)),
                               last_error=problems_text(problems), last_error_code=problems[0].code,
                               pending_since=voucher.pending_since, **{n: getattr(voucher, n) for n in checked})
            return "failed"
        log_bind(company_id=voucher.company_id, integration_id=integration.pk)
        look_up_first = voucher.pending_since is not None
        previous = remote_of(voucher) if voucher.remote_id else None
        dto = voucher_dto(voucher, integration=integration, plan=plan)
        if look_up_first:
            dto = replace(dto, known_elsewhere=landed_elsewhere(voucher, day=dto.date))
        fingerprint = voucher_fingerprint(voucher)  # what we are about to post
        voucher_transition(voucher=voucher, to=S.SENDING, actor=actor, attempts=voucher.attempts + 1,
                           pending_since=voucher.pending_since or now, **{n: getattr(voucher, n) for n in checked})
        for note in voucher_preflight_notes(voucher, dto=dto):
            if not AuditEvent.objects.filter(voucher=voucher, action="preflight:note", message=english(note)).exists():
                audit_record(action="preflight:note", voucher=voucher, actor=actor, message=note)

    if connector is None:
        connector = registry.connector_for(integration, **({"session": turn.session(integration)} if turn else {}))
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
    except ConnectorError as exc:
        if isinstance(exc, AuthError) and turn is not None:
            turn.forget_integration(voucher)
        return record_error(voucher, exc, actor, integration=integration, known_absent=known_absent)
    except Exception as exc:  # anything unexpected: we cannot know whether it landed
        logger.exception("Unexpected error sending voucher %s", voucher.pk)
        return record_retry(voucher, RetryableError(Msg("Unexpected error: %(error)s", error=exc)), actor,
                             outcome_unknown=True)
    return record_posted(voucher, remote, actor, updated=previous is not None, fingerprint=fingerprint)


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
    """Send the due vouchers of many companies at once, each company under its dispatch lease
    (``dispatchers``), until no company with due vouchers is free or time is up.

    Each held company is a lane (``send_batches.Lanes``): its vouchers go a batch at a time, in order, at
    its own pace, while the other lanes' batches wait for theirs. A company is given back after a slice of
    its vouchers (others get a turn), when its limit frees too late, or when it needs re-authorising.

    A batch is claimed and recorded here, in the dispatcher's thread; only its posts run in a lane's thread,
    which thus needs no database connection: a worker's connections do not grow with its lanes."""

    from ..selectors.vouchers import companies_with_due_vouchers, dispatchable_vouchers
    from .dispatchers import (
        LOOK_AGAIN_SECONDS,
        SLICE,
        LeaseKeeper,
        companies_in_flight,
        dispatcher_id,
        lease_claim_next,
        lease_release,
    )
    from .send_batches import BATCH, Lanes, lane_claim, lane_post, lane_record

    result = DispatchResult()
    holder = dispatcher_id()
    idle: set[int] = set()  # companies whose due vouchers could not be sent now (this run leaves them)
    held: dict[int, _Lane] = {}
    lanes = Lanes(getattr(settings, "KONTERA_SEND_THREADS", 0), getattr(settings, "KONTERA_SEND_DATABASE_THREADS", 0))
    # No more companies than threads: a batch waiting for a thread would find its reserved slots gone stale
    # (the company's pace spent on nothing) — and more lanes than threads send no faster.
    in_flight = min(companies_in_flight(), lanes.threads) if lanes.threads else companies_in_flight()
    look_again_at = 0.0  # when to look for more free companies (not before every batch: a query each)

    def give_back(company_id: int) -> None:
        nonlocal look_again_at
        look_again_at = 0.0
        lane = held.pop(company_id)
        lane.turn.close()
        lease_release(holder=holder, company_id=company_id)
        if not lane.moved:
            idle.add(company_id)

    def ended(company_id: int, ok: bool, outcome) -> None:
        lane = held[company_id]
        lane.sending = False
        if ok:
            try:
                outcome = lane_record(outcome, turn=lane.turn)
            except Exception:
                logger.exception("The answers of a batch of vouchers could not be recorded")
                ok = False
        if not ok:  # logged; its claimed vouchers are swept and looked up
            lane.ids.clear()
            lane.moved = True
            return
        for name in outcome.outcomes:
            if name in ("skipped", "not_due", "paused"):
                continue
            if name == "deferred":  # given back until the limit frees: not sent
                result.deferred += 1
                continue
            lane.moved = True
            result.sent += 1
            result.posted += name == "posted"
            result.failed += name == "failed"
            result.retried += name == "retry"
            result.awaiting_authorisation += name == "awaiting_authorisation"
        if outcome.give_back:
            lane.ids.clear()
        if progress:
            progress(result)

    # Every wait of every send counts against the budget (pacing, pauses after a 429): issue 8, cause 5.
    with LeaseKeeper(holder) as keeper, ratelimit.send_budget(max_seconds):
        try:
            while True:
                # Leases not renewed lately (the database out of reach): send nothing more, end the run.
                budget = ratelimit.budget_left() if keeper.fresh() else 0
                while budget > 0 and len(held) < in_flight and time.monotonic() >= look_again_at:
                    company_id = lease_claim_next(holder=holder, system=system, exclude=idle | set(held))
                    if company_id is None:
                        look_again_at = time.monotonic() + LOOK_AGAIN_SECONDS
                        break
                    if on_claim:
                        on_claim()
                    held[company_id] = _Lane(ids=deque(dispatchable_vouchers(system=system, company_ids=[company_id])
                                                       .values_list("id", flat=True)[:SLICE]))
                for company_id, lane in list(held.items()):
                    if lane.sending:
                        continue
                    if not lane.ids or budget <= 0:
                        give_back(company_id)
                        continue
                    ids = [lane.ids.popleft() for _ in range(min(BATCH, len(lane.ids)))]
                    try:
                        batch = lane_claim(ids, turn=lane.turn, lease=keeper)
                    except Exception:  # the database: nothing of it was claimed
                        logger.exception("A batch of vouchers could not be claimed")
                        batch = None
                    if batch is None:  # or the leases are stale: the run ends (budget 0 above)
                        lane.ids.clear()
                        give_back(company_id)
                        continue
                    lane.sending = True
                    lanes.submit(company_id, partial(lane_post, batch, turn=lane.turn, send_single=voucher_send,
                                                     lease=keeper), database=batch.needs_database)
                if not held:
                    break
                wait = min(max(look_again_at - time.monotonic(), 0.05), 0.5) if len(held) < in_flight else 0.5
                for company_id, ok, outcome in lanes.finished(timeout=wait):
                    ended(company_id, ok, outcome)
        finally:
            for company_id, ok, outcome in lanes.close():  # every batch ends before its lease is given back
                ended(company_id, ok, outcome)
            for company_id in list(held):
                give_back(company_id)
    result.remaining = bool(companies_with_due_vouchers(system=system, exclude=idle))
    return result


@dataclass
class _Lane:
    """A company a dispatcher holds: the rest of its slice, what its batches share, whether a batch is out."""

    ids: deque
    turn: CompanyTurn = field(default_factory=CompanyTurn)
    sending: bool = False
    moved: bool = False


def vouchers_recover_stuck(*, older_than: timedelta | None = None) -> int:
    """Vouchers left in 'sending' by a worker that died: queue them again, to be looked up first.

    A voucher counts as left once no dispatcher holds its company's lease (a live one renews it while
    it waits for the answer) and it has been sending longer than a lease lives."""
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
