"""Request pacing shared by every worker and process, coordinated through the database.

A generic cell-rate algorithm (GCRA): each remote tenant has one row holding the earliest time
the next request may leave. ``reserve`` moves that time forward by one interval under a row lock
and tells the caller how long to wait, so two workers pacing the same Fortnox company get
staggered slots instead of racing. After a 429 every worker pauses for the whole window.

Inside a send budget (``send_budget``, opened by the dispatcher) a wait counts against the budget:
a slot that comes later than the budget allows, or a pause after a 429 longer than
``LONGEST_PAUSE_IN_PLACE`` (Dinero's 60 s), is not taken; ``WaitTooLong`` tells the caller when it
frees instead, so the dispatcher gives the voucher back and goes on with other companies (issue 8,
cause 5). Ordinary pacing waits inside the budget are sat out: they are what the pace is.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connection, transaction

from .models import RateLimitSlot


@dataclass(frozen=True)
class Pace:
    """``limit`` requests per ``window`` seconds, as the target enforces it."""

    limit: int
    window: float

    @property
    def interval(self) -> float:
        # One per interval keeps any window at most ``limit - 1`` requests, plus the first:
        # a 1 % margin absorbs network jitter between our clock and the target's.
        return self.window / max(self.limit - 1, 1) * 1.01


# A longer pause after a 429 is not sat out inside a budget: the worker serves other companies
# meanwhile. Fortnox's pause (its 5 s window) is waited for; Dinero's 60 s pause is not.
LONGEST_PAUSE_IN_PLACE = 10.0

# When the running send budget ends (on this module's clock), or None outside any budget.
_budget_ends: ContextVar[float | None] = ContextVar("kontera_send_budget_ends", default=None)


class WaitTooLong(Exception):  # noqa: N818 - a verdict, not a failure
    """The next slot comes later than the budget (or the longest wait in place) allows: not taken."""

    def __init__(self, seconds: float, *, past_budget: bool):
        super().__init__(f"next slot in {seconds:.1f} s")
        self.seconds = seconds
        self.past_budget = past_budget


@contextmanager
def send_budget(seconds: float):
    """Every wait inside counts against ``seconds`` (the dispatcher's share of the task timeout)."""
    token = _budget_ends.set(time.time() + seconds)
    try:
        yield
    finally:
        _budget_ends.reset(token)


def budget_left() -> float | None:
    """Seconds left in the running send budget; None outside any budget."""
    ends = _budget_ends.get()
    return None if ends is None else ends - time.time()


def reserve(key: str, pace: Pace, *, now: float | None = None, budget: float | None = None) -> float:
    """Reserve the next slot for ``key``; returns the seconds to wait before sending.

    With ``budget`` (seconds left), a slot beyond it, or behind a long pause after a 429, is not
    reserved (nobody's pace moves) and ``WaitTooLong`` says how far away it is.
    """
    now = time.time() if now is None else now
    wait = _reserve_unpaused(key, pace, now=now, budget=budget)
    if wait is not None:
        return wait
    with transaction.atomic():
        slot, _created = RateLimitSlot.objects.select_for_update().get_or_create(key=key)
        send_at = max(now, slot.next_at, slot.paused_until)
        if budget is not None:
            wait = send_at - now
            if wait > budget:
                raise WaitTooLong(wait, past_budget=True)
            if slot.paused_until > now and wait > LONGEST_PAUSE_IN_PLACE:
                raise WaitTooLong(wait, past_budget=False)
        slot.next_at = send_at + pace.interval
        slot.save(update_fields=["next_at"])
    return max(send_at - now, 0.0)


def _reserve_unpaused(key: str, pace: Pace, *, now: float, budget: float | None) -> float | None:
    """The common case in one statement (an UPDATE … RETURNING locks, moves and reads the row): the slot
    exists, no pause after a 429 runs, and it comes within the budget. None otherwise: ``reserve`` then
    decides under a row lock as before (nothing was reserved)."""
    table = connection.ops.quote_name(RateLimitSlot._meta.db_table)
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"  # SQLite's scalar max
    within_budget = f" AND {greatest}(%s, next_at) - %s <= %s" if budget is not None else ""
    params = [now, pace.interval, key, now] + ([now, now, budget] if budget is not None else [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_at = {greatest}(%s, next_at) + %s "
            f"WHERE {connection.ops.quote_name('key')} = %s AND paused_until <= %s{within_budget} RETURNING next_at",
            params)
        row = cursor.fetchone()
    if row is None:
        return None
    return max(row[0] - pace.interval - now, 0.0)


def acquire(key: str, pace: Pace, *, sleep=time.sleep) -> float:
    """Block until our reserved slot comes; returns how long we waited (``WaitTooLong`` inside a
    budget when the slot comes too late)."""
    left = budget_left()
    wait = reserve(key, pace, budget=None if left is None else max(left, 0.0))
    if wait > 0:
        sleep(wait)
    return wait


def pause(key: str, seconds: float, *, now: float | None = None) -> None:
    """The target said 429: nobody sends for ``key`` for ``seconds``."""
    now = time.time() if now is None else now
    with transaction.atomic():
        slot, _created = RateLimitSlot.objects.select_for_update().get_or_create(key=key)
        slot.paused_until = max(slot.paused_until, now + seconds)
        slot.next_at = max(slot.next_at, slot.paused_until)
        slot.save(update_fields=["paused_until", "next_at"])
