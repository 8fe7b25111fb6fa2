"""Work-arounds for django-q2 1.11's cluster, applied when the app loads (``OperationsConfig.ready``).

The pusher takes every task the broker has and parks it in the cluster's internal queue, whatever
``queue_limit`` says. On several nodes that lets one busy node hoard the work while another idles,
and it hides a frozen cluster: the broker looks empty while the tasks sit locked (ORM broker: for
``retry`` seconds) in a queue no worker reads. The bounded pusher takes a task only while fewer than
``queue_limit`` wait inside the node, so the rest stays in the broker for any free node, and a frozen
cluster shows as tasks waiting that nobody takes (``operations.heartbeat.cluster_liveness``).
"""

from __future__ import annotations

import logging
from time import sleep

logger = logging.getLogger("kontera.operations")


def _backlog(task_queue) -> int:
    try:
        return task_queue.qsize()
    except NotImplementedError:  # macOS: sem_getvalue is missing; then the pusher stays unbounded
        return -1


def bounded(pusher):
    def bounded_pusher(task_queue, event, broker=None):
        from django_q.brokers import get_broker
        from django_q.conf import Conf

        broker = broker or get_broker()
        limit = max(int(Conf.QUEUE_LIMIT or 1), 1)
        dequeue = broker.dequeue

        def dequeue_when_room():
            while _backlog(task_queue) >= limit:
                if event.is_set():
                    return None
                sleep(0.1)
            return dequeue()

        broker.dequeue = dequeue_when_room
        return pusher(task_queue, event, broker)

    bounded_pusher.kontera_bounded = True
    return bounded_pusher


def install() -> None:
    from django_q import cluster

    if not getattr(cluster.pusher, "kontera_bounded", False):
        cluster.pusher = bounded(cluster.pusher)
