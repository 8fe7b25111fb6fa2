"""The expense-document import at scale (issue 15): one sync task per company per import, one read of the
payment methods however many receipts, new documents written in bulk exactly as one by one."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

import expense_documents.services.sync as sync
from bookkeeping.models import AuditEvent
from expense_documents.models import ExpenseDocument, ExpenseLine
from expense_documents.services.csv_import import documents_import

HEADER = ("reference,type,supplier,supplier_vat,date,due_date,description,amount,vat_code,category,currency,"
          "amount_dkk,payment_method,attachment\n")


def receipts(count: int, *, start: int = 0, amount: str = "420") -> str:
    return HEADER + "".join(
        f"K-{n},receipt,Café Norden,,2026-03-14,,Frokost {n},{amount},REP,4140,DKK,,firmakort,\n"
        f"K-{n},receipt,Café Norden,,2026-03-14,,Kaffe {n},30,REP,4140,DKK,,firmakort,\n"
        for n in range(start, start + count))


def test_an_import_queues_one_sync_task_for_its_company(connected_dinero, monkeypatch,
                                                        django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(sync, "async_task", lambda *args, **kwargs: queued.append(args))
    company = connected_dinero.company
    with django_capture_on_commit_callbacks(execute=True):
        result = documents_import(company=company, text=receipts(25), actor="test")
    assert result.ok and result.created == 25
    assert queued == [("expense_documents.tasks.sync_documents", company.pk)]
    with django_capture_on_commit_callbacks(execute=True):  # changed again: again one task
        result = documents_import(company=company, text=receipts(25, amount="421"), actor="test")
    assert (result.updated, len(queued)) == (25, 2)


def test_the_payment_methods_are_read_once_however_many_receipts(connected_dinero):
    company = connected_dinero.company
    reads = []
    for count, start in ((2, 0), (40, 100)):
        with CaptureQueriesContext(connection) as queries:
            assert documents_import(company=company, text=receipts(count, start=start), actor="test").ok
        reads.append(sum('"bookkeeping_paymentmethod"' in q["sql"] for q in queries))
    assert reads == [1, 1]


def test_documents_written_in_bulk_are_complete_and_audited_and_an_unchanged_import_writes_nothing(
        connected_dinero):
    company = connected_dinero.company
    assert documents_import(company=company, text=receipts(3), actor="test").created == 3
    document = ExpenseDocument.objects.get(company=company, reference="K-1")
    assert (document.type, document.supplier_name, str(document.document_date), document.needs_sync) == (
        "receipt", "Café Norden", "2026-03-14", True)
    assert document.payment_method.name.casefold() == "firmakort"
    assert [(str(line.amount), line.text, line.position) for line in document.lines.all()] == [
        ("420.00", "Frokost 1", 0), ("30.00", "Kaffe 1", 1)]
    assert AuditEvent.objects.filter(company=company, action="expense:created").count() == 3
    again = documents_import(company=company, text=receipts(3), actor="test")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert ExpenseLine.objects.filter(document__company=company).count() == 6
    assert AuditEvent.objects.filter(company=company, action__in=["expense:created", "expense:updated"]).count() == 3
