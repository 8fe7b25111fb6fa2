"""Sending a batch at a time, many companies at once (issue 15): the batches of several companies in flight
in threads, each company's vouchers still in order, each posted once; a batch that stops gives back what
it did not send, as it was. Speed itself is measured by bench/fortnox_push.py."""

from __future__ import annotations

import pytest
from django.utils import timezone

from bench.books import fortnox_company
from bookkeeping.models import AuditEvent, Voucher, VoucherState
from bookkeeping.services import send_batches
from bookkeeping.services.sending import CompanyTurn, voucher_send, vouchers_dispatch
from bookkeeping.services.vouchers import voucher_queue
from integrations.base import Deferred
from integrations.fortnox.connector import FortnoxConnector
from tests.conftest import FORTNOX_CLIENT, FORTNOX_REDIRECT, ON_POSTGRES
from tests.factories import balanced_voucher

ROWS = ((1930, "100.00", "0"), (1510, "0", "100.00"))
S = VoucherState


def _queued(company, count: int, prefix: str) -> list[Voucher]:
    vouchers = [balanced_voucher(company, rows=ROWS, source_reference=f"{prefix}{n}", date=timezone.localdate(),
                                 series="A") for n in range(count)]
    for voucher in vouchers:
        assert voucher_queue(voucher=voucher, actor="test", kick=False) == []
    return vouchers


