"""Benchmark: the imports and the SIE export at issue 15's sizes, each against its limit.

    .venv/bin/python bench/import_scale.py journals --format csv    # 100,000 journal rows from CSV, < 10 s
    .venv/bin/python bench/import_scale.py journals --format sie    # the same from SIE 4, < 10 s
    .venv/bin/python bench/import_scale.py mappings                 # 100,000 account-mapping rows, < 20 s
    .venv/bin/python bench/import_scale.py documents                # 10,000 expense documents, < 10 s
    .venv/bin/python bench/import_scale.py sie-export               # SIE 4 export of 100,000 vouchers, < 10 s
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontera_bench .venv/bin/python bench/import_scale.py …

Each prints the wall-clock seconds and their ratio to the limit, the CPU seconds of this process
(the figure that holds when the machine is shared), the peak resident memory, the queries, and
the checks that nothing was lost or stored twice (importing the same file again changes nothing).
The files are written to a temporary directory first, line by line, so the peak memory is the
import's. Without DATABASE_URL it runs on a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import peak_mb  # noqa: E402 - after the path is set

LIMITS_S = {"journals": 10.0, "mappings": 20.0, "documents": 10.0, "sie-export": 10.0}


def _setup(tmp: Path) -> None:
    os.environ.update({
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}"),
        "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "KONTERA_NO_BOOTSTRAP": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings", "KONTERA_UPLOAD_DIR": str(tmp / "uploads"),
        "ALLOWED_HOSTS": "testserver",  # the mappings benchmark goes through the admin's own views
    })
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _fresh_company(slug: str, *, system: str = "fortnox", country: str = "SE"):
    """A fresh company each run (an earlier run's is removed), connected as a real one is."""
    from bookkeeping.models import AccountMapping, AuditEvent, Company, Voucher
    from integrations.models import Integration

    for old in Company.objects.filter(slug=slug):
        AuditEvent.objects.filter(company=old).delete()
        Voucher.objects.filter(company=old).delete()
        AccountMapping.objects.filter(company=old).delete()
        for model in _company_models():
            model.objects.filter(company=old).delete()
        old.delete()
    company = Company.objects.create(slug=slug, name=f"Bench {slug}", country=country)
    Integration.objects.create(company=company, system=system, status="active")
    return company


def _company_models():
    from django.apps import apps

    from bookkeeping.models import AccountPlan, Company
    from integrations.models import Integration

    skip = {Company, Integration, AccountPlan}
    return [m for m in apps.get_models() if m not in skip and any(
        f.name == "company" and f.is_relation and f.related_model is Company for f in m._meta.fields)]


class Measure:
    """Wall clock, CPU of this process and queries of one step."""

    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        from django.db import connection

        connection.force_debug_cursor = True
        connection.queries_log.clear()
        self.started, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        from django.db import connection

        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu
        self.queries = len(connection.queries_log)
        self.peak_mb = peak_mb()  # before the checks read anything back
        if os.environ.get("BENCH_SHOW_QUERIES"):
            from collections import Counter

            for sql, n in Counter(q["sql"][:150] for q in connection.queries_log).most_common(4):
                print(f"  {n:>7} x {sql}")
        connection.force_debug_cursor = False
        return False


def _report(kind: str, measure: Measure, count: int, unit: str, *, rss_before: float) -> None:
    from django.db import connection

    limit = LIMITS_S[kind]
    print(f"database        {connection.vendor}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{measure.label:<15} {measure.seconds:6.1f} s  ({measure.seconds / limit:.2f} of {limit:.0f} s), "
          f"{count / measure.seconds:,.0f} {unit}/s; CPU of this process {measure.cpu_seconds:.1f} s "
          f"({measure.cpu_seconds / limit:.2f} of the limit); {measure.queries} queries")
    print(f"peak memory     {measure.peak_mb:.0f} MB resident ({measure.peak_mb - rss_before:+.0f} MB over the start)")


# --- journals ---------------------------------------------------------------------------------------


def journal_file(path: Path, *, fmt: str, journals: int) -> int:
    """Balanced journals of four rows each (receivable, rents per cost centre, VAT); returns the rows."""
    with path.open("w", encoding="cp437" if fmt == "sie" else "utf-8", newline="") as out:
        if fmt == "sie":
            out.write('#FLAGGA 0\n#FORMAT PC8\n#SIETYP 4\n#FNAMN "Brf Benchmark"\n#RAR 0 20220101 20221231\n')
        else:
            out.write("journal,date,series,account,debit,credit,cost_centre,project,text\n")
        for number in range(1, journals + 1):
            month, day = 1 + number % 12, 1 + number % 28
            if fmt == "sie":
                out.write(f'#VER A {number} 2022{month:02d}{day:02d} "Hyror lgh {number}"\n{{\n'
                          f'#TRANS 1510 {{}} 12500.00 "" "Avisering {number}"\n'
                          f'#TRANS 3011 {{1 "100"}} -10000.00 "" "Hyra bostad"\n'
                          f'#TRANS 3015 {{1 "100"}} -2000.00 "" "Hyra lokal"\n'
                          f'#TRANS 2610 {{}} -500.00 "" "Moms lokal"\n}}\n')
            else:
                when = f"2022-{month:02d}-{day:02d}"
                out.write(f"J{number},{when},A,1510,12500.00,,,,Avisering {number}\n"
                          f"J{number},{when},A,3011,,10000.00,100,,Hyra bostad\n"
                          f"J{number},{when},A,3015,,2000.00,100,,Hyra lokal\n"
                          f"J{number},{when},A,2610,,500.00,,,Moms lokal\n")
    return journals * 4


def bench_journals(args, tmp: Path) -> None:
    from bookkeeping.models import Voucher, VoucherRow
    from ledger_journals.services.journal_import import journals_import
    from tests.factories import fortnox_plan

    company = _fresh_company("bench-journal-scale")
    fortnox_plan(company, accounts=(1510, 3011, 3015, 2610), cost_centres=("100",), year=2022)
    path = tmp / ("journals.se" if args.format == "sie" else "journals.csv")
    rows = journal_file(path, fmt=args.format, journals=args.rows // 4)
    rss_before = peak_mb()
    with Measure(f"import {args.format}") as measure:
        result = journals_import(company=company, data=path.read_bytes(), filename=path.name, actor="command")
    stored = Voucher.objects.filter(company=company).count()
    stored_rows = VoucherRow.objects.filter(voucher__company=company).count()
    print(f"file            {path.stat().st_size / 1024 / 1024:.1f} MB {args.format}, {rows:,} rows, "
          f"{args.rows // 4:,} journals")
    _report("journals", measure, rows, "rows", rss_before=rss_before)
    again = journals_import(company=company, data=path.read_bytes(), filename=path.name, actor="command")
    ok = (result.created == stored == args.rows // 4 and stored_rows == rows and again.unchanged == stored
          and again.created == again.updated == 0 and Voucher.objects.filter(company=company).count() == stored)
    print(f"checks          {stored:,} journals and {stored_rows:,} rows stored; imported again: "
          f"{again.unchanged:,} unchanged, {again.created} new, {again.updated} updated -> "
          f"{'nothing lost, nothing twice' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)


# --- account mappings -------------------------------------------------------------------------------

MAPPING_COMPANIES = 10
MAPPING_ACCOUNTS = tuple(range(3000, 3300)) + (1510, 1930, 2610)


def mapping_file(path: Path, *, slugs: list[str], rows: int, changed_every: int = 0) -> None:
    """``rows`` mapping rows spread over the companies: categories, add-on codes and source accounts,
    a cost centre on every fourth; ``changed_every`` > 0 points every n-th row at another account."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("company,system,kind,key,account,cost_centre,project,vat_code,series,note\n")
        for n in range(rows):
            slug = slugs[n % len(slugs)]
            kind = ("ledger_category", "addon_code", "ledger_account")[n % 3]
            key = f"{10_000 + n}" if kind == "ledger_account" else f"Kategori {n}"
            account = MAPPING_ACCOUNTS[(n + (1 if changed_every and n % changed_every == 0 else 0)) % 300]
            out.write(f"{slug},fortnox,{kind},{key},{account},{'100' if n % 4 == 0 else ''},,,,rad {n}\n")


def _mapping_companies(prefix: str) -> list:
    from tests.factories import fortnox_plan

    companies = []
    for index in range(MAPPING_COMPANIES):
        company = _fresh_company(f"{prefix}-{index}")
        fortnox_plan(company, accounts=MAPPING_ACCOUNTS, cost_centres=("100", "200"))
        companies.append(company)
    return companies


def bench_mappings(args, tmp: Path) -> None:
    """The admin's dry run and confirmation (through the admin's own views), then the ``import`` command
    with another 100,000 rows, then the first file again with every tenth row changed."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from bookkeeping.models import AccountMapping, AuditEvent

    admin_companies = _mapping_companies("bench-map-admin")
    command_companies = _mapping_companies("bench-map-cmd")
    user = get_user_model().objects.filter(username="bench-mappings").first() or \
        get_user_model().objects.create_superuser("bench-mappings", "bench@example.com", "bench-mappings-pw")
    first, second, again = tmp / "mappings-admin.csv", tmp / "mappings-command.csv", tmp / "mappings-again.csv"
    mapping_file(first, slugs=[c.slug for c in admin_companies], rows=args.rows)
    mapping_file(second, slugs=[c.slug for c in command_companies], rows=args.rows)
    mapping_file(again, slugs=[c.slug for c in admin_companies], rows=args.rows, changed_every=10)
    print(f"file            {first.stat().st_size / 1024 / 1024:.1f} MB csv, {args.rows:,} rows, "
          f"{MAPPING_COMPANIES} companies, a plan of {len(MAPPING_ACCOUNTS)} accounts each")
    # The pages render without collected static files (as in the tests).
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    client = Client()
    client.force_login(user)
    rss_before = peak_mb()
    with Measure("admin dry run") as dry:
        preview = client.post(reverse("admin:bookkeeping_accountmapping_import"), {
            "format": "0", "resource": "0",
            "import_file": SimpleUploadedFile(first.name, first.read_bytes(), "text/csv")})
    # The confirmation form's hidden fields, read from the page as a browser would.
    page = preview.content.decode()
    confirm_fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    if preview.status_code != 200 or "import_file_name" not in confirm_fields:
        found = page.find('id="import-row-errors"')
        print(f"the preview refused the file (HTTP {preview.status_code}): {page[max(found, 0):][:2000]}")
        sys.exit(1)
    _report("mappings", dry, args.rows, "rows", rss_before=rss_before)
    with Measure("admin confirm") as confirm:
        done = client.post(reverse("admin:bookkeeping_accountmapping_process_import"), {**confirm_fields, "resource": "0"})
    _report("mappings", confirm, args.rows, "rows", rss_before=rss_before)
    total = dry.seconds + confirm.seconds
    print(f"admin in all    {total:6.1f} s  ({total / LIMITS_S['mappings']:.2f} of {LIMITS_S['mappings']:.0f} s); "
          f"CPU {dry.cpu_seconds + confirm.cpu_seconds:.1f} s")
    with Measure("import command") as command:
        call_command("import", "bookkeeping.resources.AccountMappingResource", str(second), "--no-input")
    _report("mappings", command, args.rows, "rows", rss_before=rss_before)
    with Measure("again, 10 % changed") as changed:
        call_command("import", "bookkeeping.resources.AccountMappingResource", str(again), "--no-input")
    _report("mappings", changed, args.rows, "rows", rss_before=rss_before)
    stored = {slug: n for slug, n in _count_by_slug(AccountMapping, admin_companies + command_companies).items()}
    created = AuditEvent.objects.filter(action="mapping:created", company__in=admin_companies + command_companies)
    changes = AuditEvent.objects.filter(action="mapping:changed", company__in=admin_companies + command_companies)
    expected_changes = len(range(0, args.rows, 10))
    ok = (done.status_code == 302 and sum(stored.values()) == 2 * args.rows
          and set(stored.values()) == {args.rows // MAPPING_COMPANIES}
          and created.count() == 2 * args.rows and changes.count() == expected_changes
          and AccountMapping.objects.filter(company=admin_companies[0], key="Kategori 10").get().account_number
          == MAPPING_ACCOUNTS[11])
    print(f"checks          {sum(stored.values()):,} rows stored ({args.rows:,} per import), {created.count():,} "
          f"audited as created, {changes.count():,} as changed of {expected_changes:,} changed in the file -> "
          f"{'nothing lost, nothing twice' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)


def _count_by_slug(model, companies) -> dict:
    from django.db.models import Count

    return dict(model.objects.filter(company__in=companies).values_list("company__slug").annotate(n=Count("id")))


# --- expense documents --------------------------------------------------------------------------------


def documents_file(path: Path, *, documents: int, changed_every: int = 0) -> int:
    """Half supplier invoices, half receipts (paid with one of two payment methods), two lines each;
    ``changed_every`` > 0 changes the first line's amount of every n-th document. Returns the lines."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("reference,type,supplier,supplier_vat,date,due_date,description,amount,vat_code,category,currency,"
                  "amount_dkk,payment_method,attachment\n")
        for n in range(documents):
            day = f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}"
            amount = "125.00" if not (changed_every and n % changed_every == 0) else "126.00"
            if n % 2:
                method = ("Firmakort", "Kontant")[n % 4 // 2]
                out.write(f"K-{n},receipt,Café Norden,,{day},,Frokost {n},{amount},I25,4140,DKK,,{method},\n"
                          f"K-{n},receipt,Café Norden,,{day},,Kaffe {n},30.00,I25,4140,DKK,,{method},\n")
            else:
                out.write(f"F-{n},invoice,Kontorland A/S,DK12345678,{day},,Papir {n},{amount},I25,7200,DKK,,,\n"
                          f"F-{n},invoice,Kontorland A/S,DK12345678,{day},,Toner {n},\"1.000,00\",I25,7240,DKK,,,\n")
    return documents * 2


def bench_documents(args, tmp: Path) -> None:
    """10,000 documents (20,000 lines) into one Dinero company, then the same file again with every tenth
    document changed: the time, the queued tasks and that nothing is lost or stored twice."""
    from django.db import transaction
    from django.utils import timezone
    from django_q.models import OrmQ

    import expense_documents.services.sync as sync
    from bookkeeping.models import AccountPlan, AuditEvent
    from expense_documents.models import ExpenseDocument, ExpenseLine
    from expense_documents.services.csv_import import documents_import
    from tests.factories import AccountFactory, PaymentMethodFactory, PaymentMethodListFactory, VatCodeFactory

    company = _fresh_company("bench-documents", system="dinero", country="DK")
    plan = AccountPlan.objects.create(company=company, system="dinero", imported_at=timezone.now())
    for number in (4140, 7200, 7240, 55010, 55040, 63000):
        AccountFactory(plan=plan, number=number, kind="pl" if number < 10000 else "balance")
    VatCodeFactory(plan=plan, code="I25")
    methods = PaymentMethodListFactory(company=company, name="Kvitteringer")
    PaymentMethodFactory(payment_list=methods, name="Firmakort", account_number=55010)
    PaymentMethodFactory(payment_list=methods, name="Kontant", account_number=55040)
    integration = company.integrations.get(system="dinero")
    integration.settings = {**(integration.settings or {}), "receipt_payment_list": methods.pk}
    integration.save()
    # Count what the import queues, as the broker would get it (the real async_task, the real broker).
    queued = []
    real_async_task = sync.async_task
    sync.async_task = lambda *a, **kw: (queued.append(a), real_async_task(*a, **kw))[1]
    OrmQ.objects.all().delete()
    first, again = tmp / "documents.csv", tmp / "documents-again.csv"
    lines = documents_file(first, documents=args.documents)
    documents_file(again, documents=args.documents, changed_every=10)
    print(f"file            {first.stat().st_size / 1024 / 1024:.1f} MB csv, {args.documents:,} documents, "
          f"{lines:,} lines")
    rss_before = peak_mb()
    with Measure("import") as measure:
        with transaction.atomic():  # as the command and the admin run it (their own transaction)
            result = documents_import(company=company, text=first.read_text(encoding="utf-8"), actor="command")
    if not result.ok:
        print(f"refused: {[str(e) for e in result.errors[:5]]}")
        sys.exit(1)
    _report("documents", measure, args.documents, "documents", rss_before=rss_before)
    tasks_first = len(queued)
    with Measure("again, 10 % changed") as changed:
        with transaction.atomic():
            second = documents_import(company=company, text=again.read_text(encoding="utf-8"), actor="command")
    _report("documents", changed, args.documents, "documents", rss_before=rss_before)
    stored = ExpenseDocument.objects.filter(company=company).count()
    stored_lines = ExpenseLine.objects.filter(document__company=company).count()
    audited = AuditEvent.objects.filter(company=company, action__in=["expense:created", "expense:updated"]).count()
    expected_changes = len(range(0, args.documents, 10))
    ok = (result.created == stored == args.documents and stored_lines == lines
          and (second.created, second.updated, second.unchanged) == (0, expected_changes,
                                                                      args.documents - expected_changes)
          and audited == args.documents + expected_changes and tasks_first == 1 and len(queued) == 2)
    print(f"queued tasks    {tasks_first} for the first import, {len(queued) - tasks_first} for the second "
          f"(limit: one per company per import); {OrmQ.objects.count()} in the broker")
    print(f"checks          {stored:,} documents and {stored_lines:,} lines stored; again: {second.updated:,} "
          f"changed, {second.unchanged:,} unchanged, {second.created} new; {audited:,} audited -> "
          f"{'nothing lost, nothing twice' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)


# --- SIE export ---------------------------------------------------------------------------------------


def bench_sie_export(args, tmp: Path) -> None:
    import datetime as dt
    from decimal import Decimal

    from django.db import transaction

    from bookkeeping.services.bulk import vouchers_insert
    from tests.factories import fortnox_plan

    if args.measure_only:
        return _measure_sie_export(args, tmp)
    company = _fresh_company("bench-sie-export")
    fortnox_plan(company, accounts=(1510, 3011, 2610), cost_centres=("100", "200"), year=2022)
    started = time.perf_counter()
    with transaction.atomic():  # posted vouchers, three rows each, written in bulk (minutes would be too long)
        for start in range(0, args.rows, 20_000):
            numbers = range(start + 1, min(start + 20_000, args.rows) + 1)
            vouchers_insert(vouchers=[{
                "company_id": company.pk, "system": "fortnox", "kind": "journal", "source_system": "ledger",
                "source_reference": f"P{n}", "date": dt.date(2022, 1 + n % 12, 1 + n % 28),
                "description": f"Hyror lgh {n}", "series": "A", "state": "posted", "remote_series": "A",
                "remote_number": str(n), "remote_year": "1"} for n in numbers],
                rows=([{"account": "1510", "debit": Decimal("12500.00"), "credit": Decimal("0"), "text": f"Avi {n}"},
                       {"account": "3011", "debit": Decimal("0"), "credit": Decimal("10000.00"),
                        "cost_centre": "100" if n % 2 else "200", "source_key": "Hyra bostad"},
                       {"account": "2610", "debit": Decimal("0"), "credit": Decimal("2500.00")}] for n in numbers))
    print(f"data            {args.rows:,} posted vouchers with 3 rows each, stored in "
          f"{time.perf_counter() - started:.1f} s")
    # The export in a process of its own, so its peak memory is the export's, not the data's.
    subprocess.run([sys.executable, __file__, "sie-export", "--rows", str(args.rows), "--measure-only"],
                   env=os.environ, check=True)


def _measure_sie_export(args, tmp: Path) -> None:
    import datetime as dt

    from bookkeeping import sie
    from bookkeeping.models import Company, Voucher
    from bookkeeping.services.sie_export import sie_export_write

    company = Company.objects.get(slug="bench-sie-export")
    path = tmp / "export.se"
    rss_before = peak_mb()
    with Measure("export") as measure, path.open("wb") as out:
        written = sie_export_write(company=company, date_from=dt.date(2022, 1, 1), date_to=dt.date(2022, 12, 31),
                                   out=out)
    _report("sie-export", measure, written, "vouchers", rss_before=rss_before)
    stored = Voucher.objects.filter(company=company, state="posted").count()
    data = path.read_bytes()
    numbers = [v.number for v in sie.read(data).vouchers]
    ok = written == stored == len(numbers) == len(set(numbers)) == args.rows
    print(f"checks          file {len(data) / 1024 / 1024:.1f} MB; {written:,} written, {len(numbers):,} read back, "
          f"{len(set(numbers)):,} distinct of {stored:,} posted -> {'nothing lost, nothing twice' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(LIMITS_S))
    parser.add_argument("--format", choices=("csv", "sie"), default="csv", help="journals: the file's format")
    parser.add_argument("--rows", type=int, default=100_000, help="journal rows, mapping rows or vouchers")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kontera-bench-"))
    _setup(tmp)
    {"journals": bench_journals, "sie-export": bench_sie_export, "mappings": bench_mappings, "documents": bench_documents}[args.kind](args, tmp)


if __name__ == "__main__":
    main()
