"""Queueing many vouchers at once (``vouchers_queue``) leaves each voucher and the audit trail exactly as
queueing them one by one (``voucher_queue``) does, with SQL statements per chunk, not per voucher."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookkeeping.models import AuditEvent, Voucher, VoucherState
from bookkeeping.selectors.plans import forget_plan_snapshots
from bookkeeping.services import vouchers as voucher_services
from bookkeeping.services.vouchers import (
    QueueResult,
    problems_text,
    voucher_queue,
    vouchers_queue,
)
from tests.factories import (
    CompanyFactory,
    IntegrationFactory,
    UserFactory,
    VoucherFactory,
    VoucherRowFactory,
    balanced_voucher,
    fortnox_plan,
)

S = VoucherState
OK = ((1930, "100.00", "0"), (3011, "0", "100.00"))


def queue_one_by_one(vouchers, actor) -> QueueResult:
    """The single path, as ``vouchers_queue`` ran it before it worked in bulk: the reference."""
    result = QueueResult()
    for voucher in vouchers:
        before = voucher.state
        problems = voucher_queue(voucher=voucher, actor=actor, kick=False)
        voucher.refresh_from_db(fields=["state"])
        if problems and voucher.state == S.AWAITING_MAPPING:
            result.awaiting_mapping += 1
        elif problems:
            result.failed += 1
        elif voucher.state == S.QUEUED and before != S.QUEUED:
            result.queued += 1
        else:
            result.skipped += 1
    return result


def waiting_voucher(company, reference: str, *, key: str = "Hyra bostad") -> Voucher:
    """A journal whose second row waits for a mapping of a ledger category."""
    voucher = VoucherFactory(company=company, source_reference=reference)
    VoucherRowFactory(voucher=voucher, position=0, account="1930", debit=Decimal("100.00"))
    VoucherRowFactory(voucher=voucher, position=1, account="", credit=Decimal("100.00"), awaits_mapping=True,
                      source={"unmapped": [["ledger_category", key]]})
    return voucher


def in_state(voucher: Voucher, state: str, **fields) -> Voucher:
    Voucher.objects.filter(pk=voucher.pk).update(state=state, **fields)
    voucher.refresh_from_db()
    return voucher


def mixed_set(company, *, asked_by=None) -> list[Voucher]:
    """Every way a voucher can go when queued, under stable references."""
    made = [
        balanced_voucher(company, source_reference="ok-draft"),
        in_state(balanced_voucher(company, source_reference="ok-failed"), S.FAILED, last_error="old reason",
                 last_error_code="unbalanced", next_attempt_at="2026-01-01T00:00:00Z"),
        in_state(balanced_voucher(company, source_reference="ok-needs-update"), S.NEEDS_UPDATE),
        in_state(balanced_voucher(company, source_reference="ok-opted-out"), S.OPTED_OUT),
        in_state(balanced_voucher(company, source_reference="ok-awaiting-authorisation"), S.AWAITING_AUTHORISATION),
        waiting_voucher(company, "unmapped-draft"),
        in_state(waiting_voucher(company, "unmapped-other-text", key="El"), S.AWAITING_MAPPING,
                 last_error="Ledger category “Vatten” has no mapping yet.", last_error_code="unmapped"),
        balanced_voucher(company, source_reference="unbalanced", rows=((1930, "100.00", "0"), (3011, "0", "90.00"))),
        balanced_voucher(company, source_reference="unknown-account", rows=((1930, "100.00", "0"), (9999, "0", "100.00"))),
        in_state(balanced_voucher(company, source_reference="failed-new-text",
                                  rows=((1930, "100.00", "0"), (3011, "0", "80.00"))),
                 S.FAILED, last_error="an older reason", last_error_code="locked_period"),
        in_state(balanced_voucher(company, source_reference="queued"), S.QUEUED),
        in_state(balanced_voucher(company, source_reference="sending"), S.SENDING),
        in_state(balanced_voucher(company, source_reference="posted"), S.POSTED, remote_id="A 1"),
    ]
    # Already waiting with today's text: nothing is written (as voucher_queue leaves it).
    same_text = waiting_voucher(company, "unmapped-same-text")
    voucher_queue(voucher=same_text, actor="import", kick=False)
    same_text.refresh_from_db()
    assert same_text.state == S.AWAITING_MAPPING
    made.append(same_text)
    if asked_by is not None:
        Voucher.objects.filter(company=company).update(requested_by=asked_by)
    return made


def connected_company(name: str):
    company = CompanyFactory(name=name)
    fortnox_plan(company)
    IntegrationFactory(company=company, status="paused")
    return company


FIELDS = ("state", "last_error", "last_error_code", "coded_texts", "preflight_ok", "preflight_problems",
          "next_attempt_at", "requested_by_id", "remote_id")


def outcome(company, written_before: dict[str, object]) -> dict[str, tuple]:
    """Each voucher's fields (and whether it was written at all), by reference."""
    seen = {}
    for voucher in Voucher.objects.filter(company=company):
        seen[voucher.source_reference] = (
            *(getattr(voucher, name) for name in FIELDS),
            voucher.queued_at is not None,
            voucher.updated_at != written_before[voucher.source_reference],
        )
    return seen


