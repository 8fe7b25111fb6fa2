"""/health/ and the overview's worker line (issue 8 cause 3, issue 12 health): 200 when healthy, 503
with a stale heartbeat or a frozen cluster; nothing of a company for anonymous callers."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

from django.utils import timezone

from integrations.models import IntegrationStatus
from operations.heartbeat import cluster_liveness, heartbeat_beat
from operations.models import WorkerNode
from operations.supervisor import Supervisor, descendants
from tests.factories import IntegrationFactory


def _node(*, beat_ago: float = 1, progressed_ago: float = 1, name: str = "worker-1"):
    now = timezone.now()
    return WorkerNode.objects.create(name=name, host="host-1", workers=2, beat_at=now - dt.timedelta(seconds=beat_ago),
                                     progressed_at=now - dt.timedelta(seconds=progressed_ago), started_at=now)


def test_health_is_200_with_a_live_worker_and_names_no_company(client, company):
    company.name = "Hemliga Bolaget AB"
    company.save()
    IntegrationFactory(company=company, system="fortnox", status=IntegrationStatus.NEEDS_REAUTHORISATION)
    _node()
    response = client.get("/health/")
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    assert body["status"] == "ok" and set(body["checks"].values()) == {"OK"}
    assert body["integrations_needing_reauthorisation"] == 1
    assert "Hemliga" not in response.content.decode() and "worker-1" not in response.content.decode()
    assert "host-1" not in response.content.decode()


def test_health_is_503_with_a_stale_heartbeat(client, db):
    _node(beat_ago=90, progressed_ago=90)
    response = client.get("/health/")
    assert response.status_code == 503
    assert "heartbeat older than 60 s" in json.loads(response.content)["checks"]["workers"]


def test_health_is_503_without_any_worker(client, db):
    response = client.get("/health/")
    assert response.status_code == 503 and "no worker heartbeat" in json.loads(response.content)["checks"]["workers"]


def test_a_cluster_that_beats_but_does_nothing_while_tasks_wait_is_frozen(client, db):
    from django_q.brokers import get_broker

    _node(beat_ago=1, progressed_ago=300)
    assert cluster_liveness().state == "ok"  # idle: nothing waits
    get_broker().enqueue("a task nobody takes")
    assert cluster_liveness().state == "frozen"
    response = client.get("/health/")
    assert response.status_code == 503 and "frozen" in json.loads(response.content)["checks"]["workers"]
    WorkerNode.objects.update(progressed_at=timezone.now())
    assert cluster_liveness().state == "ok"


def test_staff_see_the_nodes_by_name(client, staff_user):
    _node()
    client.force_login(staff_user)
    body = json.loads(client.get("/health/").content)
    assert [node["name"] for node in body["workers"]["nodes"]] == ["worker-1"]


def test_the_overview_shows_the_heartbeat_red_when_stale(client, superuser):
    client.force_login(superuser)
    heartbeat_beat(name="worker-1", workers=2, pid=1, started_at=timezone.now())
    page = client.get("/admin/").content.decode()
    assert 'id="worker-heartbeat" class="worker-ok"' in page and "Background worker: last heartbeat" in page
    WorkerNode.objects.update(beat_at=timezone.now() - dt.timedelta(seconds=75))
    page = client.get("/admin/").content.decode()
    assert 'id="worker-heartbeat" class="errornote"' in page and "75 seconds ago" in page


def test_the_supervisor_sees_a_lost_process_and_an_exited_cluster(db):
    """A cluster that lost a process (django-q2 would start a replacement behind a held queue lock) or
    exited is restarted whole. Here the 'cluster' is a process with one child, as qcluster has several."""
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    supervisor = Supervisor(name="test-node", command=[sys.executable, "-c", code], workers=1)
    supervisor.start()
    try:
        deadline = time.monotonic() + 20
        while not descendants(supervisor.child.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert supervisor.trouble() is None
        (child,) = descendants(supervisor.child.pid)
        subprocess.run(["kill", "-9", str(child)], check=True)
        deadline = time.monotonic() + 20
        reason = None
        while reason is None and time.monotonic() < deadline:
            time.sleep(0.1)
            reason = supervisor.trouble()
        assert reason and f"died (pid {child})" in reason
        supervisor.child.kill()
        supervisor.child.wait()
        assert "exited" in supervisor.trouble()
    finally:
        supervisor.end(grace=1)


def test_the_supervisor_calls_a_cluster_frozen_when_tasks_wait_and_nothing_moves(db):
    from django_q.brokers import get_broker

    supervisor = Supervisor(name="test-node", command=[], workers=1, frozen_after=0)
    heartbeat_beat(name="test-node", workers=1, pid=1, started_at=timezone.now())
    assert supervisor.frozen() is None  # nothing waits
    get_broker().enqueue("a task nobody takes")
    supervisor._progress_seen = (0, time.monotonic() - 61)
    assert supervisor.frozen() is not None
    WorkerNode.objects.update(progress=5)
    assert supervisor.frozen() is None  # it moved
