import itertools

import pytest

from bookkeeping.models import AuditEvent, VoucherState
from bookkeeping.services.vouchers import TRANSITIONS, IllegalTransition, voucher_queue, voucher_transition
from tests.factories import CompanyFactory, IntegrationFactory, balanced_voucher, fortnox_plan

ALL = list(VoucherState.values)


@pytest.mark.parametrize("source,target", list(itertools.product(ALL, ALL)))
def test_every_transition_is_legal_or_raises(db, source, target):
    voucher = balanced_voucher()
    voucher.state = source
    voucher.save()
    if target in TRANSITIONS[source]:
        voucher_transition(voucher=voucher, to=target, actor="test")
        voucher.refresh_from_db()
        assert voucher.state == target
        event = AuditEvent.objects.filter(voucher=voucher).latest("id")
        assert event.action == f"state:{source}->{target}"
    else:
        with pytest.raises(IllegalTransition):
            voucher_transition(voucher=voucher, to=target, actor="test")
        voucher.refresh_from_db()
        assert voucher.state == source
        assert not AuditEvent.objects.filter(voucher=voucher).exists()


def test_posted_is_final_except_for_updates():
    assert TRANSITIONS[VoucherState.POSTED] == {VoucherState.NEEDS_UPDATE}


def test_queue_refuses_a_voucher_that_breaks_a_rule(db):
    company = CompanyFactory()
    fortnox_plan(company)
    IntegrationFactory(company=company)
    voucher = balanced_voucher(company, rows=((1930, "100.00", "0"), (3011, "0", "90.00")))
    problems = voucher_queue(voucher=voucher, actor="test")
    voucher.refresh_from_db()
    assert [p.code for p in problems] == ["unbalanced"]
    assert voucher.state == VoucherState.FAILED
    assert "differ by 10.00" in voucher.last_error
    trail = AuditEvent.objects.filter(voucher=voucher).latest("id")
    assert trail.outcome == "error" and "differ by 10.00" in trail.message


def test_queue_accepts_a_good_voucher(db, django_capture_on_commit_callbacks):
    company = CompanyFactory()
    fortnox_plan(company)
    IntegrationFactory(company=company, status="paused")  # paused: nothing is sent by the kick
    voucher = balanced_voucher(company)
    with django_capture_on_commit_callbacks(execute=True):
        assert voucher_queue(voucher=voucher, actor="test") == []
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED


def test_audit_events_are_append_only(db):
    voucher = balanced_voucher()
    voucher_transition(voucher=voucher, to=VoucherState.QUEUED, actor="test")
    event = AuditEvent.objects.get(voucher=voucher)
    event.message = "rewritten"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