def trail(company) -> dict[str, list[tuple]]:
    events: dict[str, list[tuple]] = {}
    for event in AuditEvent.objects.filter(company=company).select_related("voucher").order_by("id"):
        events.setdefault(event.voucher.source_reference, []).append(
            (event.action, event.outcome, event.message, event.coded_texts, event.actor_id, event.actor_label,
             event.voucher.company_id == event.company_id, event.integration_id, event.data))
    return events


def stamps(company) -> dict[str, object]:
    return dict(Voucher.objects.filter(company=company).values_list("source_reference", "updated_at"))


@pytest.mark.parametrize("given", ["objects", "ids", "queryset"])
@pytest.mark.parametrize("acting", ["staff", "worker"])
def test_many_at_once_leave_each_voucher_and_the_trail_as_one_by_one(db, given, acting):
    anna = UserFactory(username="anna")
    # The worker acting on vouchers Anna asked for names her in the trail; staff name themselves.
    actor, asked_by = (anna, None) if acting == "staff" else ("worker", anna)
    one, many = connected_company("One by one"), connected_company("Many at once")
    singles, bulk = mixed_set(one, asked_by=asked_by), mixed_set(many, asked_by=asked_by)
    before_one, before_many = stamps(one), stamps(many)
    trail_before = AuditEvent.objects.count()

    expected = queue_one_by_one(singles, actor)
    vouchers = {"objects": bulk, "ids": [v.pk for v in bulk],
                "queryset": Voucher.objects.filter(company=many)}[given]
    result = vouchers_queue(vouchers=vouchers, actor=actor, kick=False)

    assert result == expected
    assert (result.queued, result.failed, result.awaiting_mapping, result.skipped) == (5, 3, 3, 3)
    assert outcome(many, before_many) == outcome(one, before_one)
    assert trail(many) == trail(one)
    # One state event for each voucher whose state changed (8 here), and nothing else.
    assert AuditEvent.objects.count() - trail_before == 2 * 8
    if given == "objects":
        assert {v.source_reference: v.state for v in bulk} == {v.source_reference: v.state for v in singles}


def test_an_opted_out_voucher_queued_after_all_that_breaks_a_rule_fails_with_the_reason_as_one_by_one(db):
    """It was refused with IllegalTransition (opted out → failed was no legal move): a 500 from the admin's
    send action. Now both paths fail it with the reason, as any voucher that breaks a rule."""
    company = connected_company("Opted out")
    broken = (1930, "100.00", "0"), (3011, "0", "90.00")
    single = in_state(balanced_voucher(company, source_reference="one", rows=broken), S.OPTED_OUT)
    many = in_state(balanced_voucher(company, source_reference="many", rows=broken), S.OPTED_OUT)
    problems = voucher_queue(voucher=single, actor="test")
    result = vouchers_queue(vouchers=[many], actor="test")
    assert problems and result.failed == 1 and result.queued == 0
    for voucher in (single, many):
        voucher.refresh_from_db()
        assert voucher.state == S.FAILED and voucher.last_error == problems_text(problems)
        assert list(voucher.audit_events.values_list("action", flat=True)) == [f"state:{S.OPTED_OUT}->{S.FAILED}"]


