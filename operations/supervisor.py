"""The supervisor of one worker node: runs ``manage.py qcluster`` as its child, beats for it, and
restarts it whole when it died, lost a process, or froze (issue 8, cause 3).

Why whole: django-q2's workers wait for tasks inside ``multiprocessing.Queue.get()``, which holds the
queue's reader lock while it waits, and its monitor does the same on the result queue. A worker or
monitor killed with SIGKILL dies holding that lock; django-q2's Sentinel then starts a replacement
that waits for the lock forever, and so do all the other workers: the cluster is alive and frozen
(or runs tasks but never saves their results). Only new queues help, i.e. a new cluster. Tasks that
were running are safe to lose: dispatch leases expire in seconds and an interrupted send is looked
up before any new post (``bookkeeping.services.vouchers``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from .heartbeat import heartbeat_beat, heartbeat_restarted, heartbeat_sign_off, tasks_waiting

logger = logging.getLogger("kontera.supervisor")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc; elsewhere empty, and only death and freezing are seen)."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z":  # a zombie is already dead
            parents[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@dataclass
class Supervisor:
    name: str
    command: list[str]
    workers: int
    beat_seconds: float = 5.0
    frozen_after: float = 60.0
    sweep_seconds: float = 10.0
    stop_grace: float = 15.0  # a restart: a frozen cluster never finishes on its own
    shutdown_grace: float = 330.0  # SIGTERM to the node: running tasks may finish (the task timeout + margin)
    child: subprocess.Popen | None = None
    started_at: datetime | None = None
    known: set[int] = field(default_factory=set)
    stopping: bool = False
    restarts: int = 0
    _progress_seen: tuple[int, float] = (0, 0.0)

    # --- the child cluster ---------------------------------------------------------------------

    def start(self) -> None:
        env = {**os.environ, "KONTERA_NODE": self.name}
        # Its own process group, so that a restart can end every process of the old cluster.
        self.child = subprocess.Popen(self.command, env=env, start_new_session=True)
        self.started_at = timezone.now()
        self.known = set()
        self._progress_seen = (self._progress(), time.monotonic())
        logger.info("Node %s: started the cluster (pid %s)", self.name, self.child.pid)

    def end(self, *, grace: float) -> None:
        """SIGTERM to the cluster's main process (it stops its workers), SIGKILL to the group after ``grace``."""
        if self.child is None:
            return
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.child.pid, signal.SIGKILL)  # what a frozen cluster leaves behind
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            logger.error("Node %s: the old cluster (pid %s) did not end", self.name, self.child.pid)

    def restart(self, reason: str) -> None:
        logger.error("Node %s: restarting the cluster: %s", self.name, reason)
        self.end(grace=self.stop_grace)
        self.restarts += 1
        heartbeat_restarted(name=self.name, reason=reason)
        self.start()

    # --- what is wrong with it --------------------------------------------------------------------

    def _progress(self) -> int:
        from .models import WorkerNode

        return WorkerNode.objects.filter(name=self.name).values_list("progress", flat=True).first() or 0

    def trouble(self) -> str | None:
        """Why the cluster must be restarted, or None."""
        code = self.child.poll()
        if code is not None:
            return f"the cluster exited (code {code})"
        now_below = descendants(self.child.pid)
        lost = self.known - now_below
        self.known = now_below
        if lost:
            return f"a process of the cluster died (pid {', '.join(map(str, sorted(lost)))})"
        return None

    def frozen(self) -> str | None:
        """Tasks wait in the broker, and this node's progress counter has not moved for ``frozen_after``."""
        progress, since = self._progress(), time.monotonic()
        seen, seen_at = self._progress_seen
        if progress != seen or not tasks_waiting():
            self._progress_seen = (progress, since)
            return None
        if since - seen_at >= self.frozen_after:
            return f"frozen: tasks waiting and nothing done for {int(since - seen_at)} s"
        return None

    # --- the loop -------------------------------------------------------------------------------------

    def beat(self) -> None:
        heartbeat_beat(name=self.name, workers=self.workers, pid=self.child.pid, started_at=self.started_at)

    def sweep(self) -> None:
        """Recovery in seconds rather than at the next minute's schedule (cause 4)."""
        from bookkeeping.tasks import sweep

        sweep()

    def run(self, *, until=None) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.start()
        next_beat = next_sweep = 0.0
        try:
            while not self.stopping and (until is None or not until()):
                now = time.monotonic()
                try:
                    close_old_connections()
                    reason = self.trouble()
                    if reason is None and now >= next_beat:
                        self.beat()
                        reason = self.frozen()
                        next_beat = now + self.beat_seconds
                    if reason:
                        self.restart(reason)
                    elif now >= next_sweep:
                        self.sweep()
                        next_sweep = now + self.sweep_seconds
                except Exception:  # a lost database connection must not stop the supervision
                    logger.exception("Node %s: supervision step failed; trying again", self.name)
                    next_beat = now + self.beat_seconds
                time.sleep(1.0)
        finally:
            self.end(grace=self.shutdown_grace)
            try:
                heartbeat_sign_off(name=self.name)
            except Exception:
                logger.exception("Node %s: could not sign off", self.name)

    def _stop(self, signum, frame) -> None:
        self.stopping = True


def qcluster_command() -> list[str]:
    return [sys.executable, os.path.join(settings.BASE_DIR, "manage.py"), "qcluster"]
