"""Sending a company's vouchers a batch at a time: one claim, the posts in order, one record (issue 15).

The single path (``sending.voucher_send``) costs three transactions and two audit INSERTs per voucher.
Here a batch of one company's new vouchers is claimed in one transaction (one locked read with rows,
one UPDATE, one INSERT of the audit events), posted one after another at the company's pace, and the
answers recorded in one transaction (one locked read, one UPDATE, one INSERT). The promise stays that of
the single path: each voucher is ``sending`` with ``pending_since`` set before its post leaves, so a
worker that dies mid-batch leaves vouchers the sweep queues again, to be looked up before any new post.

Vouchers that need more than a plain post — an unknown earlier outcome (look-up first), an update of a
posted voucher, a pre-flight problem or note, a connection that is not ready — go the single path, which
knows those cases; a batch holds only what is new, checked and ready.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field

from django.db import connection, models, transaction
from django.db.models.functions import Greatest
from django.utils import timezone

from config.logs import log_context
from integrations import ratelimit, registry
from integrations.base import AuthError, ConnectorError, Deferred, RetryableError, VoucherDTO
from integrations.models import IntegrationStatus
from wording import Msg, set_text

from ..models import AuditEvent, Voucher, VoucherState
from .audit import Actor, audit_record_vouchers
from .bulk import rows_set
from .send_outcomes import last_success_mark, record_error
from .vouchers import (
    transition_message,
    voucher_dto,
    voucher_fingerprint,
    voucher_preflight,
    voucher_preflight_notes,
)

logger = logging.getLogger("kontera.vouchers")

S = VoucherState

BATCH = 10  # vouchers of one company claimed at once: two seconds of Fortnox's pace (25 requests in 5 s)

# The first reserved slot is this far ahead: the lane's thread starts a moment after the claim, and a slot
# taken later than ``Pace.slack`` is given up (a cost only when the company's pace was idle anyway).
SLOT_LEAD = 0.05

NOT_SENT = object()  # the batch stopped before this voucher's post left: nothing was sent for it


@dataclass
class Claimed:
    voucher: Voucher
    dto: VoucherDTO
    fingerprint: str


@dataclass
class LaneResult:
    """What one batch of a company did: an outcome per voucher (as ``voucher_send`` names them), and whether
    the company must be given back now (its limit is reached, or its connection needs re-authorising)."""

    outcomes: list[str] = field(default_factory=list)
    give_back: bool = False


@dataclass
class LaneBatch:
    """A batch between its claim and its record: the claimed vouchers, the ids the single path takes, the
    slots reserved for the posts (rate key and send times), and, once posted, the answers."""

    claimed: list[Claimed]
    singles: list[int]
    slots: tuple[str, list[float]] | None = None
    answers: list[tuple[Claimed, object]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # of the singles
    give_back: bool = False

    @property
    def needs_database(self) -> bool:
        """Whether its posting thread will use the database: the single path does, and so does pacing each
        request on its own (no slots reserved: a Dinero document is several requests)."""
        return bool(self.singles) or (bool(self.claimed) and self.slots is None)


def lane_send(voucher_ids: list[int], *, turn, send_single, lease=None, actor: Actor = "worker") -> LaneResult:
    """Send these due vouchers of one company: the plain new ones as one batch, the others one by one.

    ``turn``: the company's ``CompanyTurn`` (integration, plan and HTTP session kept across batches);
    ``send_single``: the single path (``sending.voucher_send``), for the vouchers a batch does not take;
    ``lease``: the dispatcher's ``LeaseKeeper`` — no post leaves once its last renewal is older than half a
    lease (a dispatcher cut off from the database may have lost the company to another).

    The dispatcher runs the three steps apart: the claim and the record in its own thread, the posts in a
    lane's thread, which so needs no database connection of its own (``Lanes``)."""
    batch = lane_claim(voucher_ids, turn=turn, lease=lease, actor=actor)
    if batch is None:
        return LaneResult(give_back=True)  # nothing claimed: the dispatcher ends its run
    return lane_record(lane_post(batch, turn=turn, send_single=send_single, lease=lease, actor=actor),
                       turn=turn, actor=actor)


def lane_claim(voucher_ids: list[int], *, turn, lease=None, actor: Actor = "worker") -> LaneBatch | None:
    """Claim a batch and reserve its posts' slots (one statement: ``ratelimit.reserve_ahead``); None when the
    leases are stale (nothing claimed)."""
    if lease is not None and not lease.fresh():
        return None
    claimed, singles = batch_claim(voucher_ids, turn=turn, actor=actor)
    batch = LaneBatch(claimed=claimed, singles=singles)
    if claimed and not singles:  # the singles' own requests come first and would make the slots late
        batch.slots = _reserve_posts(claimed, turn=turn)
    return batch


