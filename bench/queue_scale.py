"""Benchmark: queueing 5,000 and 50,000 journals across 10 companies at once (``vouchers_queue``).

    .venv/bin/python bench/queue_scale.py                                   # a new SQLite file
    .venv/bin/python bench/queue_scale.py --database-url postgres://postgres@127.0.0.1:5432/kontera_queue_bench
    .venv/bin/python bench/queue_scale.py --sizes 5000 --one-by-one 500     # and the single path, for comparison

What a bureau does after an import or from the admin's "send" action: every journal is locked, checked
against its company's account plan and moved — most into the queue, some refused by the pre-flight check
(each with a reason of its own), some waiting for a mapping, some already queued or posted (left alone).
Prints the wall-clock seconds, the CPU of this process, the SQL statements (per voucher) and the ratio to
the goal of 50,000 vouchers in 10 s (5,000 a second), and checks that every journal ended where it should,
with exactly one state event each in the audit trail. The dispatcher kick (one per system) is left out.
The database is created when missing; its vouchers, rows and audit events are removed first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import peak_mb  # noqa: E402 - after the path is set

GOAL_PER_SECOND = 50_000 / 10.0


def _setup(url: str) -> None:
    os.environ.update({"DATABASE_URL": url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING",
                       "KONTERA_NO_BOOTSTRAP": "1", "DJANGO_SETTINGS_MODULE": "config.settings"})
    if url.startswith("postgres"):
        import psycopg

        base, name = url.rsplit("/", 1)
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _companies(count: int) -> list:
    """``count`` Fortnox companies with an imported plan (the tests' small one) and a paused integration."""
    from bookkeeping.models import AuditEvent, Company, Voucher
    from integrations.models import Integration
    from tests.factories import fortnox_plan

    AuditEvent.objects.all().delete()
    Voucher.objects.all().delete()  # their rows go with them
    companies = []
    for n in range(count):
        company = Company.objects.filter(slug=f"queue-{n}").first()
        if company is None:
            company = Company.objects.create(slug=f"queue-{n}", name=f"Queue {n} AB", country="SE")
            fortnox_plan(company, year=dt.date.today().year)
            Integration.objects.create(company=company, system="fortnox", status="paused")
        companies.append(company)
    return companies


# Of every 100 journals: 94 go into the queue, 2 are refused (a reason of their own each), 2 wait for a
# mapping, 1 is already queued and 1 posted (both left alone).
def _kind(i: int) -> str:
    return {0: "unbalanced", 1: "unbalanced", 2: "unmapped", 3: "unmapped", 4: "queued", 5: "posted"}.get(i % 100, "ok")


def _journals(companies: list, count: int, prefix: str) -> tuple[int, int, dict[str, int]]:
    """``count`` journals spread over the companies, written in bulk as an import writes them; returns
    the id range and how many of each kind."""
    from bookkeeping.services.bulk import vouchers_insert

    today = dt.date.today()
    kinds: dict[str, int] = {}
    vouchers, rows = [], []
    for i in range(count):
        kind = _kind(i)
        kinds[kind] = kinds.get(kind, 0) + 1
        amount = f"{100 + i % 997}.00"
        credit = f"{100 + i % 997 - 1 - i % 89}.00" if kind == "unbalanced" else amount
        second = {"account": "3011", "credit": credit}
        if kind == "unmapped":
            second = {"account": "", "credit": credit, "awaits_mapping": True,
                      "source": {"unmapped": [["ledger_category", f"Kategori {i % 7}"]]}}
        vouchers.append({"company_id": companies[i % len(companies)].pk, "system": "fortnox", "kind": "journal",
                         "source_system": "ledger", "source_reference": f"{prefix}-{i}", "date": today,
                         "description": f"Verifikation {prefix}-{i}", "series": "A",
                         "state": {"queued": "queued", "posted": "posted"}.get(kind, "draft")})
        rows.append([{"account": "1930", "debit": amount, "credit": "0.00", "awaits_mapping": False, "source": {}},
                     {"debit": "0.00", "awaits_mapping": False, "source": {}, **second}])
    ids = vouchers_insert(vouchers=vouchers, rows=rows)
    return min(ids), max(ids), kinds


class Counted:
    """Statements sent through Django (an executemany counts once; its rows are counted apart) and
    COPYs (psycopg's own cursor, which Django does not see)."""

    def __init__(self):
        self.statements = self.many_rows = self.copies = 0

    def __call__(self, execute, sql, params, many, context):
        self.statements += 1
        if many:
            self.many_rows += len(params)
        return execute(sql, params, many, context)

    def __enter__(self):
        from django.db import connection

        from bookkeeping.services import bulk

        self._copy, self._wrapper = bulk._copy, connection.execute_wrapper(self)

        def copy(*args, **kwargs):
            self.copies += 1
            return self._copy(*args, **kwargs)

        bulk._copy = copy
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        from bookkeeping.services import bulk

        bulk._copy = self._copy
        return self._wrapper.__exit__(*exc)


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from the current size
    except OSError:
        pass


def _check(first: int, last: int, kinds: dict[str, int], result) -> list[str]:
    """Every journal where it should be, one state event for each one that moved, none twice."""
    from django.db.models import Count

    from bookkeeping.models import AuditEvent, Voucher

    vouchers = Voucher.objects.filter(pk__gte=first, pk__lte=last)
    states = dict(vouchers.values_list("state").annotate(n=Count("pk")).order_by())
    expected_states = {"queued": kinds.get("ok", 0) + kinds.get("queued", 0), "failed": kinds.get("unbalanced", 0),
                       "awaiting_mapping": kinds.get("unmapped", 0), "posted": kinds.get("posted", 0)}
    problems = []
    if states != {k: v for k, v in expected_states.items() if v}:
        problems.append(f"states {states} instead of {expected_states}")
    expected_result = (kinds.get("ok", 0), kinds.get("unbalanced", 0), kinds.get("unmapped", 0),
                       kinds.get("queued", 0) + kinds.get("posted", 0))
    got = (result.queued, result.failed, result.awaiting_mapping, result.skipped)
    if got != expected_result:
        problems.append(f"counted {got} instead of {expected_result}")
    events = AuditEvent.objects.filter(voucher_id__gte=first, voucher_id__lte=last, action__startswith="state:")
    moved = kinds.get("ok", 0) + kinds.get("unbalanced", 0) + kinds.get("unmapped", 0)
    if events.count() != moved:
        problems.append(f"{events.count()} state events for {moved} journals that moved")
    twice = events.values("voucher_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    if twice:
        problems.append(f"{twice} journals with more than one state event")
    return problems


def _bulk(companies, size: int) -> bool:
    from django.db import connection

    from bookkeeping.models import Voucher
    from bookkeeping.selectors.plans import forget_plan_snapshots
    from bookkeeping.services.vouchers import vouchers_queue

    started = time.perf_counter()
    first, last, kinds = _journals(companies, size, prefix=f"Q{size}")
    print(f"\n{size:,} journals for {len(companies)} companies written in {time.perf_counter() - started:.1f} s "
          f"({', '.join(f'{n:,} {kind}' for kind, n in sorted(kinds.items()))})", flush=True)
    forget_plan_snapshots()
    load = os.getloadavg()[0]
    _reset_peak()  # the peak of writing the journals is not the queue's
    rss = peak_mb()
    with Counted() as counted:
        started, cpu = time.perf_counter(), time.process_time()
        result = vouchers_queue(vouchers=Voucher.objects.filter(pk__gte=first, pk__lte=last), actor="bench",
                                kick=False)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    goal = size / GOAL_PER_SECOND
    print(f"queued at once  {seconds:6.2f} s  ({seconds / goal:.2f} of the goal's {goal:.0f} s: 50,000 in 10 s), "
          f"{size / seconds:,.0f} journals/s; CPU of this process {cpu:.2f} s; load average {load:.2f} "
          f"on {os.cpu_count()} cores ({connection.vendor})")
    statements = counted.statements + counted.copies
    print(f"statements      {statements:,} = {statements / size:.4f} per journal "
          f"({counted.copies} COPY, {counted.statements:,} through Django; executemany carried {counted.many_rows:,} "
          f"rows)")
    print(f"result          {result}; peak memory {peak_mb():.0f} MB ({peak_mb() - rss:+.0f} MB)")
    problems = _check(first, last, kinds, result)
    print("checks          " + ("every journal where it should be, one state event each" if not problems
                                 else "FAILED: " + "; ".join(problems)))
    return not problems


def _one_by_one(companies, size: int) -> None:
    """The single path (``voucher_queue`` per journal, as ``vouchers_queue`` was before), for comparison."""
    from bookkeeping.models import Voucher
    from bookkeeping.selectors.plans import forget_plan_snapshots
    from bookkeeping.services.vouchers import voucher_queue

    first, last, _kinds = _journals(companies, size, prefix=f"S{size}")
    forget_plan_snapshots()
    with Counted() as counted:
        started = time.perf_counter()
        for voucher in Voucher.objects.filter(pk__gte=first, pk__lte=last).order_by("pk").iterator():
            voucher_queue(voucher=voucher, actor="bench", kick=False)
        seconds = time.perf_counter() - started
    print(f"\none by one      {size:,} journals in {seconds:.2f} s = {seconds / size * 1000:.1f} ms and "
          f"{counted.statements / size:.1f} statements per journal (5,000 would take {seconds / size * 5000:.0f} s, "
          f"50,000 {seconds / size * 50000:.0f} s); load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="a PostgreSQL database (created when missing); a new SQLite file by default")
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--sizes", default="5000,50000", help="journals per run, comma-separated")
    parser.add_argument("--one-by-one", type=int, default=0, metavar="N",
                        help="also queue N journals one by one (the single path), for comparison")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='kontera-bench-')) / 'bench.sqlite3'}"
    _setup(url)
    companies = _companies(args.companies)
    ok = all([_bulk(companies, int(size)) for size in args.sizes.split(",")])
    if args.one_by_one:
        _one_by_one(companies, args.one_by_one)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
