"""Benchmark: Dinero's requests per expense document and documents per minute at Dinero's rate limit.

    .venv/bin/python bench/dinero_requests.py                     # 30 documents, one organisation, SQLite
    .venv/bin/python bench/dinero_requests.py --database-url postgres://postgres@127.0.0.1:5432/kontera_imports_bench
    .venv/bin/python bench/dinero_requests.py --book-answer read_model   # if book answers with the voucher (its number)
    .venv/bin/python bench/dinero_requests.py --drafts                       # book_vouchers off

At Dinero's 100 requests a minute per organisation the requests per document *are* the speed: the
benchmark sends the documents (half supplier invoices from three suppliers, half receipts) through the
worker's own path (sync, dispatch) to the Dinero sandbox over real HTTP, paced as in production, counts
the API requests the sandbox received (the token grant apart), and prints requests per document (limit
3), documents per minute at the limit (goal 30) and the rate actually reached. It checks that every
document landed exactly once (by its voucher's reference in the sandbox's own state).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DINERO_CLIENT = ("kontera-bench", "kontera-bench-secret")
LIMIT_REQUESTS_PER_DOCUMENT = 3
RATE_LIMIT_PER_MINUTE = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=30)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--port", type=int, default=9530)
    parser.add_argument("--show-log", action="store_true", help="print every request the sandbox received")
    parser.add_argument("--book-answer", choices=("read_model", "guid_timestamp"), default="guid_timestamp",
                        help="what Dinero's book answers (undocumented; see integrations/sandboxes/dinero.py)")
    parser.add_argument("--create-answer", choices=("guid_timestamp", "read_model"), default="guid_timestamp",
                        help="what Dinero's create answers (documented: Guid and Timestamp)")
    parser.add_argument("--drafts", action="store_true", help="book_vouchers off: drafts, as Pleo leaves them")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kontera-dinero-bench-"))

    from cryptography.fernet import Fernet

    from integrations.sandboxes.base import ServerThread, mount
    from integrations.sandboxes.dinero import DineroSandbox

    dinero = DineroSandbox()
    dinero.register_client(*DINERO_CLIENT)
    server = ServerThread(mount({"/dinero": dinero}), port=args.port).start()
    os.environ.update({
        "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}", "REDIS_URL": "",
        "SECRET_KEY": "bench", "KONTERA_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DINERO_API_URL": f"{server.url}/dinero", "DINERO_AUTH_URL": f"{server.url}/dinero/dineroapi/oauth/token",
        "DINERO_CLIENT_ID": DINERO_CLIENT[0], "DINERO_CLIENT_SECRET": DINERO_CLIENT[1],
        "LOG_LEVEL": "WARNING", "KONTERA_NO_BOOTSTRAP": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
        "KONTERA_UPLOAD_DIR": str(tmp / "uploads"), "MEDIA_ROOT": str(tmp / "media"),
    })
    import django

    django.setup()
    import datetime as dt
    from decimal import Decimal

    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from bookkeeping.models import Company, PaymentMethod, PaymentMethodList, Voucher, VoucherState
    from bookkeeping.services.sending import vouchers_dispatch
    from expense_documents.models import ExpenseDocument, ExpenseLine
    from expense_documents.services.dinero_setup import dinero_setup
    from expense_documents.services.sync import documents_sync

    call_command("migrate", verbosity=0)
    cache.clear()  # no contact remembered from an earlier run
    org_id, cvr, key = 810_000 + os.getpid() % 1000, "41000000", f"bench-dinero-key-{os.getpid()}"
    dinero.add_organization(org_id, "Bench ApS", key, vat_number=cvr)
    dinero.set_book_answer(org_id, args.book_answer)
    dinero.set_create_answer(org_id, args.create_answer)
    Company.objects.filter(slug="bench-dinero").delete()
    company = Company.objects.create(name="Bench ApS", slug="bench-dinero", country="DK", base_currency="DKK",
                                     org_number=f"DK{cvr}")
    methods = PaymentMethodList.objects.create(company=company, name="Kvitteringer")
    PaymentMethod.objects.create(payment_list=methods, name="Firmakort", account_number=55010)
    dinero_setup(company=company, api_key=key, organization_id=str(org_id), error_account=7480, import_chart=True,
                 invoice_payment_method="63000", receipt_payment_list="Kvitteringer", actor="bench")
    if args.drafts:
        from expense_documents.services.common import dinero_integration

        integration = dinero_integration(company)
        integration.settings = {**integration.settings, "book_vouchers": False}
        integration.save(update_fields=["settings"])
    today = timezone.localdate()
    suppliers = [("Kontorland A/S", "DK12345678"), ("Papirhuset ApS", "DK23456789"), ("Kaffe & Co ApS", "DK34567890")]
    for d in range(args.documents):
        name, vat = suppliers[d % len(suppliers)]
        receipt = d % 2 == 1
        document = ExpenseDocument.objects.create(
            company=company, reference=f"B-{d}", type="receipt" if receipt else "invoice", supplier_name=name,
            supplier_vat=vat, document_date=today, due_date=None if receipt else today + dt.timedelta(days=30),
            currency="DKK", payment_method=PaymentMethod.objects.get(payment_list=methods) if receipt else None)
        ExpenseLine.objects.create(document=document, position=0, amount=Decimal(100 + d), vat_code="I25",
                                   category=7200, text=f"Kontorartikler {d}")
    documents_sync(company=company, actor="bench", only_pending=True)
    dinero.log.clear()
    started = time.perf_counter()
    deadline = started + 60 + args.documents * 10
    ours = Voucher.objects.filter(company=company, system="dinero")
    while time.perf_counter() < deadline and ours.exclude(state=VoucherState.POSTED).exists():
        vouchers_dispatch(system="dinero", max_seconds=30)
    seconds = time.perf_counter() - started
    requests = [r for r in dinero.log if not r.path.endswith("/oauth/token")]
    if args.show_log:
        for r in requests:
            print(f"  {r.status} {r.method} {_shape(r.path)}{'?' + r.query if r.query else ''}")
    kinds = Counter(f"{r.method} {_shape(r.path)}" for r in requests)
    posted = ours.filter(state=VoucherState.POSTED).count()
    per_document = len(requests) / max(posted, 1)
    at_limit = RATE_LIMIT_PER_MINUTE / per_document
    reached = posted / seconds * 60
    print(f"database        {connection.vendor}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{'drafts' if args.drafts else 'booked'}, create answers {args.create_answer}, book answers {args.book_answer}")
    print(f"documents       {posted} of {args.documents} posted ({args.documents - args.documents // 2} invoices "
          f"from 3 suppliers, {args.documents // 2} receipts) in {seconds:.1f} s")
    print(f"requests        {len(requests)}: {per_document:.2f} per document ({per_document / LIMIT_REQUESTS_PER_DOCUMENT:.2f}"
          f" of the limit {LIMIT_REQUESTS_PER_DOCUMENT}); " + ", ".join(f"{n} × {k}" for k, n in kinds.most_common()))
    # The common path: a supplier seen before (its contact remembered per organisation), so no contact request.
    known = sum(n for k, n in kinds.items() if "contacts" not in k) / max(posted, 1)
    print(f"known supplier  {known:.2f} requests per document without the contact look-ups and creations "
          f"({known / LIMIT_REQUESTS_PER_DOCUMENT:.2f} of the limit), {RATE_LIMIT_PER_MINUTE / known:.1f} documents a minute")
    print(f"speed           {at_limit:.1f} documents a minute at {RATE_LIMIT_PER_MINUTE} requests a minute "
          f"({at_limit / 30:.2f} of the goal 30); reached here {reached:.1f} a minute")
    landed = Counter(v.get("ExternalReference") for v in dinero.organization(org_id).purchase_vouchers.values())
    doubles = sum(n - 1 for n in landed.values() if n > 1)
    ok = posted == args.documents and doubles == 0 and len(landed) == args.documents
    print(f"checks          {len(landed)} vouchers in Dinero for {args.documents} documents, {doubles} twice -> "
          f"{'nothing lost, nothing twice' if ok else 'FAILED'}")
    server.stop() if hasattr(server, "stop") else None
    return 0 if ok else 1


def _shape(path: str) -> str:
    """The endpoint without its ids: /v1/123/vouchers/purchase/ab12…/book → vouchers/purchase/{guid}/book."""
    parts = [p for p in path.split("/") if p]
    parts = parts[parts.index("dinero") + 1:] if "dinero" in parts else parts
    if parts and parts[0].startswith("v1"):
        parts = parts[2:]  # the version and the organisation
    return "/".join("{guid}" if len(p) >= 20 or p.replace("-", "").isalnum() and any(c.isdigit() for c in p)
                    and len(p) > 8 else p for p in parts)


if __name__ == "__main__":
    sys.exit(main())
