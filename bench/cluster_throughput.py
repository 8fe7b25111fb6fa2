"""Benchmark: Fortnox throughput with one worker node and with two (issue 12, "Several worker nodes").

Each node is a separate `manage.py supervise` process (a django-q2 cluster of --workers workers under its
supervisor), all on one database, sending journals of --companies companies to the Fortnox sandbox over
real HTTP with its real rate limit (25 requests per 5 s per company, i.e. 5 vouchers/s per company).
A dispatcher holds one company at a time, so capacity is the workers of the nodes that are alive:
prints vouchers/s for each run, the ratio to the Fortnox limit (companies × 5/s), and two nodes'
throughput against one node's, plus double posts (must be 0).

    .venv/bin/python bench/cluster_throughput.py [--companies 10] [--journals 100] [--workers 2]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontera_bench .venv/bin/python bench/cluster_throughput.py
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
REDIRECT = "http://127.0.0.1/cb"


def run(*, nodes: int, args, sandbox, server) -> dict:
    from django.core.management import call_command
    from django.utils import timezone

    from bench.books import fortnox_company, journals
    from bookkeeping.models import Voucher, VoucherState
    from bookkeeping.services.vouchers import vouchers_queue

    call_command("flush", interactive=False, verbosity=0)
    sandbox.tenants.clear()
    today = timezone.localdate()
    for n in range(args.companies):
        company = fortnox_company(sandbox, tenant=4_000_000 + n, name=f"Nod {n} AB", slug=f"nod-{n}",
                                  org_number=f"556200-{n:04d}", client="bench", redirect=REDIRECT)
        journals(company, count=args.journals, prefix=f"T{n}", day=today, varied=False)
    total = args.companies * args.journals
    sandbox.log.clear()
    started = time.monotonic()
    processes = [subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "supervise", "--node", f"bench-{i}",
                                   "--stop-grace", "10"], env={**os.environ}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for i in range(nodes)]
    vouchers_queue(vouchers=list(Voucher.objects.all()), actor="bench")
    while Voucher.objects.filter(state=VoucherState.POSTED).count() < total and time.monotonic() - started < 1800:
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)
    ok_posts = [r for r in sandbox.log if r.method == "POST" and r.path.endswith("/3/vouchers") and r.status == 201]
    first, last = (min(r.at for r in ok_posts), max(r.at for r in ok_posts)) if ok_posts else (0, 0)
    refs: dict[str, int] = {}
    for tenant in sandbox.tenants.values():
        for voucher in tenant.vouchers:
            refs[voucher.comments] = refs.get(voucher.comments, 0) + 1
    return {"nodes": nodes, "posted": Voucher.objects.filter(state=VoucherState.POSTED).count(), "total": total,
            "rate": len(ok_posts) / (last - first) if last > first else 0.0, "elapsed": elapsed,
            "429": sum(1 for r in sandbox.log if r.status == 429),
            "doubles": sum(count - 1 for count in refs.values() if count > 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--journals", type=int, default=100, help="journals per company")
    parser.add_argument("--workers", type=int, default=2, help="workers per node")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kontera-cluster-bench-"))
    from cryptography.fernet import Fernet

    from integrations.sandboxes.base import ServerThread
    from integrations.sandboxes.fortnox import FortnoxSandbox

    sandbox = FortnoxSandbox()
    sandbox.register_client("bench", "bench-secret", [REDIRECT])
    server = ServerThread(sandbox).start()
    os.environ.update({
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}"),
        "SECRET_KEY": "bench", "KONTERA_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "FORTNOX_API_URL": f"{server.url}/3", "FORTNOX_OAUTH_URL": f"{server.url}/oauth-v1",
        "FORTNOX_CLIENT_ID": "bench", "FORTNOX_CLIENT_SECRET": "bench-secret", "FORTNOX_REDIRECT_URI": REDIRECT,
        "KONTERA_WORKERS": str(args.workers), "LOG_LEVEL": "WARNING", "KONTERA_NO_BOOTSTRAP": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_URL": os.environ.get("REDIS_URL", ""),
    })
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    limit = args.companies * 5.0
    print(f"database: {connection.vendor}; broker: {'redis' if os.environ['REDIS_URL'] else 'orm'}; "
          f"{args.companies} companies × {args.journals} journals; {args.workers} workers per node; "
          f"Fortnox limit {limit:.0f}/s ({args.companies} × 5/s)")
    results = []
    for nodes in (1, 2):
        result = run(nodes=nodes, args=args, sandbox=sandbox, server=server)
        results.append(result)
        print(f"{nodes} node{'s' if nodes > 1 else ' '}: {result['rate']:.1f} vouchers/s = "
              f"{100 * result['rate'] / limit:.1f} % of the limit; posted {result['posted']}/{result['total']} in "
              f"{result['elapsed']:.1f} s (incl. start-up); 429s {result['429']}; double posts {result['doubles']}")
    if results[0]["rate"]:
        print(f"two nodes / one node: {results[1]['rate'] / results[0]['rate']:.2f}×")
    server.stop()


if __name__ == "__main__":
    main()
