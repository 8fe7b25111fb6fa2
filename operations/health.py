"""/health/ for load balancers and monitoring (django-health-check): database, cache, broker, the
workers' heartbeat, and how many connections need re-authorisation. 200 when healthy, 503 when not.

Public by design (a load balancer has no login), so it says nothing of a company, a node's host or a
secret to an anonymous caller; staff members signed in see the nodes by name.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging

from asgiref.sync import async_to_sync
from django.http import JsonResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views import View
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import HealthCheckException, ServiceUnavailable

from .heartbeat import cluster_liveness, stale_after

logger = logging.getLogger("kontera.health")


@dataclasses.dataclass
class Broker(HealthCheck):
    """django-q2's broker answers (Redis when REDIS_URL is set; the ORM broker is the database)."""

    def run(self) -> None:
        from django_q.brokers import get_broker

        try:
            broker = get_broker()
            broker.ping()
            broker.queue_size()
        except Exception as exc:
            raise ServiceUnavailable("broker unavailable") from exc


@dataclasses.dataclass
class Workers(HealthCheck):
    """The worker nodes beat, and the cluster moves while work is due (operations/heartbeat.py)."""

    detail: dict = dataclasses.field(default_factory=dict, repr=False)

    def run(self) -> None:
        liveness = cluster_liveness()
        now = timezone.now()
        age = int((now - liveness.last_beat).total_seconds()) if liveness.last_beat else None
        self.detail.update({"state": liveness.state, "alive_nodes": liveness.alive_nodes,
                            "dead_nodes": liveness.dead_nodes, "last_heartbeat_seconds_ago": age,
                            "tasks_waiting": liveness.tasks_waiting, "nodes": liveness.nodes})
        limit = int(stale_after().total_seconds())
        if liveness.state == "none":
            raise ServiceUnavailable("no worker heartbeat: is any worker node (manage.py supervise) running?")
        if liveness.state == "dead":
            raise ServiceUnavailable(f"worker heartbeat older than {limit} s: {liveness.dead_nodes} node(s) stopped beating")
        if liveness.state == "frozen":
            raise ServiceUnavailable(f"workers frozen: {liveness.tasks_waiting} task(s) waiting, "
                                     f"{liveness.overdue_schedules} schedule(s) overdue, nothing done for over {limit} s")


@dataclasses.dataclass
class Reauthorisation(HealthCheck):
    """How many connections wait for staff to authorise them again (a count, never a failure)."""

    count: int = dataclasses.field(default=0, repr=False)

    def run(self) -> None:
        from integrations.models import Integration, IntegrationStatus

        self.count = Integration.objects.filter(status=IntegrationStatus.NEEDS_REAUTHORISATION).count()


NAMES = {Database: "database", Cache: "cache", Broker: "broker", Workers: "workers",
         Reauthorisation: "integrations_needing_reauthorisation"}


def run_check(check: HealthCheck) -> str | None:
    """One check, in this thread (the database checks use the request's connection): None or its error."""
    try:
        if inspect.iscoroutinefunction(check.run):
            async_to_sync(check.run)()
        else:
            check.run()
    except HealthCheckException as exc:
        logger.warning("Health check %s failed: %s", type(check).__name__, exc)
        return str(exc)
    except Exception:
        logger.exception("Health check %s failed unexpectedly", type(check).__name__)
        return "unknown error"
    return None


class HealthView(View):
    """Every check in turn; JSON; 200 or 503. Staff members signed in also see the nodes by name."""

    checks = (Database, Cache, Broker, Workers, Reauthorisation)

    def get(self, request, *args, **kwargs):
        show_nodes = bool(request.user.is_authenticated and request.user.is_staff)
        body = {"status": "ok", "checks": {}}
        for check_class in self.checks:
            check = check_class()
            name = NAMES[check_class]
            error = run_check(check)
            body["checks"][name] = error or "OK"
            if error:
                body["status"] = "unhealthy"
            if isinstance(check, Reauthorisation):
                body[name] = check.count
            if isinstance(check, Workers):
                body["workers"] = self._workers(check.detail, show_nodes)
        response = JsonResponse(body, status=200 if body["status"] == "ok" else 503)
        add_never_cache_headers(response)
        return response

    @staticmethod
    def _workers(detail: dict, show_nodes: bool) -> dict:
        shown = {key: value for key, value in detail.items() if key != "nodes"}
        if show_nodes:
            shown["nodes"] = [{"name": node.name, "state": node.state, "workers": node.workers,
                               "last_heartbeat": node.beat_at.isoformat() if node.beat_at else None,
                               "progress": node.progress, "restarts": node.restarts, "note": node.note}
                              for node in detail.get("nodes", [])]
        return shown