def _reserve_posts(claimed: list[Claimed], *, turn) -> tuple[str, list[float]] | None:
    integration = turn.integration(claimed[0].voucher)
    pace = registry.connector_for(integration, session=turn.session(integration)).post_pace()
    if pace is None:  # a post is more than one request (Dinero): each request reserves its own slot
        return None
    key, rate = pace
    left = ratelimit.budget_left()
    slots = ratelimit.reserve_ahead(key, rate, len(claimed), lead=SLOT_LEAD,
                                    budget=None if left is None else max(left, 0.0))
    return (key, slots) if slots else None


def lane_post(batch: LaneBatch, *, turn, send_single, lease=None, actor: Actor = "worker") -> LaneBatch:
    """The singles one by one (the single path, with its own database work), then the batch's posts at the
    reserved slots: these need no database unless a slot comes late or the target says 429."""
    for voucher_id in batch.singles:
        if batch.give_back:
            break
        with log_context(voucher_id=voucher_id):  # every log line of this send names the voucher
            outcome = send_single(voucher_id=voucher_id, actor=actor, turn=turn)
        batch.outcomes.append(outcome)
        batch.give_back = outcome in ("deferred", "awaiting_authorisation")
    if batch.claimed:
        with ratelimit.reserved(*batch.slots) if batch.slots else nullcontext():
            batch.answers = batch_post(batch.claimed, turn=turn, lease=lease, stop=batch.give_back)
    return batch


def lane_record(batch: LaneBatch, *, turn, actor: Actor = "worker") -> LaneResult:
    """Record what the posts answered (``batch_record``); what the batch did, for the dispatcher."""
    result = LaneResult(outcomes=list(batch.outcomes), give_back=batch.give_back)
    if batch.answers:
        result.outcomes += batch_record(batch.answers, turn=turn, actor=actor)
    result.give_back = result.give_back or any(o in ("deferred", "awaiting_authorisation") for o in result.outcomes)
    return result


def batch_claim(voucher_ids: list[int], *, turn, actor: Actor) -> tuple[list[Claimed], list[int]]:
    """Claim the new, checked, ready vouchers among ``voucher_ids`` in one transaction; returns them (in the
    given order) and the ids the single path must take. Vouchers no longer queued or not yet due are left."""
    now = timezone.now()
    claimed: list[Claimed] = []
    singles: list[int] = []
    with transaction.atomic():
        vouchers = {v.pk: v for v in Voucher.objects.select_for_update(of=("self",)).select_related("company")
                    .prefetch_related("rows").filter(pk__in=voucher_ids, state=S.QUEUED)}
        for voucher_id in voucher_ids:
            voucher = vouchers.get(voucher_id)
            if voucher is None or (voucher.next_attempt_at and voucher.next_attempt_at > now):
                continue
            item = _ready(voucher, turn)
            # One batch, one target: a company's vouchers for another system go the single path.
            if item is None or (claimed and voucher.system != claimed[0].voucher.system):
                singles.append(voucher_id)
            else:
                claimed.append(item)
        if claimed:
            Voucher.objects.filter(pk__in=[c.voucher.pk for c in claimed]).update(
                state=S.SENDING, attempts=models.F("attempts") + 1, pending_since=now, updated_at=now,
                preflight_ok=True, preflight_problems=[])
            moved = transition_message(S.QUEUED, S.SENDING)
            audit_record_vouchers(
                events=[(c.voucher, f"state:{S.QUEUED}->{S.SENDING}", AuditEvent.Outcome.INFO, moved) for c in claimed],
                actor=actor, integration_id=turn.integration(claimed[0].voucher).pk, log_each=True)
            for c in claimed:
                c.voucher.state, c.voucher.attempts, c.voucher.pending_since = S.SENDING, c.voucher.attempts + 1, now
    return claimed, singles


def _ready(voucher: Voucher, turn) -> Claimed | None:
    """The voucher as posted when it needs nothing but a post; None when the single path must take it."""
    if voucher.pending_since is not None or voucher.remote_id:
        return None  # an unknown outcome is looked up first; a posted one is updated
    integration = turn.integration(voucher)
    if (integration is None or integration.status != IntegrationStatus.ACTIVE
            or integration.credentials_unreadable):
        return None
    plan = turn.plan(voucher)
    if voucher_preflight(voucher, integration=integration, plan=plan):
        return None
    dto = voucher_dto(voucher, integration=integration, plan=plan)
    if voucher_preflight_notes(voucher, dto=dto):
        return None  # the single path records what changes on the way
    return Claimed(voucher=voucher, dto=dto, fingerprint=voucher_fingerprint(voucher))