# SQLite's in-memory test database shares one cache between connections, where a locked table is refused at
# once instead of waited for: the threads run on PostgreSQL here (and on a SQLite file in bench/fault_campaign.py).
@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (run with DATABASE_URL=postgres://…)")
@pytest.mark.django_db(transaction=True)
def test_the_batches_of_several_companies_go_out_side_by_side_in_threads_each_company_in_order(
        fortnox_sandbox, settings, monkeypatch):
    settings.KONTERA_SEND_THREADS = 3
    # Real time here: on the one virtual clock, each thread's sleeps would move the others' slots into the past.
    import time

    import integrations.http as http
    from integrations import ratelimit

    monkeypatch.setattr(ratelimit, "time", time)
    monkeypatch.setattr(http, "time", time)
    monkeypatch.setattr(send_batches, "BATCH", 4)
    threads, connected = set(), []
    post = FortnoxConnector.post_voucher

    def posted_from(self, voucher):
        import threading

        from django.db import connection

        threads.add(threading.current_thread().name)
        connected.append(connection.connection is not None)
        return post(self, voucher)

    monkeypatch.setattr(FortnoxConnector, "post_voucher", posted_from)
    claim, held = send_batches.lane_claim, []

    def claimed(*args, **kwargs):  # in the dispatcher's thread: how many companies it holds now
        from bookkeeping.models import DispatchLease

        held.append(DispatchLease.objects.filter(expires_at__gt=timezone.now()).exclude(holder="").count())
        return claim(*args, **kwargs)

    monkeypatch.setattr(send_batches, "lane_claim", claimed)
    companies = [fortnox_company(fortnox_sandbox, tenant=5_000_000 + n, name=f"Lane {n} AB", slug=f"lane-{n}",
                                 org_number=f"556100-{n:04d}", client=FORTNOX_CLIENT[0], redirect=FORTNOX_REDIRECT,
                                 actor="test") for n in range(4)]
    queued = {company.pk: _queued(company, 10, f"L{company.pk}-") for company in companies}

    result = vouchers_dispatch(max_seconds=120)

    assert result.posted == 40 and result.sent == 40
    assert max(held) == 3  # no more companies than threads (4 due, 3 threads): none waits for a thread
    assert len(threads) > 1 and all(name.startswith("send-lane-") for name in threads)
    # claimed and recorded by the dispatcher, paced on slots reserved ahead: a posting thread holds no connection
    assert connected == [False] * 40
    for company in companies:
        vouchers = Voucher.objects.filter(company=company).order_by("id")
        assert {v.state for v in vouchers} == {S.POSTED}
        landed = fortnox_sandbox.vouchers(5_000_000 + companies.index(company))
        assert sorted(v.comments for v in landed) == sorted(f"({v.reference})" for v in queued[company.pk])  # once each
        # in the order we hold them: their numbers in the series rise with our ids
        assert [int(v.remote_number) for v in vouchers] == sorted(int(v.remote_number) for v in vouchers)
        for voucher in vouchers:
            assert voucher.attempts == 1 and voucher.pending_since is None and voucher.remote_id
            assert list(voucher.audit_events.order_by("id").values_list("action", flat=True)) == [
                "state:draft->queued", "state:queued->sending", "state:sending->posted"]
    assert not any(r.status == 429 for r in fortnox_sandbox.log)


class _StaleLease:
    def fresh(self) -> bool:
        return False


class _LapsingLease:
    """Fresh for the claim and ``fresh_for`` posts, stale after."""

    def __init__(self, fresh_for: int):
        self.left = fresh_for + 1

    def fresh(self) -> bool:
        self.left -= 1
        return self.left >= 0


def test_no_post_leaves_once_the_leases_were_not_renewed_for_half_their_life(connected_fortnox, fortnox_sandbox):
    """A dispatcher cut off from the database may have lost the company: it sends nothing more, and gives the
    claimed vouchers back as they were (no attempt counted, no unknown outcome to look up)."""
    vouchers = _queued(connected_fortnox.company, 3, "S")
    result = send_batches.lane_send([v.pk for v in vouchers], turn=CompanyTurn(), send_single=voucher_send, lease=_StaleLease())
    assert result.outcomes == [] and result.give_back  # nothing claimed: the dispatcher stops
    lease = _LapsingLease(fresh_for=1)  # fresh when the batch is claimed, stale after the first post
    result = send_batches.lane_send([v.pk for v in vouchers], turn=CompanyTurn(), send_single=voucher_send, lease=lease)
    assert result.outcomes == ["posted"]
    assert len(fortnox_sandbox.vouchers(1046823)) == 1
    first, *rest = Voucher.objects.order_by("id")
    assert first.state == S.POSTED
    for voucher in rest:
        assert (voucher.state, voucher.attempts, voucher.pending_since) == (S.QUEUED, 0, None)
        assert voucher.audit_events.filter(action="state:sending->queued").count() == 1


def test_a_limit_that_frees_too_late_ends_the_batch_and_the_rest_waits_for_it(connected_fortnox, fortnox_sandbox,
                                                                              monkeypatch):
    vouchers = _queued(connected_fortnox.company, 5, "D")
    post, calls = FortnoxConnector.post_voucher, []

    def third_deferred(self, voucher):
        calls.append(voucher.reference)
        if len(calls) == 3:
            raise Deferred("Fortnox's request limit frees in 40 s; sent then.", retry_after=40, code="rate_limited")
        return post(self, voucher)

    monkeypatch.setattr(FortnoxConnector, "post_voucher", third_deferred)
    result = send_batches.lane_send([v.pk for v in vouchers], turn=CompanyTurn(), send_single=voucher_send)
    assert sorted(result.outcomes) == ["deferred", "posted", "posted"] and result.give_back
    assert len(calls) == 3  # nothing was tried after the limit said "later"
    states = {v.pk: v for v in Voucher.objects.all()}
    assert [states[v.pk].state for v in vouchers] == [S.POSTED, S.POSTED, S.QUEUED, S.QUEUED, S.QUEUED]
    later = timezone.now() + timezone.timedelta(seconds=30)
    for voucher in vouchers[2:]:
        waiting = states[voucher.pk]
        assert waiting.pending_since is None and waiting.attempts == 0
        assert waiting.next_attempt_at and waiting.next_attempt_at > later  # all wait for the limit
    assert AuditEvent.objects.filter(action="state:sending->queued").count() == 3
    assert len(fortnox_sandbox.vouchers(1046823)) == 2


def test_a_voucher_whose_earlier_outcome_is_unknown_is_looked_up_not_batched(connected_fortnox, fortnox_sandbox):
    first, second = _queued(connected_fortnox.company, 2, "U")
    Voucher.objects.filter(pk=first.pk).update(pending_since=timezone.now() - timezone.timedelta(minutes=5))
    result = send_batches.lane_send([first.pk, second.pk], turn=CompanyTurn(), send_single=voucher_send)
    assert sorted(result.outcomes) == ["posted", "posted"]
    assert AuditEvent.objects.filter(voucher=first, action="remote:lookup").count() == 1
    assert not AuditEvent.objects.filter(voucher=second, action="remote:lookup").exists()
    assert len(fortnox_sandbox.vouchers(1046823)) == 2


def test_a_dispatcher_whose_leases_were_not_renewed_lately_ends_without_claiming(connected_fortnox, fortnox_sandbox,
                                                                                 monkeypatch):
    """Before a batch is claimed, not only before each post: otherwise a dispatcher cut off from the database
    would claim and give back the same vouchers over and over, an audit event each time."""
    from bookkeeping.models import DispatchLease
    from bookkeeping.services.dispatchers import LeaseKeeper

    _queued(connected_fortnox.company, 3, "K")
    monkeypatch.setattr(LeaseKeeper, "fresh", lambda self: False)
    result = vouchers_dispatch(max_seconds=30)
    assert (result.sent, result.posted) == (0, 0)
    assert set(Voucher.objects.values_list("state", flat=True)) == {S.QUEUED}
    assert not AuditEvent.objects.filter(action__startswith="state:queued->").exists()
    assert not DispatchLease.objects.filter(expires_at__gt=timezone.now()).exists()
    assert fortnox_sandbox.vouchers(1046823) == []


def test_posting_threads_that_need_the_database_run_at_most_so_many_at_once():
    """A Dinero document is paced request by request in the database, and a single send writes there: such
    batches hold a connection while they run, so a worker runs at most ``database_threads`` of them at once
    (PostgreSQL's max_connections); batches posted at reserved slots are not held back by them."""
    import threading
    import time

    def run(database: bool) -> int:
        lanes, running, most, lock = send_batches.Lanes(6, database_threads=2), [0], [0], threading.Lock()

        def job():
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.2)
            with lock:
                running[0] -= 1
            return "done"

        for n in range(6):
            lanes.submit(n, job, database=database)
        ended = lanes.close()
        assert sorted(key for key, ok, result in ended if ok and result == "done") == list(range(6))
        return most[0]

    assert run(database=True) == 2
    assert run(database=False) > 2
