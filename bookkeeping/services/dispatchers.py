"""Who sends which company's vouchers, on any number of worker nodes (issue 8 causes 3–4, issue 12).

- A dispatcher is a django-q2 task that any free worker of any node runs. It claims a company that
  has vouchers due and that nobody holds (a ``DispatchLease`` row), sends a slice of that company's
  vouchers, gives the lease back and claims the next company, until none is free or its time is up.
  So capacity is the free workers of the nodes that are alive, and never do two dispatchers send for
  one company at once (Fortnox's and Dinero's rate limits are per company).
- Leases lapse ``KONTERA_DISPATCH_LEASE_SECONDS`` after their last renewal; a thread of the
  dispatcher renews them while it works (also during a long wait for an answer or for the pacer). A
  killed dispatcher's companies are free again within that time, and its interrupted voucher is
  queued again by the sweep, to be looked up before any new post.
- ``kick_dispatch`` keeps a few dispatcher tasks queued while companies wait without one; the
  queued tickets live in the cache for seconds only and are given back when the task starts. Lost
  tasks (a killed cluster; django-q2 would hand an ORM task out again only after ``retry``) cost
  nothing: the sweep kicks new ones.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from ..models import DispatchLease
from ..selectors.vouchers import companies_with_due_vouchers

logger = logging.getLogger("kontera.dispatch")

QUEUED_TICKETS = 4  # dispatcher tasks waiting in the broker at most; each one that starts kicks the next
QUEUED_TICKET_SECONDS = 20  # a queued dispatcher lost with its cluster frees its ticket after this
SLICE = 50  # vouchers of one company before the dispatcher lets others have a turn (10 s of Fortnox's pace)
LOOK_AGAIN_SECONDS = 2.0  # with fewer companies in flight, how often a dispatcher looks for another free one


def companies_in_flight() -> int:
    """Companies a dispatcher sends for at once, each at its own pace (``send_batches.Lanes``). One company at a
    time capped a worker at that company's pace (Fortnox: 5 vouchers/s); 100 companies need 500/s in all."""
    return max(int(settings.KONTERA_COMPANIES_IN_FLIGHT), 1)


def lease_seconds() -> int:
    return int(settings.KONTERA_DISPATCH_LEASE_SECONDS)


def dispatcher_id() -> str:
    node = os.environ.get("KONTERA_NODE") or "local"
    return f"{node}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:120]


# --- leases --------------------------------------------------------------------------------------


def lease_claim(*, company_id: int, holder: str) -> bool:
    """Take the company's lease if it is free (lapsed) or already ours. One UPDATE … WHERE decides, so two
    dispatchers racing for it (on any node, PostgreSQL or SQLite) cannot both win."""
    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds())
    with transaction.atomic():
        if DispatchLease.objects.filter(company_id=company_id).filter(
                Q(expires_at__lte=now) | Q(holder=holder)).update(holder=holder, expires_at=expires, claimed_at=now):
            return True
        try:
            with transaction.atomic():
                DispatchLease.objects.create(company_id=company_id, holder=holder, expires_at=expires, claimed_at=now)
            return True
        except IntegrityError:  # held by someone else (or taken a moment ago)
            return False


def lease_claim_next(*, holder: str, system: str | None = None, exclude=()) -> int | None:
    """Claim the free company whose due vouchers waited longest; None when every such company is held."""
    for company_id in companies_with_due_vouchers(system=system, free_at=timezone.now(), exclude=exclude):
        if lease_claim(company_id=company_id, holder=holder):
            return company_id
    return None


def lease_renew(*, holder: str) -> int:
    return DispatchLease.objects.filter(holder=holder).update(
        expires_at=timezone.now() + timedelta(seconds=lease_seconds()))


def lease_release(*, holder: str, company_id: int | None = None) -> None:
    leases = DispatchLease.objects.filter(holder=holder)
    if company_id is not None:
        leases = leases.filter(company_id=company_id)
    # No holder once given back: the holder's keeper renews all its leases, and would otherwise keep a
    # company it finished with held until the dispatcher ends (the others could not take it meanwhile).
    leases.update(expires_at=timezone.now(), holder="")


class LeaseKeeper:
    """Renews a holder's leases every quarter of their life from a thread, while its dispatcher works."""

    def __init__(self, holder: str):
        self.holder = holder
        self.renewed_at = time.monotonic()  # the holder's leases were claimed just before
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-keeper {holder}", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)

    def fresh(self) -> bool:
        """Whether the leases were renewed within half their life. Past that, no post may leave: a dispatcher
        cut off from the database may have lost its companies to another, which would look the vouchers up
        and could post them again while ours are still on their way."""
        return time.monotonic() - self.renewed_at < lease_seconds() / 2

    def _run(self) -> None:
        try:
            while not self.stopped.wait(max(lease_seconds() / 4, 0.5)):
                # The leases run from the moment their new end is computed, before the UPDATE is sent: taking
                # that moment (not the answer's) keeps ``fresh`` on the safe side, and on a busy worker the
                # UPDATE's own wait is not counted against the leases (a quarter, not a third: more margin).
                started = time.monotonic()
                try:
                    lease_renew(holder=self.holder)
                    self.renewed_at = started
                except OperationalError:  # SQLite busy, a dropped connection: the next turn renews
                    logger.warning("Could not renew the dispatch leases of %s", self.holder, exc_info=True)
        finally:
            connection.close()  # this thread's own connection


@contextmanager
def company_lease(*, company_id: int, wait: float = 0.0, holder: str | None = None):
    """Hold one company's lease for a send outside the dispatchers (e.g. a push command); waits up to
    ``wait`` seconds for a dispatcher to give it back. Yields whether it was obtained."""
    holder = holder or dispatcher_id()
    deadline = time.monotonic() + wait
    got = lease_claim(company_id=company_id, holder=holder)
    while not got and time.monotonic() < deadline:
        time.sleep(0.5)
        got = lease_claim(company_id=company_id, holder=holder)
    if not got:
        yield False
        return
    try:
        with LeaseKeeper(holder):
            yield True
    finally:
        lease_release(holder=holder, company_id=company_id)


# --- keeping dispatchers queued -------------------------------------------------------------------


def _queued_ticket(number: int) -> str:
    return f"kontera:dispatch:queued:{number}"


def queued_ticket_return(number: int | None) -> None:
    if number is not None:
        cache.delete(_queued_ticket(number))


def kick_dispatch() -> int:
    """Queue dispatcher tasks for companies that wait without one (a few at a time; each dispatcher
    that starts kicks again, so free workers on every node fill up). Returns how many were queued."""
    free = len(companies_with_due_vouchers(free_at=timezone.now()))
    waiting = len(cache.get_many([_queued_ticket(n) for n in range(QUEUED_TICKETS)]))
    wanted = min(free - waiting, QUEUED_TICKETS - waiting)
    enqueued = 0
    for number in range(QUEUED_TICKETS):
        if enqueued >= wanted:
            break
        if cache.add(_queued_ticket(number), 1, timeout=QUEUED_TICKET_SECONDS):
            async_task("bookkeeping.tasks.dispatch", number, task_name=f"dispatch-{number}", group="dispatch")
            enqueued += 1
    return enqueued
