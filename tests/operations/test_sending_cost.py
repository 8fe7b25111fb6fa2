"""What a voucher costs on the dispatcher's path (issue 15): the statements that grow with the vouchers,
and one kept-alive HTTP session per company's turn. Speed itself is measured by bench/fortnox_push.py."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookkeeping.models import Voucher, VoucherState
from bookkeeping.services import sending
from bookkeeping.services.vouchers import voucher_queue
from tests.factories import balanced_voucher

ROWS = ((1930, "100.00", "0"), (1510, "0", "100.00"))


def _queued(company, count: int) -> list[Voucher]:
    vouchers = [balanced_voucher(company, rows=ROWS, source_reference=f"C{n}", date=timezone.localdate())
                for n in range(count)]
    for voucher in vouchers:
        assert voucher_queue(voucher=voucher, actor="test") == []
    return vouchers


def _statements(queries, table: str, verb: str) -> int:
    """Statements that read (their first column) or write ``table`` itself, not those naming it in a subquery."""
    start = f'SELECT "{table}".' if verb == "SELECT" else f'{verb} "{table}"'
    return sum(1 for q in queries if q["sql"].lstrip().startswith(start))


def _copies_counted(monkeypatch) -> list:
    """The COPYs (PostgreSQL's bulk writes go past Django's cursor, so its query log misses them)."""
    from bookkeeping.services import bulk

    copies, copy = [], bulk._copy

    def counted(model, records, **kwargs):
        copies.append({"sql": f'COPY "{model._meta.db_table}"'})
        return copy(model, records, **kwargs)

    monkeypatch.setattr(bulk, "_copy", counted)
    return copies


def test_a_companys_turn_reads_its_integration_and_plan_once(connected_fortnox, fortnox_sandbox, monkeypatch):
    _queued(connected_fortnox.company, 6)
    copies = _copies_counted(monkeypatch)
    with CaptureQueriesContext(connection) as captured:
        result = sending.vouchers_dispatch(max_seconds=60)
    assert result.posted == 6 and len(fortnox_sandbox.vouchers(1046823)) == 6
    queries = captured.captured_queries
    assert _statements(queries, "integrations_integration", "SELECT") == 1
    assert _statements(queries, "bookkeeping_accountplan", "SELECT") == 1
    # the run's claims (the first, the look for more companies to send for at once, whether any remain)
    assert _statements(queries, "bookkeeping_company", "SELECT") <= 4
    # one batch: its claim's events in one INSERT, its answers' in another — yet an event per voucher and step
    audit_writes = [q for q in queries + copies if any(f'{verb} "bookkeeping_auditevent"' in q["sql"] for verb in ("INSERT INTO", "COPY"))]
    assert len(audit_writes) == 2
    for voucher in Voucher.objects.all():
        assert list(voucher.audit_events.order_by("id").values_list("action", flat=True)) == [
            "state:draft->queued", "state:queued->sending", "state:sending->posted"]
    # no empty "last success" UPDATE per voucher: one for the turn
    assert _statements(queries, "integrations_integration", "UPDATE") == 1


def _dispatch_statements(count: int, copies: list) -> int:
    """Every statement a dispatcher runs to send ``count`` queued vouchers (savepoints apart), its COPYs too."""
    copies.clear()
    with CaptureQueriesContext(connection) as captured:
        assert sending.vouchers_dispatch(max_seconds=120).posted == count
    return sum(1 for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]) + len(copies)


def test_the_statements_per_voucher_stay_within_four_and_do_not_grow_with_the_vouchers(
        connected_fortnox, fortnox_sandbox, monkeypatch):
    """Before: 8.4 statements per voucher (a claim, a record and two audit INSERTs per voucher, issue 15).
    Now the batch claims, records and audits in bulk; the pacer's one UPDATE per request remains."""
    copies = _copies_counted(monkeypatch)
    _queued(connected_fortnox.company, 10)
    ten = _dispatch_statements(10, copies)
    Voucher.objects.all().delete()
    _queued(connected_fortnox.company, 40)
    forty = _dispatch_statements(40, copies)
    assert forty / 40 <= 4
    assert forty - ten <= 30 * 2.5, (ten, forty)  # what grows with the vouchers: ≤ 2.5 statements each


def test_the_vouchers_of_a_turn_share_one_http_session(connected_fortnox, fortnox_sandbox, monkeypatch):
    made = []
    original = sending.make_session

    def counted(*args, **kwargs):
        made.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(sending, "make_session", counted)
    _queued(connected_fortnox.company, 4)
    assert sending.vouchers_dispatch(max_seconds=60).posted == 4
    assert len(made) == 1
    assert set(Voucher.objects.values_list("state", flat=True)) == {VoucherState.POSTED}