def batch_post(claimed: list[Claimed], *, turn, lease=None, stop: bool = False) -> list[tuple[Claimed, object]]:
    """Post each claimed voucher in order; the answer per voucher is its ``RemoteVoucher``, the error, or
    ``NOT_SENT``. A refused token or a limit that frees too late ends the batch: the rest is not sent."""
    integration = turn.integration(claimed[0].voucher)
    connector = registry.connector_for(integration, session=turn.session(integration))
    answers: list[tuple[Claimed, object]] = []
    for item in claimed:
        if stop or (lease is not None and not lease.fresh()):
            answers.append((item, NOT_SENT))
            continue
        try:
            with log_context(voucher_id=item.voucher.pk):
                answers.append((item, connector.post_voucher(item.dto)))
        except (AuthError, Deferred) as exc:
            answers.append((item, exc))
            stop = True
        except ConnectorError as exc:
            answers.append((item, exc))
        except Exception as exc:  # anything unexpected: we cannot know whether it landed
            logger.exception("Unexpected error sending voucher %s", item.voucher.pk)
            answers.append((item, RetryableError(Msg("Unexpected error: %(error)s", error=exc), outcome_unknown=True)))
    return answers


def batch_record(answers: list[tuple[Claimed, object]], *, turn, actor: Actor) -> list[str]:
    """Record a batch's answers: the posted and the not-sent in bulk, each error as the single path does."""
    posted = [(item, remote) for item, remote in answers if remote is not NOT_SENT and not isinstance(remote, Exception)]
    not_sent = [item for item, remote in answers if remote is NOT_SENT]
    integration = turn.integration(answers[0][0].voucher)
    integration_id = integration.pk if integration is not None else None
    outcomes = ["posted"] * _record_posted_many(posted, actor=actor, integration_id=integration_id) if posted else []
    if posted:
        last_success_mark(posted[0][0].voucher)
    if not_sent:
        _give_back_unsent(not_sent, actor=actor, integration_id=integration_id)
    for item, exc in answers:
        if not isinstance(exc, Exception):
            continue
        voucher = item.voucher
        integration = turn.integration(voucher)
        if isinstance(exc, AuthError):
            turn.forget_integration(voucher)
        # Every voucher of a batch was new: nothing of it was in the target before this post.
        outcomes.append(record_error(voucher, exc, actor, integration=integration, known_absent=True))
    return outcomes


def _record_posted_many(posted: list[tuple[Claimed, object]], *, actor: Actor, integration_id: int | None) -> int:
    """One transaction for the batch's posted vouchers: the answers stored, one audit event each."""
    now = timezone.now()
    with transaction.atomic():
        sending = set(Voucher.objects.select_for_update().filter(
            pk__in=[item.voucher.pk for item, _remote in posted], state=S.SENDING).values_list("pk", flat=True))
        vouchers, events = [], []
        for item, remote in posted:
            voucher = item.voucher
            if voucher.pk not in sending:  # cannot happen while we hold the lease; never overwrite a verdict
                logger.error("Voucher %s left 'sending' while its post was under way; its answer: %s",
                             voucher.pk, remote.remote_id)
                continue
            voucher.state = S.POSTED
            voucher.remote_id, voucher.remote_series = remote.remote_id, remote.series
            voucher.remote_number, voucher.remote_year = str(remote.number or ""), str(remote.year or "")
            voucher.remote_timestamp, voucher.remote_status = remote.timestamp or "", remote.status or ""
            voucher.posted_at, voucher.posted_fingerprint, voucher.updated_at = now, item.fingerprint, now
            voucher.pending_since = voucher.next_attempt_at = None
            voucher.last_error_code = ""
            set_text(voucher, "last_error", "")
            vouchers.append(voucher)
            events += [(voucher, "remote:step", AuditEvent.Outcome.OK, step) for step in getattr(remote, "steps", ()) or ()]
            events.append((voucher, f"state:{S.SENDING}->{S.POSTED}", AuditEvent.Outcome.OK,
                           Msg("Posted to %(system)s: %(ref)s", system=voucher.get_system_display(),
                               ref=remote.remote_id)))
        own = ["remote_id", "remote_series", "remote_number", "remote_year", "remote_timestamp", "remote_status",
               "posted_fingerprint", "coded_texts"]
        rows_set(Voucher, [{"pk": v.pk, **{name: getattr(v, name) for name in own}} for v in vouchers], fields=own,
                 same={"state": S.POSTED, "posted_at": now, "updated_at": now, "pending_since": None,
                       "next_attempt_at": None, "last_error": "", "last_error_code": ""})
        audit_record_vouchers(events=events, actor=actor, integration_id=integration_id, log_each=True)
    return len(vouchers)


