"""Benchmark: the largest journal file the import takes (KONTERA_MAX_UPLOAD_JOURNALS_MB, 20 MB by default),
through the admin's preview (read, check every value, pre-flight against a chart) and the import.

Issue 11 measured a 50 MB SIE file read whole: a 147 s preview, an 84.6 MB page, and the command past
300 s on PostgreSQL. Prints each step's seconds, the preview page's size, and each figure's ratio to
its limit: the preview must answer within a web request (60 s), the import within the worker's task
budget (300 s).

    .venv/bin/python bench/journal_import.py [--megabytes 20]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kontera_bench .venv/bin/python bench/journal_import.py
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
PREVIEW_LIMIT_S = 60.0
IMPORT_LIMIT_S = 300.0


def sie_file(megabytes: float) -> bytes:
    """Balanced journals of four rows each (receivable, rents per cost centre, VAT) just under the size."""
    head = '#FLAGGA 0\n#FORMAT PC8\n#SIETYP 4\n#FNAMN "Brf Benchmark"\n#RAR 0 20220101 20221231\n'
    parts, size, number = [head], len(head), 0
    while size < megabytes * 1024 * 1024 - 400:
        number += 1
        day = f"2022{1 + number % 12:02d}{1 + number % 28:02d}"
        text = (f'#VER A {number} {day} "Hyror lgh {number}"\n{{\n'
                f'#TRANS 1510 {{}} 12500.00 "" "Avisering {number}"\n'
                f'#TRANS 3011 {{1 "100"}} -10000.00 "" "Hyra bostad"\n'
                f'#TRANS 3015 {{1 "100"}} -2000.00 "" "Hyra lokal"\n'
                f'#TRANS 2610 {{}} -500.00 "" "Moms lokal"\n}}\n')
        parts.append(text)
        size += len(text)
    return "".join(parts).encode("cp437")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=20.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kontera-bench-"))
    os.environ.update({
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}"),
        "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "KONTERA_NO_BOOTSTRAP": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings", "KONTERA_UPLOAD_DIR": str(tmp / "uploads"),
    })
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client then keeps each page's context
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from bookkeeping.models import Company, Voucher
    from integrations.models import Integration
    from tests.factories import fortnox_plan

    call_command("migrate", verbosity=0)
    data = sie_file(args.megabytes)
    # A fresh company each run (an earlier run's is removed), connected to Fortnox as a real one is.
    for old in Company.objects.filter(slug="bench-journals"):
        Voucher.objects.filter(company=old).delete()
        old.delete()
    company = Company.objects.create(slug="bench-journals", name="Brf Benchmark")
    Integration.objects.create(company=company, system="fortnox", status="active")
    fortnox_plan(company, accounts=(1510, 3011, 3015, 2610), cost_centres=("100",), year=2022)
    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
        "bench", "bench@example.se", "bench-password-1")
    client = Client()
    client.force_login(user)
    url = reverse("admin:bookkeeping_voucher_import_journals")

    started = time.perf_counter()
    preview = client.post(url, {"company": company.pk, "file": SimpleUploadedFile("big.se", data)})
    preview_s = time.perf_counter() - started
    assert preview.status_code == 200 and preview.context.get("token"), (
        f"the preview refused the file: {preview.context.get('errors') or preview.context.get('form').errors}")
    journals = preview.context["journal_count"]
    started = time.perf_counter()
    done = client.post(url, {"token": preview.context["token"]})
    import_s = time.perf_counter() - started
    assert done.status_code == 302, "the import failed"
    stored = Voucher.objects.filter(company=company).count()

    print(f"database        {connection.vendor}")
    print(f"file            {len(data) / 1024 / 1024:.1f} MB SIE, {journals} journals, {stored} stored")
    print(f"preview         {preview_s:6.1f} s  ({preview_s / PREVIEW_LIMIT_S:.2f} of {PREVIEW_LIMIT_S:.0f} s), "
          f"page {len(preview.content) / 1024:.0f} KB")
    print(f"import          {import_s:6.1f} s  ({import_s / IMPORT_LIMIT_S:.2f} of {IMPORT_LIMIT_S:.0f} s), "
          f"{stored / import_s:.0f} journals/s")


if __name__ == "__main__":
    main()