def bulk_set(company, n: int, *, varied: bool = False) -> list[Voucher]:
    """``n`` vouchers: most send, some wait for a mapping, some break a rule (with one reason or, ``varied``,
    a reason of their own each), some are under way or posted."""
    made = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            made.append(waiting_voucher(company, f"w{i}"))
        elif kind == 1:
            credit = f"{90 - i % 50}.00" if varied else "90.00"
            made.append(balanced_voucher(company, source_reference=f"f{i}", rows=((1930, "100.00", "0"), (3011, "0", credit))))
        elif kind == 2 and i % 10 == 2:
            made.append(in_state(balanced_voucher(company, source_reference=f"p{i}"), S.POSTED))
        else:
            made.append(balanced_voucher(company, source_reference=f"ok{i}"))
    return made


def statements(vouchers, **kwargs) -> int:
    forget_plan_snapshots()
    with CaptureQueriesContext(connection) as queries:
        vouchers_queue(vouchers=vouchers, actor="test", kick=False)
    return len(queries)


@pytest.mark.parametrize("varied", [False, True], ids=["shared-reasons", "a-reason-each"])
@pytest.mark.parametrize("given", ["objects", "queryset"])
def test_statements_do_not_grow_with_the_vouchers(db, varied, given):
    small = [connected_company("Small A"), connected_company("Small B")]
    large = [connected_company("Large A"), connected_company("Large B")]
    few = [v for company in small for v in bulk_set(company, 5, varied=varied)]
    many = [v for company in large for v in bulk_set(company, 50, varied=varied)]
    if given == "queryset":
        few, many = (Voucher.objects.filter(company__in=companies) for companies in (small, large))
    assert statements(few) == statements(many)
    assert Voucher.objects.filter(company__in=large, state=S.QUEUED).count() == 50
    assert Voucher.objects.filter(company__in=large, state=S.FAILED).count() == 20
    assert Voucher.objects.filter(company__in=large, state=S.AWAITING_MAPPING).count() == 20


def test_statements_grow_with_the_chunks_only(db, monkeypatch):
    monkeypatch.setattr(voucher_services, "QUEUE_CHUNK", 20)
    one_chunk = bulk_set(connected_company("One chunk"), 20)
    five_chunks = bulk_set(connected_company("Five chunks"), 100)
    per_chunk = statements(one_chunk)
    assert statements(five_chunks) <= 5 * per_chunk
    assert Voucher.objects.filter(state=S.DRAFT).count() == 0


def test_a_queryset_by_state_is_read_a_chunk_at_a_time_without_skipping_any(db, monkeypatch):
    # Queueing takes vouchers out of "draft": paging by offset would skip every other chunk.
    monkeypatch.setattr(voucher_services, "QUEUE_CHUNK", 10)
    company = connected_company("Drafts")
    made = [balanced_voucher(company, source_reference=f"d{i}") for i in range(35)]
    with CaptureQueriesContext(connection) as queries:
        result = vouchers_queue(vouchers=Voucher.objects.filter(state=S.DRAFT), actor="test", kick=False)
    assert result.queued == 35 and result.skipped == 0
    assert not Voucher.objects.filter(state=S.DRAFT).exists()
    assert AuditEvent.objects.filter(action="state:draft->queued").count() == len(made)
    # The ids are read ten at a time (four pages), never all at once.
    pages = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" not in q["sql"] and "LIMIT 10" in q["sql"]]
    assert len(pages) == 4


def test_one_kick_per_system_once_committed(db, monkeypatch, django_capture_on_commit_callbacks):
    kicks = []
    monkeypatch.setattr(voucher_services, "_kick", kicks.append)
    companies = [connected_company("Kick A"), connected_company("Kick B")]
    vouchers = [balanced_voucher(company) for company in companies for _ in range(30)]
    with django_capture_on_commit_callbacks(execute=True):
        result = vouchers_queue(vouchers=vouchers, actor="test")
        assert kicks == []  # not before the queued vouchers are committed
    assert result.queued == 60
    assert kicks == ["fortnox"]
