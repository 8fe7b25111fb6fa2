"""Reproduction (issue 8, cause 3): SIGKILL one idle worker of a running django-q2 cluster, then see
whether tasks still run. Bare `qcluster` freezes when the killed worker was the one waiting inside
`multiprocessing.Queue.get()` (it holds the queue's reader lock there); under `manage.py supervise`
the cluster is restarted whole and the tasks run.

    .venv/bin/python bench/cluster_freeze.py [--mode qcluster|supervise] [--trials 4] [--workers 4]
    DATABASE_URL=postgres://… or REDIS_URL=redis://127.0.0.1:6379/4 for the other brokers

Prints per trial how many of 5 tasks completed within the wait, and the total of frozen trials.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def children(pid: int) -> list[int]:
    from operations.supervisor import descendants

    return sorted(p for p in descendants(pid) if _parent(p) == pid)


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def worker_pids(root: int, *, supervised: bool, workers: int) -> list[int]:
    """qcluster's main process → the Sentinel → workers (spawned first), monitor, pusher."""
    main = children(root)[0] if supervised and children(root) else root
    sentinel = children(main)
    return children(sentinel[0])[:workers] if sentinel else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("qcluster", "supervise"), default="qcluster")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--wait", type=float, default=90.0, help="seconds to wait for the 5 tasks")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kontera-freeze-"))
    os.environ.update({"DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp / 'freeze.sqlite3'}"),
                       "SECRET_KEY": "freeze", "KONTERA_WORKERS": str(args.workers), "LOG_LEVEL": "WARNING",
                       "KONTERA_NO_BOOTSTRAP": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
                       "KONTERA_FROZEN_AFTER_SECONDS": "20"})
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_q.models import OrmQ, Success
    from django_q.tasks import async_task

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}; broker: {'redis' if os.environ.get('REDIS_URL') else 'orm'}; "
          f"mode: {args.mode}; {args.workers} workers")
    frozen = 0
    for trial in range(args.trials):
        Success.objects.all().delete()
        OrmQ.objects.all().delete()
        command = [sys.executable, str(ROOT / "manage.py"), args.mode]
        if args.mode == "supervise":
            command += ["--node", "freeze", "--stop-grace", "5"]
        cluster = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        workers = []
        while len(workers) < args.workers and time.monotonic() < deadline:  # started, idle
            time.sleep(1)
            workers = worker_pids(cluster.pid, supervised=args.mode == "supervise", workers=args.workers)
        time.sleep(3)
        victim = workers[trial % len(workers)] if workers else None
        if victim:
            os.kill(victim, signal.SIGKILL)
        time.sleep(2)
        for n in range(5):
            async_task("math.floor", n + 0.5, task_name=f"freeze-{trial}-{n}")
        deadline = time.monotonic() + args.wait
        mine = Success.objects.filter(name__startswith=f"freeze-{trial}-")
        while mine.count() < 5 and time.monotonic() < deadline:
            time.sleep(0.5)
        done = mine.count()
        frozen += done < 5
        print(f"trial {trial + 1}: killed worker {victim} of {len(workers)}; {done}/5 tasks done "
              f"within {args.wait:.0f} s{'  <- frozen' if done < 5 else ''}")
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=20)
        except subprocess.TimeoutExpired:
            from operations.supervisor import descendants

            for pid in [cluster.pid, *descendants(cluster.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            cluster.wait()
    print(f"frozen: {frozen} of {args.trials} trials")


if __name__ == "__main__":
    main()
