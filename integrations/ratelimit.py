"""Request pacing shared by every worker and process, coordinated through the database.

A generic cell-rate algorithm (GCRA): each remote tenant has one row holding the earliest time
the next request may leave. ``reserve`` moves that time forward by one interval under a row lock
and tells the caller how long to wait, so two workers pacing the same Fortnox company get
staggered slots instead of racing. After a 429 every worker pauses for the whole window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import transaction

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


def reserve(key: str, pace: Pace, *, now: float | None = None) -> float:
    """Reserve the next slot for ``key``; returns the seconds to wait before sending."""
    now = time.time() if now is None else now
    with transaction.atomic():
        slot, _created = RateLimitSlot.objects.select_for_update().get_or_create(key=key)
        send_at = max(now, slot.next_at, slot.paused_until)
        slot.next_at = send_at + pace.interval
        slot.save(update_fields=["next_at"])
    return max(send_at - now, 0.0)


def acquire(key: str, pace: Pace, *, sleep=time.sleep) -> float:
    """Block until our reserved slot comes; returns how long we waited."""
    wait = reserve(key, pace)
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
