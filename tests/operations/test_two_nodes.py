"""Two worker nodes on one PostgreSQL (issue 12 "Several worker nodes", issue 8 causes 3–4): two separate
`manage.py supervise` processes (each a django-q2 cluster of 2 workers under its supervisor) send for
several companies to the Fortnox sandbox over real HTTP; one node is killed with SIGKILL, cluster and
supervisor, mid-run. Every voucher ends posted exactly once and none is stuck, within a generous wait
(a bound, not a speed assertion: the time is the test's, the figures are bench/cluster_throughput.py's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from operations.supervisor import descendants

from .processes import ON_POSTGRES, ROOT, base_env, fresh_database, manage

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (run with DATABASE_URL=postgres://…)")

COMPANIES, JOURNALS = 4, 40
REDIRECT = "http://127.0.0.1/cb"

SETUP = """
from django.utils import timezone
from bookkeeping.models import Company, Voucher, VoucherRow
from bookkeeping.services.plans import chart_import
from bookkeeping.services.voucher_totals import vouchers_totals_refresh
from bookkeeping.services.vouchers import vouchers_queue
from integrations import tokens
from integrations.models import Integration

today = timezone.localdate()
for n, code in enumerate(CODES):
    company = Company.objects.create(name=f"Nod {n} AB", slug=f"nod-{n}", country="SE")
    integration = Integration.objects.create(company=company, system="fortnox", status="active")
    tokens.fortnox_exchange_code(integration=integration, code=code)
    integration.refresh_from_db()
    chart_import(integration=integration, actor="test")
    vouchers = Voucher.objects.bulk_create([
        Voucher(company=company, system="fortnox", kind="journal", source_system="ledger",
                source_reference=f"N{n}-{j}", date=today, description=f"N{n}-{j}", series="A")
        for j in range(JOURNALS)])
    VoucherRow.objects.bulk_create([VoucherRow(voucher=v, position=p, account=a, debit=d, credit=c)
        for v in vouchers for p, (a, d, c) in enumerate([(1930, 100, 0), (1510, 0, 100)])])
    vouchers_totals_refresh(voucher_ids=[v.pk for v in vouchers])
print(vouchers_queue(vouchers=list(Voucher.objects.all()), actor="test").queued)
"""


def _states(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM bookkeeping_voucher GROUP BY state").fetchall())


def _kill_node(node: subprocess.Popen) -> None:
    """SIGKILL to the supervisor and every process of its cluster at once: a node that vanishes."""
    for pid in [node.pid, *descendants(node.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.wait(timeout=10)


def test_two_nodes_post_every_voucher_once_when_one_is_killed(tmp_path, sandbox_server):
    from integrations.sandboxes.fortnox import FortnoxSandbox
    from integrations.tokens import FORTNOX_SCOPES

    sandbox = FortnoxSandbox()
    sandbox.register_client("two-nodes", "two-nodes-secret", [REDIRECT])
    sandbox_server.board.apps["/fortnox-two-nodes"] = sandbox
    codes = []
    for n in range(COMPANIES):
        sandbox.add_tenant(3_000_000 + n, f"Nod {n} AB", f"556100-{n:04d}")
        codes.append(sandbox.authorize("two-nodes", 3_000_000 + n, FORTNOX_SCOPES, REDIRECT))
    base = f"{sandbox_server.url}/fortnox-two-nodes"
    nodes: list[subprocess.Popen] = []
    try:
        with fresh_database("postgres", tmp_path) as url:
            env = base_env(DATABASE_URL=url, FORTNOX_API_URL=f"{base}/3", FORTNOX_OAUTH_URL=f"{base}/oauth-v1",
                           FORTNOX_CLIENT_ID="two-nodes", FORTNOX_CLIENT_SECRET="two-nodes-secret",
                           FORTNOX_REDIRECT_URI=REDIRECT, KONTERA_WORKERS="2", LOG_LEVEL="WARNING",
                           KONTERA_DISPATCH_LEASE_SECONDS="6")
            assert manage("migrate", "--noinput", env=env).returncode == 0
            setup = manage("shell", "-c", f"CODES = {codes!r}; JOURNALS = {JOURNALS}\n" + SETUP, env=env, timeout=300)
            assert setup.returncode == 0, setup.stderr[-3000:]
            total = COMPANIES * JOURNALS
            assert setup.stdout.strip().splitlines()[-1] == str(total)
            for name in ("node-a", "node-b"):
                nodes.append(subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "supervise", "--node", name,
                                               "--stop-grace", "10"], env=env, cwd=ROOT,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 300
            while _states(url).get("posted", 0) < total // 4 and time.monotonic() < deadline:
                time.sleep(0.2)
            posted_at_kill = _states(url).get("posted", 0)
            assert total // 4 <= posted_at_kill < total, "the kill must fall mid-run"
            _kill_node(nodes[0])
            while time.monotonic() < deadline:
                states = _states(url)
                if states.get("posted", 0) == total:
                    break
                time.sleep(0.5)
            states = _states(url)
            assert states == {"posted": total}, states  # none stuck in sending or queued, none failed
            posted = [voucher.comments for tenant in sandbox.tenants.values() for voucher in tenant.vouchers]
            doubles = {ref for ref in posted if posted.count(ref) > 1}  # each carries its voucher's reference tag
            assert not doubles, f"posted twice: {sorted(doubles)}"
            assert len(posted) == total
    finally:
        for node in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
                try:
                    node.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    _kill_node(node)
        sandbox_server.board.apps.pop("/fortnox-two-nodes", None)
