"""A batch's pace slots reserved in one statement and taken by the thread that posts (issue 15).

The thread then paces without the database, so a worker's connections do not grow with its lanes. What must
hold: the slots are the pace's own (one interval apart, after every slot reserved before), a pause after a
429 is never skipped, and a slot taken late never lets two sends closer together than the pace allows.
"""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations import ratelimit
from integrations.models import RateLimitSlot

FORTNOX = ratelimit.Pace(limit=25, window=5.0)
KEY = "fortnox:test:1"


class _Sleeps:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def slot(db):
    return RateLimitSlot.objects.create(key=KEY, next_at=0.0)


def _next_at() -> float:
    return RateLimitSlot.objects.get(key=KEY).next_at


def test_a_batch_reserves_its_slots_one_interval_apart_in_one_statement(slot):
    with CaptureQueriesContext(connection) as queries:
        slots = ratelimit.reserve_ahead(KEY, FORTNOX, 10, now=1000.0)
    assert len(queries) == 1
    assert slots == pytest.approx([1000.0 + n * FORTNOX.interval for n in range(10)])
    assert _next_at() == pytest.approx(1000.0 + 10 * FORTNOX.interval)  # the next request comes after them
    later = ratelimit.reserve_ahead(KEY, FORTNOX, 2, now=1000.5)
    assert later[0] == pytest.approx(1000.0 + 10 * FORTNOX.interval)  # never inside slots reserved before
    assert ratelimit.reserve_ahead(KEY, FORTNOX, 1, lead=0.05, now=5000.0) == pytest.approx([5000.05])


def test_nothing_is_reserved_ahead_during_a_pause_after_a_429_or_past_the_budget(slot):
    ratelimit.pause(KEY, 5.0, now=1000.0)
    before = _next_at()
    assert ratelimit.reserve_ahead(KEY, FORTNOX, 10, now=1001.0) is None
    assert _next_at() == before  # nobody's pace moved
    assert ratelimit.reserve_ahead(KEY, FORTNOX, 10, now=1006.0, budget=1.0) is None  # 10 slots need ~1.9 s
    assert _next_at() == before
    assert ratelimit.reserve_ahead(KEY, FORTNOX, 10, now=1006.0, budget=2.0) is not None
    assert ratelimit.reserve_ahead("fortnox:new", FORTNOX, 3, now=1006.0) == pytest.approx(
        [1006.0 + n * FORTNOX.interval for n in range(3)])  # a key's first batch makes its row


def test_the_posting_thread_takes_its_reserved_slots_without_the_database(slot, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    slots = ratelimit.reserve_ahead(KEY, FORTNOX, 3)
    sleeps = _Sleeps()
    with CaptureQueriesContext(connection) as queries, ratelimit.reserved(KEY, slots):
        for at in slots:
            wait = ratelimit.acquire(KEY, FORTNOX, sleep=sleeps)
            clock[0] += wait + 0.01  # the post's own time
            assert clock[0] - 0.01 == pytest.approx(at)
    assert len(queries) == 0
    with CaptureQueriesContext(connection) as queries, ratelimit.reserved(KEY, slots[:0]):
        ratelimit.acquire(KEY, FORTNOX, sleep=sleeps)  # none reserved: the request reserves its own
    assert len(queries) == 1


def test_a_slot_taken_too_late_gives_up_the_rest_and_each_request_reserves_afresh(slot, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    slots = ratelimit.reserve_ahead(KEY, FORTNOX, 4)
    sleeps = _Sleeps()
    with ratelimit.reserved(KEY, slots):
        ratelimit.acquire(KEY, FORTNOX, sleep=sleeps)  # on time
        clock[0] = slots[1] + FORTNOX.slack / 2  # a little late: still taken, no wait
        assert ratelimit.acquire(KEY, FORTNOX, sleep=sleeps) == 0
        clock[0] = slots[2] + 0.5  # a slow answer: this slot and the last are given up
        with CaptureQueriesContext(connection) as queries:
            wait = ratelimit.acquire(KEY, FORTNOX, sleep=sleeps)
        assert len(queries) == 1 and wait == 0  # reserved afresh, after everything reserved so far
        with CaptureQueriesContext(connection) as queries:
            wait = ratelimit.acquire(KEY, FORTNOX, sleep=sleeps)
        assert len(queries) == 1 and wait == pytest.approx(FORTNOX.interval)


def test_a_429_drops_the_reserved_slots_so_the_pause_is_waited_for(slot, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    slots = ratelimit.reserve_ahead(KEY, FORTNOX, 5)
    with ratelimit.reserved(KEY, slots):
        ratelimit.acquire(KEY, FORTNOX, sleep=_Sleeps())
        ratelimit.pause(KEY, FORTNOX.window)
        assert ratelimit.acquire(KEY, FORTNOX, sleep=_Sleeps()) == pytest.approx(FORTNOX.window)


def test_sends_within_the_slack_of_their_slots_keep_every_window_below_the_limit():
    """The bound the slack is chosen for, checked on the worst case: every send as late as allowed, the window
    placed to catch the most of them."""
    interval, slack = FORTNOX.interval, FORTNOX.slack
    assert 0 < slack < interval
    slots = [n * interval for n in range(200)]
    for lateness in (0.0, slack * 0.999):
        for shift in (0.0, slack, 1.0):
            sends = [slot + (lateness if n % 2 else 0.0) for n, slot in enumerate(slots)]  # uneven lateness
            most = max(sum(1 for s in sends if start - 1e-9 <= s <= start + FORTNOX.window)
                       for start in [s - shift for s in sends])
            assert most <= FORTNOX.limit - 1
    assert math.floor(FORTNOX.window / interval) + 1 == FORTNOX.limit - 1
