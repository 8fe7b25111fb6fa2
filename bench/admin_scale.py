"""Benchmark: the admin's big lists at issue 15's size, each page against its limit.

    .venv/bin/python bench/admin_scale.py                      # builds the data once, then measures
    .venv/bin/python bench/admin_scale.py --rebuild            # the data again from nothing
    .venv/bin/python bench/admin_scale.py --vouchers 100000 --events 300000 --requests 3   # a quick look

PostgreSQL only (the trigram indexes and the estimated counts are PostgreSQL's): ``--database-url``,
default ``postgres://postgres@127.0.0.1:5432/kontera_admin_scale`` (created when missing). It builds
1,000 companies, 1,000,000 vouchers with 3 rows each and 3,000,000 audit events with
``INSERT … SELECT generate_series`` (indexes dropped during the load and built after it, as a restore
does), then asks the voucher list and the audit-trail list through Django's test client, logged in as
the superuser and as a staff member (Bookkeeper) of 3 companies, without and with each filter, sorted by
each column that is not the default, and searched by reference, number in the target and word. For each
page it prints the median (p50) of ``--requests`` requests after one warm-up, the SQL statements of one
request, and the ratio to the limit (300 ms; 1 s for a word search). The exit status is 1 when a page
is over its limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/kontera_admin_scale"
LIST_LIMIT, WORD_LIMIT = 0.300, 1.0
WORDS = ["hyra", "el", "värme", "vatten", "städning", "snöröjning", "försäkring", "parkering", "förråd", "bredband",
         "sophämtning", "reparation", "målning", "hiss", "ventilation", "trädgård", "fönster", "tak", "fasad", "lås"]


def _setup(url: str) -> None:
    os.environ.update({"DATABASE_URL": url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING",
                       "KONTERA_NO_BOOTSTRAP": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
                       "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost"})
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # As the tests do: the pages name their static files without a collectstatic manifest.
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    call_command("migrate", verbosity=0)


def _literal_defaults(model, given: set[str]) -> tuple[list[str], list]:
    """Columns not in ``given`` with their defaults, as %s parameters (JSON as text)."""
    import json

    from django.db import models

    columns, params = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.column in given:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue  # given as now() by the caller
        default = field.get_default()
        if isinstance(field, models.JSONField):
            default = json.dumps(default)
        columns.append(field.column)
        params.append(default)
    return columns, params


def _timed(label: str, sql: str, params=()) -> None:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    print(f"  {label}: {time.monotonic() - started:.1f} s", flush=True)


def _build(*, vouchers: int, events: int, companies: int) -> None:
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction

    from bookkeeping.migrations_support import BOOKKEEPER
    from bookkeeping.models import AuditEvent, Company, Voucher, VoucherRow

    print(f"Building {companies} companies, {vouchers:,} vouchers × 3 rows, {events:,} audit events …", flush=True)
    started = time.monotonic()
    tables = [Voucher._meta.db_table, VoucherRow._meta.db_table, AuditEvent._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    Company.objects.filter(slug__startswith="scale-").delete()
    User.objects.filter(username__in=["scale-admin", "scale-staff"]).delete()
    made = Company.objects.bulk_create([Company(slug=f"scale-{i:04d}", name=f"Förvaltning {i:04d} AB", country="SE")
                                        for i in range(companies)])
    ids = [c.pk for c in made]
    User.objects.create_superuser("scale-admin", "admin@example.com", "scale")
    staff = User.objects.create_user("scale-staff", "staff@example.com", "scale", is_staff=True)
    staff.groups.add(Group.objects.get(name=BOOKKEEPER))
    for company in made[:3]:
        company.members.add(staff)

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        # Indexes are built after the load (as a restore does); foreign keys are not checked row by row.
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT IN "
                       "(SELECT conname FROM pg_constraint)", [tables])
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL session_replication_role = replica")

        words = "(ARRAY[" + ", ".join(f"'{w}'" for w in WORDS) + "])"
        given = {
            "company_id": f"(%s::bigint[])[1 + (g %% {companies})]",
            "system": "CASE WHEN g %% 5 = 0 THEN 'dinero' ELSE 'fortnox' END",
            "kind": "(ARRAY['journal', 'journal', 'supplier_invoice', 'receipt', 'sale'])[1 + g %% 5]",
            "source_system": "(ARRAY['ledger', 'sie', 'expenses', 'expenses', 'netseasy'])[1 + g %% 5]",
            "source_reference": "'A' || g",
            "date": "DATE '2020-01-01' + (g %% 2190)",
            "description": f"'Journal ' || g || ' ' || {words}[1 + (g / 7) %% 20] || ' ' || substr(md5(g::text), 1, 8)",
            "series": "'A'",
            "state": "CASE WHEN g %% 100 < 80 THEN 'posted' WHEN g %% 100 < 88 THEN 'draft' WHEN g %% 100 < 94 "
                     "THEN 'failed' WHEN g %% 100 < 97 THEN 'queued' ELSE 'awaiting_authorisation' END",
            "preflight_ok": "g %% 100 NOT BETWEEN 91 AND 93",
            "last_error": "CASE WHEN g %% 100 BETWEEN 88 AND 93 THEN 'Fortnox refused the voucher: account 3011 "
                          "is not active' ELSE '' END",
            "remote_series": "CASE WHEN g %% 100 < 80 THEN 'A' ELSE '' END",
            "remote_number": "CASE WHEN g %% 100 < 80 THEN g::text ELSE '' END",
            "queued_at": "CASE WHEN g %% 100 BETWEEN 94 AND 96 THEN now() - interval '2 hours' END",
            "debit_total": "((g::bigint * 7919) %% 100000) / 100.0 + 1",
            "credit_total": "((g::bigint * 7919) %% 100000) / 100.0 + 1",
            "created_at": "now()", "updated_at": "now()",
        }
        columns, defaults = _literal_defaults(Voucher, set(given))
        t = time.monotonic()
        cursor.execute(
            f"INSERT INTO {Voucher._meta.db_table} ({', '.join([*given, *columns])}) "
            f"SELECT {', '.join([*given.values(), *['%s'] * len(columns)])} FROM generate_series(1, %s) g",
            [ids, *defaults, vouchers])
        print(f"  vouchers: {time.monotonic() - t:.1f} s", flush=True)
        # Three rows per voucher: the debit, and the credit split in two (so the stored totals hold).
        row_given = {
            "voucher_id": "v.id", "position": "p",
            "account": "(ARRAY['1930', '3011', '2610'])[p + 1]",
            "debit": "CASE WHEN p = 0 THEN v.debit_total ELSE 0 END",
            "credit": "CASE WHEN p = 1 THEN round(v.debit_total / 2, 2) WHEN p = 2 THEN v.debit_total - "
                      "round(v.debit_total / 2, 2) ELSE 0 END",
            "text": "v.description",
        }
        row_columns, row_defaults = _literal_defaults(VoucherRow, set(row_given))
        t = time.monotonic()
        cursor.execute(
            f"INSERT INTO {VoucherRow._meta.db_table} ({', '.join([*row_given, *row_columns])}) "
            f"SELECT {', '.join([*row_given.values(), *['%s'] * len(row_columns)])} "
            f"FROM {Voucher._meta.db_table} v CROSS JOIN generate_series(0, 2) p", row_defaults)
        print(f"  voucher rows: {time.monotonic() - t:.1f} s", flush=True)
        cursor.execute(f"SELECT min(id), max(id) FROM {Voucher._meta.db_table}")
        first, last = cursor.fetchone()
        event_given = {
            "created_at": "now() - g * interval '20 seconds'",
            "company_id": f"(%s::bigint[])[1 + (g %% {companies})]",
            "voucher_id": f"{first} + (g %% {last - first + 1})",
            "action": "(ARRAY['state:queued->sending', 'state:sending->posted', 'state:draft->queued', "
                      "'state:sending->failed', 'journals:import', 'remote:lookup'])[1 + g %% 6]",
            "outcome": "(ARRAY['info', 'ok', 'info', 'error', 'ok', 'info'])[1 + g %% 6]",
            "actor_label": "(ARRAY['worker', 'worker', 'anna', 'worker', 'anna', 'lars', 'eva'])[1 + g %% 7]",
            "message": f"'Posted to Fortnox: A ' || g || ' ' || {words}[1 + (g / 11) %% 20] || ' ' || "
                       "substr(md5((g + 7)::text), 1, 8)",
        }
        event_columns, event_defaults = _literal_defaults(AuditEvent, set(event_given))
        t = time.monotonic()
        cursor.execute(
            f"INSERT INTO {AuditEvent._meta.db_table} ({', '.join([*event_given, *event_columns])}) "
            f"SELECT {', '.join([*event_given.values(), *['%s'] * len(event_columns)])} FROM generate_series(1, %s) g",
            [ids, *event_defaults, events])
        # A rare kind of event: workflow rules (the "what" filter's smallest group).
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET action = 'workflow_rule:created' WHERE id % 9973 = 0")
        print(f"  audit events: {time.monotonic() - t:.1f} s", flush=True)
        cursor.execute("SET LOCAL session_replication_role = origin")
        t = time.monotonic()
        for _name, definition in indexes:
            cursor.execute(definition)
        print(f"  {len(indexes)} indexes: {time.monotonic() - t:.1f} s", flush=True)
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"Built in {time.monotonic() - started:.0f} s.", flush=True)


def _pages(company_id: int, *, reference: str, remote_number: str, rare_word: str) -> list[tuple[str, str, float]]:
    v, a = "/admin/bookkeeping/voucher/", "/admin/bookkeeping/auditevent/"
    return [
        ("vouchers", v, LIST_LIMIT),
        ("vouchers, company", f"{v}?company__id__exact={company_id}", LIST_LIMIT),
        ("vouchers, company + failed", f"{v}?company__id__exact={company_id}&state__exact=failed", LIST_LIMIT),
        ("vouchers, state failed", f"{v}?state__exact=failed", LIST_LIMIT),
        ("vouchers, kind receipt", f"{v}?kind__exact=receipt", LIST_LIMIT),
        ("vouchers, system Dinero", f"{v}?system__exact=dinero", LIST_LIMIT),
        ("vouchers, source SIE", f"{v}?source_system__exact=sie", LIST_LIMIT),
        ("vouchers, attention: failed", f"{v}?attention=failed", LIST_LIMIT),
        ("vouchers, attention: pre-flight", f"{v}?attention=preflight", LIST_LIMIT),
        ("vouchers, attention: queued too long", f"{v}?attention=stuck", LIST_LIMIT),
        ("vouchers, period (a month)", f"{v}?date__range__gte=2022-03-01&date__range__lte=2022-03-31", LIST_LIMIT),
        ("vouchers, sorted by total", f"{v}?o=-5", LIST_LIMIT),
        ("vouchers, sorted by reference", f"{v}?o=3", LIST_LIMIT),
        ("vouchers, sorted by description", f"{v}?o=4", LIST_LIMIT),
        ("vouchers, sorted by company", f"{v}?o=2", LIST_LIMIT),
        ("vouchers, sorted by state", f"{v}?o=6", LIST_LIMIT),
        ("vouchers, search reference", f"{v}?q={reference}", LIST_LIMIT),
        ("vouchers, search number in target", f"{v}?q={remote_number}", LIST_LIMIT),
        ("vouchers, search word (5 %)", f"{v}?q=snöröjning", WORD_LIMIT),
        ("vouchers, search word (1 voucher)", f"{v}?q={rare_word}", WORD_LIMIT),
        ("audit trail", a, LIST_LIMIT),
        ("audit trail, company", f"{a}?company__id__exact={company_id}", LIST_LIMIT),
        ("audit trail, what: posted", f"{a}?what=posted", LIST_LIMIT),
        ("audit trail, what: workflow rules", f"{a}?what=rules", LIST_LIMIT),
        ("audit trail, what: connections", f"{a}?what=connections", LIST_LIMIT),
        ("audit trail, outcome error", f"{a}?outcome__exact=error", LIST_LIMIT),
        ("audit trail, period (a day)", f"{a}?created_at__range__gte={_days_ago(10)}&created_at__range__lte="
                                        f"{_days_ago(10)}", LIST_LIMIT),
        ("audit trail, search who", f"{a}?q=anna", LIST_LIMIT),
        ("audit trail, search word (5 %)", f"{a}?q=hiss", WORD_LIMIT),
        ("audit trail, search word (1 event)", f"{a}?q={rare_word}", WORD_LIMIT),
    ]


def _days_ago(days: int) -> str:
    import datetime as dt

    return (dt.date.today() - dt.timedelta(days=days)).isoformat()


def _count_shown(html: str) -> str:
    """What the page says under the list ("about 1000000 vouchers", "42 audit events")."""
    import re

    found = re.search(r'<p class="paginator">(.*?)</p>', html, re.S)
    text = re.sub(r"<[^>]+>", " ", found.group(1)) if found else ""
    words = re.findall(r"(?:about )?\d+ [^\d]+$", " ".join(text.split()))
    return words[0].replace("Show all", "").strip() if words else "?"


def _measure(client, url: str, requests: int) -> tuple[float, int, int, str]:
    from django.db import connection

    response = client.get(url)  # warm-up (and the page must answer)
    queries = []

    def counted(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):
        client.get(url)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    return statistics.median(times), len(queries), response.status_code, _count_shown(response.content.decode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--vouchers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5, help="requests per page (after one warm-up)")
    parser.add_argument("--rebuild", action="store_true", help="build the data again even when it is there")
    parser.add_argument("--only", default="", help="measure only the pages whose label contains this")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("PostgreSQL only: --database-url postgres://…")
    _setup(args.database_url)
    from django.contrib.auth.models import User
    from django.test import Client

    from bookkeeping.models import AuditEvent, Company, Voucher

    built = Voucher.objects.filter(source_reference=f"A{args.vouchers}").exists() and \
        AuditEvent.objects.order_by().values("pk")[args.events - 1:args.events].exists()
    if args.rebuild or not built:
        _build(vouchers=args.vouchers, events=args.events, companies=args.companies)
    staff_company = Company.objects.filter(members__username="scale-staff").order_by("pk").first()
    other_company = Company.objects.filter(slug__startswith="scale-").order_by("-pk").first()
    probe = Voucher.objects.filter(company=staff_company, state="posted").order_by("pk").first()
    rare_word = probe.description.rsplit(" ", 1)[-1]
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"\n{args.vouchers:,} vouchers, {args.events:,} audit events; p50 of {args.requests} requests; "
          f"load average {' '.join(load)}\n")
    print(f"{'user':<6} {'page':<40} {'p50 ms':>8} {'ratio':>6} {'queries':>7}  count shown")
    over = 0
    for who, company in (("admin", other_company), ("staff", staff_company)):
        client = Client()
        client.force_login(User.objects.get(username=f"scale-{who}"))
        for label, url, limit in _pages(company.pk, reference=probe.source_reference,
                                         remote_number=probe.remote_number, rare_word=rare_word):
            if args.only and args.only not in label:
                continue
            p50, queries, status, count = _measure(client, url, args.requests)
            ratio = p50 / limit
            over += ratio > 1 or status != 200
            flag = "" if status == 200 else f"  HTTP {status}"
            print(f"{who:<6} {label:<40} {p50 * 1000:8.0f} {ratio:6.2f} {queries:7d}  {count}{flag}", flush=True)
    print(f"\n{over} page(s) over the limit (300 ms; word search 1 s).")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
