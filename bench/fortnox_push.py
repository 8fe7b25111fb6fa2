"""Benchmark: 2,000 journals across 10 companies pushed to the Fortnox sandbox by the real worker.

Real rate limits (the sandbox refuses more than 25 requests per 5 s per company), the real
worker path (a django-q2 cluster with 2 workers running the dispatch tasks), real HTTP.
Prints vouchers per second against the theoretical limit (10 × 5/s), 429s received, CPU
milliseconds per voucher, and double posts (must be 0).

    .venv/bin/python bench/fortnox_push.py [--companies 10] [--journals 200] [--workers 2]
    .venv/bin/python bench/fortnox_push.py --database-url postgres://postgres@127.0.0.1:5432/kontera_bench
    (or DATABASE_URL=…; on PostgreSQL the database is flushed first)

SQL statements per voucher are counted in the worker processes around every dispatch run
(bench/qcluster_counted.py): everything a dispatcher does, leases included, over the vouchers it sent.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def postgres_cpu() -> float | None:
    """CPU seconds of this machine's PostgreSQL so far: its processes', and the ended backends' (counted in
    the postmaster's children's time). None where /proc does not tell (not Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, seen = 0.0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if name not in ("postgres", "postmaster"):
            continue
        seen = True
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        total += (utime + stime + cutime + cstime) / ticks
    return total if seen else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--journals", type=int, default=200, help="journals per company")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="a PostgreSQL database (flushed); a new SQLite file by default")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kontera-bench-"))
    from cryptography.fernet import Fernet

    from integrations.sandboxes.base import ServerThread
    from integrations.sandboxes.fortnox import FortnoxSandbox

    sandbox = FortnoxSandbox()
    sandbox.register_client("bench", "bench-secret", ["http://127.0.0.1/cb"])
    server = ServerThread(sandbox).start()
    env = {
        "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}",
        "SECRET_KEY": "bench", "KONTERA_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "FORTNOX_API_URL": f"{server.url}/3", "FORTNOX_OAUTH_URL": f"{server.url}/oauth-v1",
        "FORTNOX_CLIENT_ID": "bench", "FORTNOX_CLIENT_SECRET": "bench-secret",
        "FORTNOX_REDIRECT_URI": "http://127.0.0.1/cb", "KONTERA_WORKERS": str(args.workers),
        "LOG_LEVEL": "WARNING", "KONTERA_NO_BOOTSTRAP": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
        "KONTERA_BENCH_SQL_COUNTS": str(tmp / "sql-counts.txt"),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from bench.books import fortnox_company, journals
    from bookkeeping.models import Voucher, VoucherState
    from bookkeeping.services.vouchers import vouchers_queue
    from bookkeeping.tasks import kick_dispatch

    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    print(f"database: {connection.vendor}; sandbox: {server.url}; workers: {args.workers}")

    today = timezone.localdate()
    for n in range(args.companies):
        company = fortnox_company(sandbox, tenant=2_000_000 + n, name=f"Bench {n} AB", slug=f"bench-{n}",
                                  org_number=f"556000-{n:04d}", client="bench", redirect="http://127.0.0.1/cb")
        journals(company, count=args.journals, prefix=f"B{n}", day=today)
    total = args.companies * args.journals
    sandbox.log.clear()
    started = time.monotonic()
    # queueing enqueues the dispatchers (one per worker slot); the cluster then picks them up
    queued = vouchers_queue(vouchers=list(Voucher.objects.all()), actor="bench")
    print(f"{queued.queued} journals queued for {args.companies} companies (refused: {queued.failed}) "
          f"in {time.monotonic() - started:.1f} s")
    setup = resource.getrusage(resource.RUSAGE_SELF)  # the books and the queueing done
    setup_cpu = setup.ru_utime + setup.ru_stime
    database_cpu = postgres_cpu() if connection.vendor == "postgresql" else None
    cluster = subprocess.Popen([sys.executable, str(ROOT / "bench" / "qcluster_counted.py")], env={**os.environ},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kick_dispatch()
    while True:
        posted = Voucher.objects.filter(state=VoucherState.POSTED).count()
        open_ = Voucher.objects.filter(state__in=[VoucherState.QUEUED, VoucherState.SENDING]).count()
        if posted + (total - posted - open_) >= total or time.monotonic() - started > 3600:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    cluster.send_signal(signal.SIGTERM)
    cluster.wait(timeout=60)
    own = resource.getrusage(resource.RUSAGE_SELF)  # the sandbox serving every request, and this watcher
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime

    posts = [r for r in sandbox.log if r.method == "POST" and r.path.endswith("/3/vouchers")]
    ok_posts = [r for r in posts if r.status == 201]
    first, last = (min(r.at for r in ok_posts), max(r.at for r in ok_posts)) if ok_posts else (0, 0)
    refs: dict[str, int] = {}
    for tenant in sandbox.tenants.values():
        for voucher in tenant.vouchers:
            refs[voucher.comments] = refs.get(voucher.comments, 0) + 1
    doubles = sum(count - 1 for count in refs.values() if count > 1)
    limit = args.companies * 5.0
    rate = len(ok_posts) / (last - first) if last > first else 0.0
    print(f"posted:            {Voucher.objects.filter(state=VoucherState.POSTED).count()} / {total} "
          f"(failed {Voucher.objects.filter(state=VoucherState.FAILED).count()})")
    print(f"wall time:         {elapsed:.1f} s from queueing to the last voucher (incl. worker start-up)")
    print(f"throughput:        {rate:.1f} vouchers/s between the first and last post "
          f"= {100 * rate / limit:.1f} % of the theoretical {limit:.0f}/s ({args.companies} × 5/s)")
    print(f"overall:           {total / elapsed:.1f} vouchers/s including start-up = {100 * total / elapsed / limit:.1f} %")
    print(f"429s received:     {sum(1 for r in sandbox.log if r.status == 429)}")
    print(f"CPU per voucher:   {1000 * cpu / max(len(ok_posts), 1):.2f} ms (the whole cluster, its start-up included)")
    runs = [line.split() for line in Path(env["KONTERA_BENCH_SQL_COUNTS"]).read_text().splitlines()] \
        if Path(env["KONTERA_BENCH_SQL_COUNTS"]).exists() else []
    statements, sent = sum(int(r[0]) for r in runs), sum(int(r[1]) for r in runs)
    print(f"SQL per voucher:   {statements / max(sent, 1):.2f} statements ({statements} in {len(runs)} dispatch runs "
          f"that sent {sent}; limit 4 = {statements / max(sent, 1) / 4:.2f} of it)")
    dispatch_cpu = sum(float(r[2]) for r in runs if len(r) > 2)
    print(f"CPU in dispatch:   {1000 * dispatch_cpu / max(sent, 1):.2f} ms per voucher (the dispatchers and their "
          f"threads, start-up apart) = {1000 * dispatch_cpu / max(sent, 1) / 5:.2f} of the 5 ms per voucher")
    print(f"sandbox CPU:       {1000 * (own.ru_utime + own.ru_stime - setup_cpu) / max(len(ok_posts), 1):.2f} ms per "
          f"voucher (the Fortnox sandbox on this machine, and this benchmark watching; not Kontera's)")
    if database_cpu is not None and (after := postgres_cpu()) is not None:
        print(f"PostgreSQL CPU:    {1000 * (after - database_cpu) / max(len(ok_posts), 1):.2f} ms per voucher "
              f"(every PostgreSQL process of this machine over the run)")
    print(f"double posts:      {doubles}")
    server.stop()


if __name__ == "__main__":
    main()
