"""One dispatcher per worker slot, queued or running: the tickets that keep it so.

Services queue vouchers and call ``kick_dispatch``; the dispatcher task itself lives in
``bookkeeping.tasks`` and is named here only by its import path, so services never import tasks.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django_q.tasks import async_task


def _slots() -> int:
    return max(int(settings.Q_CLUSTER.get("workers", 1)), 1)


def _ticket(slot: int) -> str:
    return f"kontera:dispatch:{slot}"


def kick_dispatch() -> int:
    """Make sure one dispatcher per worker slot is queued or running; returns how many were enqueued."""
    timeout = int(settings.Q_CLUSTER.get("timeout", 300))
    enqueued = 0
    slots = _slots()
    for slot in range(slots):
        if cache.add(_ticket(slot), 1, timeout=timeout + 30):
            async_task("bookkeeping.tasks.dispatch", slot, slots, task_name=f"dispatch-{slot}",
                       group="dispatch")
            enqueued += 1
    return enqueued
