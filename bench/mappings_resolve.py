"""Benchmark: what the account mappings cost per row when a property-ledger file is read.

A company with a BAS-sized chart and a few hundred mapping rows (source accounts, categories,
add-on codes, properties); a CSV of journals in the source's own plan. Prints the time to read the
file with and without resolving it through the mappings, the cost per row against a budget of
50 µs, and the queries the resolving made (the budget: one read of the mappings per file).

    .venv/bin/python bench/mappings_resolve.py [--journals 5000] [--mappings 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BUDGET_US_PER_ROW = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journals", type=int, default=5000)
    parser.add_argument("--mappings", type=int, default=300)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kontera-bench-"))
    os.environ.update({
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}"),
        "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "KONTERA_NO_BOOTSTRAP": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    })
    import django

    django.setup()
    import datetime as dt

    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from bookkeeping.models import Account, AccountMapping, AccountPlan, Company, CostCentre
    from ledger_journals.services.journal_import import journals_from_csv
    from ledger_journals.services.journal_mapping import journals_resolve

    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    company = Company.objects.create(name="Bench Brf", slug="bench-brf", country="SE")
    plan = AccountPlan.objects.create(company=company, system="fortnox", imported_at=timezone.now())
    Account.objects.bulk_create([Account(plan=plan, number=n, name=f"Konto {n}", kind="balance" if n < 3000 else "pl")
                                 for n in range(1000, 9000, 8)])
    CostCentre.objects.bulk_create([CostCentre(plan=plan, code=str(100 + n), name=f"Fastighet {n}")
                                    for n in range(50)])
    # a quarter each: the source's own accounts (five digits), categories, add-on codes, properties
    quarter = max(args.mappings // 4, 1)
    rows = []
    for n in range(quarter):
        account = 3000 + 8 * (n % 100)
        rows += [AccountMapping(company=company, system="fortnox", kind="ledger_account", key=str(90000 + n),
                                account_number=account),
                 AccountMapping(company=company, system="fortnox", kind="ledger_category", key=f"Kategori {n}",
                                account_number=account),
                 AccountMapping(company=company, system="fortnox", kind="addon_code", key=f"T{n}",
                                account_number=account),
                 AccountMapping(company=company, system="fortnox", kind="property", key=f"Fastighet {n}",
                                cost_centre=str(100 + n % 50))]
    AccountMapping.objects.bulk_create(rows)

    day = dt.date.today().isoformat()
    lines = ["journal,date,account,debit,credit,category,addon_code,property"]
    for j in range(args.journals):
        n = j % quarter
        lines += [f"J{j},{day},{90000 + n},100,0,,,", f"J{j},{day},,0,60,Kategori {n},,Fastighet {n}",
                  f"J{j},{day},2000,0,30,,T{n},", f"J{j},{day},99999,0,10,,,"]
    data = ("\n".join(lines) + "\n").encode()
    row_count = 4 * args.journals

    started = time.perf_counter()
    journals = journals_from_csv(company=company, data=data)
    parsed = time.perf_counter() - started
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        journals_resolve(company=company, journals=journals)
        resolved = time.perf_counter() - started
    mapping_reads = sum(1 for q in queries.captured_queries if "bookkeeping_accountmapping" in q["sql"])
    waiting = sum(1 for journal in journals if any(r.unmapped_keys for r in journal.rows))
    per_row = 1e6 * resolved / row_count
    print(f"database: {connection.vendor}; {args.journals} journals, {row_count} rows, {args.mappings} mapping rows")
    print(f"reading the file:  {parsed:.2f} s")
    print(f"resolving it:      {resolved:.2f} s = {per_row:.1f} µs per row = "
          f"{per_row / BUDGET_US_PER_ROW:.2f} × the budget of {BUDGET_US_PER_ROW:.0f} µs")
    print(f"queries:           {len(queries.captured_queries)} in all, {mapping_reads} of the mappings "
          f"(budget: 1 per file)")
    print(f"waiting journals:  {waiting} of {args.journals} (each has a 99999 row without a mapping, as planned)")


if __name__ == "__main__":
    main()