def _give_back_unsent(items: list[Claimed], *, actor: Actor, integration_id: int | None) -> None:
    """Vouchers whose post never left: queued again as they were (the attempt not counted, no unknown outcome)."""
    ids = [item.voucher.pk for item in items]
    with transaction.atomic():
        ids = list(Voucher.objects.select_for_update().filter(pk__in=ids, state=S.SENDING).values_list("pk", flat=True))
        Voucher.objects.filter(pk__in=ids).update(
            state=S.QUEUED, attempts=Greatest(models.F("attempts") - 1, 0), pending_since=None,
            updated_at=timezone.now())
        given_back = [item.voucher for item in items if item.voucher.pk in ids]
        for voucher in given_back:
            voucher.state = S.QUEUED
        audit_record_vouchers(
            events=[(voucher, f"state:{S.SENDING}->{S.QUEUED}", AuditEvent.Outcome.INFO,
                     Msg("Not sent: its batch stopped before it (nothing was sent for it); queued again."))
                    for voucher in given_back],
            actor=actor, integration_id=integration_id, log_each=True)


class Lanes:
    """Runs the companies' batches side by side: each company held by a dispatcher is a lane, one batch in
    flight per lane (so a company's vouchers still go out in order, at its own pace), up to ``threads`` lanes
    at once. A worker thus keeps many companies in flight while each one waits for its pace or its answer.

    With ``threads=0`` a batch runs when it is submitted, in the dispatcher's own thread (the test suite:
    its database transaction and virtual clock are the dispatcher's). A thread that needs the database opens
    its own connection, and closes it when that job ends; jobs submitted as needing it run at most
    ``database_threads`` at once, so a worker's connections stay bounded whatever its lanes."""

    def __init__(self, threads: int, database_threads: int = 0):
        self.threads = max(int(threads), 0)
        self._database = threading.BoundedSemaphore(database_threads) if database_threads > 0 else None
        self._jobs: queue.Queue = queue.Queue()
        self._done: queue.Queue = queue.Queue()
        self._started: list[threading.Thread] = []
        self._busy = 0

    def submit(self, key, job, *, database: bool = False) -> None:
        """Run ``job()`` for ``key``; its result (or exception) comes back from ``finished``. The job runs in
        a copy of the caller's context (the send budget, the log context); ``database``: it will use the
        database (it then waits for one of the ``database_threads``)."""
        context = contextvars.copy_context()
        self._busy += 1
        if self.threads == 0:
            self._done.put((key, *_run(context, job)))
            return
        if len(self._started) < min(self.threads, self._busy):
            thread = threading.Thread(target=self._work, name=f"send-lane-{len(self._started)}", daemon=True)
            thread.start()
            self._started.append(thread)
        self._jobs.put((key, context, job, database))

    def finished(self, timeout: float) -> list[tuple[object, bool, object]]:
        """The (key, ok, result or exception) of jobs that ended, waiting up to ``timeout`` for the first."""
        ended = []
        try:
            ended.append(self._done.get(timeout=timeout) if self.threads and timeout > 0 else self._done.get_nowait())
            while True:
                ended.append(self._done.get_nowait())
        except queue.Empty:
            pass
        self._busy -= len(ended)
        return ended

    def close(self) -> list[tuple[object, bool, object]]:
        """Wait for every job in flight, stop the threads; returns what ended meanwhile."""
        ended = []
        while self._busy > 0:
            ended += self.finished(timeout=1.0)
        for _thread in self._started:
            self._jobs.put(None)
        for thread in self._started:
            thread.join(timeout=30)
        return ended

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            key, context, job, database = item
            with self._database if database and self._database else nullcontext():
                try:
                    result = _run(context, job)
                finally:
                    # A batch's posts need no database; a single send, a Dinero document or a late slot does.
                    # Such a connection is closed when its job ends, so idle lanes hold none (max_connections).
                    connection.close()
            self._done.put((key, *result))


def _run(context, job) -> tuple[bool, object]:
    try:
        return True, context.run(job)
    except Exception as exc:  # reported to the dispatcher, which gives the company back
        logger.exception("A batch of vouchers ended with an error")
        return False, exc
