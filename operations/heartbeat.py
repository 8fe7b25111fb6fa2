"""The workers' heartbeat and the liveness check that reads it (issue 8, cause 3).

Each node's supervisor (``manage.py supervise``) beats every few seconds; the cluster's workers add to
the node's progress counter when they start a task or send a voucher. Read back, that tells three
things apart: a node that stopped beating (dead), a cluster that beats but does nothing while work is
due (frozen: django-q2's queues can stay locked by a process killed with SIGKILL), and a healthy one.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from .models import WorkerNode

logger = logging.getLogger("kontera.operations")

PROGRESS_WRITE_EVERY = 2.0  # seconds: the counter is for liveness, not accounting; spare a write per task


def stale_after() -> timedelta:
    return timedelta(seconds=settings.KONTERA_HEARTBEAT_STALE_SECONDS)


def node_name() -> str:
    """This process's node: KONTERA_NODE (the supervisor sets it for its cluster), else the host name."""
    return os.environ.get("KONTERA_NODE") or socket.gethostname()


def heartbeat_beat(*, name: str, workers: int, pid: int, started_at: datetime) -> None:
    now = timezone.now()
    values = {"host": socket.gethostname()[:120], "pid": pid, "workers": workers, "started_at": started_at,
              "beat_at": now}
    if not WorkerNode.objects.filter(name=name).update(**values):
        try:
            with transaction.atomic():
                WorkerNode.objects.create(name=name, progressed_at=now, **values)
        except IntegrityError:  # created by this node's workers meanwhile
            WorkerNode.objects.filter(name=name).update(**values)


def heartbeat_sign_off(*, name: str) -> None:
    """A node stopped on purpose is forgotten (only a node that vanished without a word is dead)."""
    WorkerNode.objects.filter(name=name).delete()


def heartbeat_restarted(*, name: str, reason: str) -> None:
    WorkerNode.objects.filter(name=name).update(restarts=F("restarts") + 1, note=reason[:200])


_pending = {"count": 0, "written": 0.0}


def heartbeat_progress(n: int = 1) -> None:
    """A worker of this node did something (started a task, sent a voucher). Written at most every
    PROGRESS_WRITE_EVERY seconds per process; never raises (liveness must not break the work)."""
    _pending["count"] += n
    if time.monotonic() - _pending["written"] < PROGRESS_WRITE_EVERY:
        return
    count, _pending["count"], _pending["written"] = _pending["count"], 0, time.monotonic()
    now = timezone.now()
    try:
        name = node_name()
        if not WorkerNode.objects.filter(name=name).update(progress=F("progress") + count, progressed_at=now):
            with transaction.atomic():
                WorkerNode.objects.get_or_create(name=name, defaults={"progress": count, "progressed_at": now,
                                                                      "beat_at": now})
    except Exception:  # a locked SQLite file, a lost connection: the next task writes again
        logger.warning("Could not record the worker's progress", exc_info=True)


def tasks_waiting() -> int:
    """Tasks in the broker that no cluster has taken yet (ORM: not locked; Redis: the list's length)."""
    from django_q.brokers import get_broker

    return int(get_broker().queue_size() or 0)


def schedules_overdue(*, before: datetime) -> int:
    """Scheduled jobs that should have run long ago: the scheduler (django-q2's guard loop) is stuck."""
    from django_q.models import Schedule

    return Schedule.objects.filter(next_run__lt=before).count()


@dataclass
class NodeState:
    name: str
    host: str
    workers: int
    beat_at: datetime | None
    progressed_at: datetime | None
    progress: int
    restarts: int
    note: str
    state: str  # alive | dead


@dataclass
class Liveness:
    state: str  # ok | dead | frozen | none
    last_beat: datetime | None = None
    last_progress: datetime | None = None
    tasks_waiting: int = 0
    overdue_schedules: int = 0
    nodes: list[NodeState] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    @property
    def alive_nodes(self) -> int:
        return sum(node.state == "alive" for node in self.nodes)

    @property
    def dead_nodes(self) -> int:
        return sum(node.state == "dead" for node in self.nodes)


def cluster_liveness(*, now: datetime | None = None) -> Liveness:
    """ok: every node seen lately beats, and something moved lately if work is due.
    dead: no node beats, or one stopped beating without signing off (within the forget window).
    frozen: nodes beat, but nothing moved for longer than the stale limit while tasks wait or
    schedules are overdue."""
    now = now or timezone.now()
    stale = now - stale_after()
    forget = now - timedelta(minutes=settings.KONTERA_HEARTBEAT_FORGET_MINUTES)
    nodes = []
    for node in WorkerNode.objects.filter(beat_at__gte=forget):
        nodes.append(NodeState(node.name, node.host, node.workers, node.beat_at, node.progressed_at, node.progress,
                               node.restarts, node.note, "alive" if node.beat_at >= stale else "dead"))
    beats = WorkerNode.objects.aggregate(beat=Max("beat_at"), progress=Max("progressed_at"))
    liveness = Liveness(state="ok", last_beat=beats["beat"], last_progress=beats["progress"], nodes=nodes)
    if not nodes:
        liveness.state = "none"
        return liveness
    if liveness.dead_nodes or not liveness.alive_nodes:
        liveness.state = "dead"
        return liveness
    liveness.tasks_waiting = tasks_waiting()
    liveness.overdue_schedules = schedules_overdue(before=stale)
    moved = liveness.last_progress is not None and liveness.last_progress >= stale
    if (liveness.tasks_waiting or liveness.overdue_schedules) and not moved:
        liveness.state = "frozen"
    return liveness
