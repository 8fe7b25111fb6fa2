"""`manage.py supervise`: one worker node. Runs `qcluster`, beats for it, restarts it when it dies or freezes."""

import os
import socket

from django.conf import settings
from django.core.management.base import BaseCommand

from operations.supervisor import Supervisor, qcluster_command


class Command(BaseCommand):
    help = ("Run one worker node: django-q2's cluster (qcluster) under a supervisor that writes the node's "
            "heartbeat and restarts the cluster when it exits, loses a process or stops moving while work waits.")

    def add_arguments(self, parser):
        parser.add_argument("--node", default=os.environ.get("KONTERA_NODE") or f"{socket.gethostname()}-{os.getpid()}",
                            help="This node's name in the heartbeat (default: KONTERA_NODE, else host-pid).")
        parser.add_argument("--frozen-after", type=float, default=float(settings.KONTERA_FROZEN_AFTER_SECONDS),
                            help="Seconds without progress while tasks wait before a restart.")
        parser.add_argument("--beat", type=float, default=5.0, help="Seconds between heartbeats.")
        parser.add_argument("--stop-grace", type=float, default=float(settings.Q_CLUSTER.get("timeout", 300)) + 30,
                            help="On SIGTERM: seconds the cluster gets to finish its tasks before it is killed.")

    def handle(self, *args, **options):
        Supervisor(name=options["node"][:120], command=qcluster_command(),
                   workers=int(settings.Q_CLUSTER.get("workers", 1)), beat_seconds=options["beat"],
                   frozen_after=options["frozen_after"], shutdown_grace=options["stop_grace"]).run()
