"""Dispatch leases (issue 8 causes 3–4, issue 12 several nodes): one dispatcher per company, short
leases, and an interrupted send recovered within a lease's life, looked up before any new post."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from bookkeeping.models import DispatchLease, Voucher, VoucherState
from bookkeeping.services import dispatchers
from bookkeeping.services.dispatchers import kick_dispatch, lease_claim, lease_release, lease_renew
from bookkeeping.services.sending import vouchers_dispatch, vouchers_recover_stuck
from bookkeeping.services.vouchers import voucher_queue
from tests.factories import CompanyFactory, IntegrationFactory, balanced_voucher

ROWS = ((1930, "100.00", "0"), (1510, "0", "100.00"))


def test_a_lease_has_one_holder_until_it_lapses(company):
    assert lease_claim(company_id=company.pk, holder="node-a:1:x")
    assert not lease_claim(company_id=company.pk, holder="node-b:2:y")
    assert lease_claim(company_id=company.pk, holder="node-a:1:x")  # its own again: renewed
    DispatchLease.objects.filter(company=company).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert lease_claim(company_id=company.pk, holder="node-b:2:y")  # lapsed: anyone may take it
    assert DispatchLease.objects.get(company=company).holder == "node-b:2:y"
    lease_release(holder="node-b:2:y", company_id=company.pk)
    assert lease_claim(company_id=company.pk, holder="node-a:1:x")


def test_a_lease_lives_seconds_and_renewal_extends_it(company, settings):
    settings.KONTERA_DISPATCH_LEASE_SECONDS = 30
    before = timezone.now()
    assert lease_claim(company_id=company.pk, holder="a")
    lease = DispatchLease.objects.get(company=company)
    assert dt.timedelta(seconds=29) <= lease.expires_at - before <= dt.timedelta(seconds=31)
    DispatchLease.objects.filter(company=company).update(expires_at=before + dt.timedelta(seconds=5))
    assert lease_renew(holder="a") == 1 and lease_renew(holder="b") == 0
    assert DispatchLease.objects.get(company=company).expires_at - before >= dt.timedelta(seconds=29)


def test_a_lease_given_back_is_not_renewed_by_its_former_holder(company):
    """The keeper renews every lease of its holder; one the dispatcher gave back must stay free (before:
    it was renewed until the dispatcher ended, so each company got one turn per dispatcher run)."""
    assert lease_claim(company_id=company.pk, holder="a")
    lease_release(holder="a", company_id=company.pk)
    assert lease_renew(holder="a") == 0
    assert DispatchLease.objects.get(company=company).expires_at <= timezone.now()
    assert lease_claim(company_id=company.pk, holder="b")


def test_a_dispatcher_leaves_a_company_another_one_holds(connected_fortnox, fortnox_sandbox):
    company = connected_fortnox.company
    voucher = balanced_voucher(company, rows=ROWS, source_reference="L1", date=timezone.localdate())
    assert voucher_queue(voucher=voucher, actor="test") == []
    assert lease_claim(company_id=company.pk, holder="other-node:9:zz")
    result = vouchers_dispatch(max_seconds=10)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED and result.sent == 0
    assert fortnox_sandbox.vouchers(1046823) == []
    lease_release(holder="other-node:9:zz")
    vouchers_dispatch(max_seconds=10)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED and len(fortnox_sandbox.vouchers(1046823)) == 1
    assert DispatchLease.objects.get(company=company).expires_at <= timezone.now()  # given back


def test_a_killed_dispatchers_send_is_recovered_within_a_lease_and_looked_up_first(connected_fortnox,
                                                                                  fortnox_sandbox, settings):
    """Before: a voucher left in 'sending' waited 10 minutes for the sweep. Now: once its company's lease
    lapsed (seconds) it is queued again, keeps its unknown-outcome marker, and is found, not posted twice."""
    settings.KONTERA_DISPATCH_LEASE_SECONDS = 30
    company = connected_fortnox.company
    voucher = balanced_voucher(company, rows=ROWS, source_reference="K1", date=timezone.localdate())
    assert voucher_queue(voucher=voucher, actor="test") == []
    fortnox_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/3/vouchers")
    vouchers_dispatch(max_seconds=10)
    assert len(fortnox_sandbox.vouchers(1046823)) == 1  # it landed; the answer was lost
    # The worker "dies" in the middle of its next attempt: 'sending', its lease still held by it.
    started = timezone.now() - dt.timedelta(seconds=40)
    Voucher.objects.filter(pk=voucher.pk).update(state=VoucherState.SENDING, pending_since=started)
    DispatchLease.objects.update_or_create(company=company, defaults={
        "holder": "dead-node:1:aa", "claimed_at": started, "expires_at": timezone.now() + dt.timedelta(seconds=20)})
    assert vouchers_recover_stuck() == 0  # a live lease: its holder may still be waiting for the answer
    DispatchLease.objects.filter(company=company).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert vouchers_recover_stuck() == 1  # lapsed: recovered at once, not after ten minutes
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED and voucher.pending_since is not None
    Voucher.objects.filter(pk=voucher.pk).update(next_attempt_at=None)
    vouchers_dispatch(max_seconds=10)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED
    assert len(fortnox_sandbox.vouchers(1046823)) == 1


def test_a_send_shorter_than_a_lease_is_left_alone(company):
    voucher = balanced_voucher(company, rows=ROWS, source_reference="S1", date=timezone.localdate())
    Voucher.objects.filter(pk=voucher.pk).update(state=VoucherState.SENDING,
                                                 pending_since=timezone.now() - dt.timedelta(seconds=5))
    assert vouchers_recover_stuck() == 0


@pytest.fixture
def queued_tasks(monkeypatch, db):
    calls = []
    monkeypatch.setattr(dispatchers, "async_task", lambda *args, **kwargs: calls.append(args))
    from django.core.cache import cache

    cache.clear()
    return calls


def _due_company(n: int):
    company = CompanyFactory()
    IntegrationFactory(company=company, system="fortnox", status="active")
    voucher = balanced_voucher(company, rows=ROWS, source_reference=f"C{n}", date=timezone.localdate())
    Voucher.objects.filter(pk=voucher.pk).update(state=VoucherState.QUEUED)
    return company


def test_kick_queues_dispatchers_for_free_companies_only_a_few_at_a_time(queued_tasks):
    assert kick_dispatch() == 0  # nothing due
    companies = [_due_company(n) for n in range(6)]
    assert kick_dispatch() == dispatchers.QUEUED_TICKETS  # bounded: each one that starts kicks again
    assert kick_dispatch() == 0  # their tickets are taken until they start
    for number in range(dispatchers.QUEUED_TICKETS):
        dispatchers.queued_ticket_return(number)
    for company in companies[:5]:
        assert lease_claim(company_id=company.pk, holder=f"busy-{company.pk}")
    assert kick_dispatch() == 1  # one company is free; the rest have their dispatchers
    assert all(args[0] == "bookkeeping.tasks.dispatch" for args in queued_tasks)


def _due_company_dated(n: int, day: dt.date):
    company = _due_company(n)
    Voucher.objects.filter(company=company).update(date=day)
    return company


def test_companies_are_claimed_in_turn_not_by_the_age_of_their_backlog(db):
    """Before: the company with the oldest due vouchers was claimed again after every slice while the
    others waited (the campaign's UNSETTLED vouchers). Now: the one served least recently goes first."""
    today = timezone.localdate()
    oldest = _due_company_dated(1, today - dt.timedelta(days=30))
    middle = _due_company_dated(2, today - dt.timedelta(days=10))
    newest = _due_company_dated(3, today)
    order = []
    for turn in range(6):
        company_id = dispatchers.lease_claim_next(holder=f"dispatcher-{turn}")
        order.append(company_id)
        lease_release(holder=f"dispatcher-{turn}", company_id=company_id)
    assert set(order[:3]) == {oldest.pk, middle.pk, newest.pk}  # each one once before anyone twice
    assert order[3:] == order[:3]  # and again in the same turn


def test_a_company_claimed_a_moment_ago_by_another_holder_is_skipped_until_it_lapses(db):
    first, second = _due_company(1), _due_company(2)
    assert lease_claim(company_id=first.pk, holder="node-a")
    assert dispatchers.lease_claim_next(holder="node-b") == second.pk
    assert dispatchers.lease_claim_next(holder="node-c") is None  # both held
    DispatchLease.objects.filter(company=first).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert dispatchers.lease_claim_next(holder="node-c") == first.pk


def test_a_dispatcher_sends_for_many_companies_at_once_a_batch_of_each_in_turn(
        connected_fortnox, fortnox_sandbox, monkeypatch):
    """Before: one company at a time, each voucher waiting for that company's pace (a worker capped at
    5 vouchers/s). Now: many companies held at once, a batch of each in flight (send_batches.Lanes)."""
    from bookkeeping.services import send_batches
    from bookkeeping.services.send_batches import LaneBatch

    monkeypatch.setattr(send_batches, "BATCH", 2)
    companies = [_due_company(n) for n in range(3)]
    for company in companies:
        for n in range(4):
            voucher = balanced_voucher(company, rows=ROWS, source_reference=f"T{company.pk}-{n}",
                                       date=timezone.localdate())
            Voucher.objects.filter(pk=voucher.pk).update(state=VoucherState.QUEUED)
    order, held_at_once = [], []

    def claim(voucher_ids, *, turn, lease=None, **kwargs):
        assert lease is not None and lease.fresh()  # each batch is told whose leases it sends under
        companies_of = set(Voucher.objects.filter(pk__in=voucher_ids).values_list("company_id", flat=True))
        assert len(companies_of) == 1 and len(voucher_ids) == 2  # one company's batch
        order.append(companies_of.pop())
        held_at_once.append(DispatchLease.objects.filter(expires_at__gt=timezone.now()).count())
        Voucher.objects.filter(pk__in=voucher_ids).update(state=VoucherState.POSTED)
        return LaneBatch(claimed=[], singles=[], outcomes=["posted"] * len(voucher_ids))

    monkeypatch.setattr(send_batches, "lane_claim", claim)
    result = vouchers_dispatch(max_seconds=30)
    assert result.posted == 12
    assert max(held_at_once) == 3  # all three held together
    assert sorted(order[:3]) == sorted(c.pk for c in companies)  # a batch of each before a second of any
    assert not DispatchLease.objects.filter(expires_at__gt=timezone.now()).exists()  # all given back
