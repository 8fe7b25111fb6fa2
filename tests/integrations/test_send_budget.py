"""Issue 8, cause 5: one send never outlasts the task timeout, and one company's pause holds up no other.

Pacing waits and the pause after a 429 count against the dispatcher's budget. A wait that would go
past it, or a long pause (Dinero's 60 s after a 429), is not sat out: the voucher goes back to the
queue, due when the limit frees, honestly recorded, and the dispatcher goes on with other companies.
Run on the virtual clock (tests/conftest.py ``virtual_time``): waits advance the sandboxes' clock.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from bookkeeping.models import AuditEvent, Voucher, VoucherState
from bookkeeping.services.sending import vouchers_dispatch
from bookkeeping.services.vouchers import voucher_queue
from tests.dinero_fixtures import DINERO_ORG, expense
from tests.factories import balanced_voucher

DINERO_CREATE = f"/v1.2/{DINERO_ORG}/vouchers/purchase"


def _sync(document):
    from expense_documents.services.sync import expense_document_sync

    expense_document_sync(document=document, actor="test", kick=False)
    document.refresh_from_db()
    return document.voucher


def _journal(company, ref):
    voucher = balanced_voucher(company, rows=((1930, "10.00", "0"), (1510, "0", "10.00")), source_reference=ref,
                               series="A", date=timezone.localdate(), description=f"Journal {ref}")
    assert voucher_queue(voucher=voucher, actor="test", kick=False) == []
    return voucher


def _creates(sandbox):
    return [r for r in sandbox.received.find("POST", DINERO_CREATE) if r.path.endswith("/purchase")]


def test_a_dinero_429_defers_that_company_and_the_others_go_on(connected_dinero, dinero_sandbox, connected_fortnox,
                                                                fortnox_sandbox, virtual_time):
    first = _sync(expense(connected_dinero.company, "RL-1"))
    second = _sync(expense(connected_dinero.company, "RL-2"))
    journals = [_journal(connected_fortnox.company, f"J{n}") for n in range(3)]
    dinero_sandbox.faults.inject("status", status=429, method="POST", path_contains=DINERO_CREATE,
                                 body="Too Many Requests")
    started = virtual_time.clock.now()

    result = vouchers_dispatch(max_seconds=240)

    # The other company was not held up by Dinero's 60 s pause.
    assert virtual_time.clock.now() - started < 60
    assert all(Voucher.objects.get(pk=j.pk).state == VoucherState.POSTED for j in journals)
    assert len(fortnox_sandbox.vouchers(fortnox_sandbox.tenant_id)) == 3
    # The Dinero voucher went back to the queue, due when the limit frees; nothing left in 'sending'.
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == VoucherState.QUEUED and first.last_error_code == "rate_limited"
    assert first.attempts == 0  # a deferral is not a failed attempt
    assert first.pending_since is None  # a 429 created nothing
    free_at = first.next_attempt_at
    # (due when Dinero's 60 s pause ends: well after now, never later than the pause)
    assert timezone.now() + dt.timedelta(seconds=30) < free_at <= timezone.now() + dt.timedelta(seconds=61)
    assert second.state == VoucherState.QUEUED and second.next_attempt_at == free_at  # its company waits too
    assert not Voucher.objects.filter(state=VoucherState.SENDING).exists()
    assert result.deferred == 1 and result.posted == 3 and not result.remaining
    assert AuditEvent.objects.filter(voucher=first, action="state:sending->queued",
                                     message__contains="Given back").exists()
    assert len(_creates(dinero_sandbox)) == 1  # only the refused one, never tried again meanwhile
    assert dinero_sandbox.org.purchase_vouchers == {}

    # When the limit has freed, both go out, once each.
    virtual_time.clock.advance(60)
    Voucher.objects.filter(pk__in=[first.pk, second.pk]).update(next_attempt_at=timezone.now())
    vouchers_dispatch(max_seconds=240)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == second.state == VoucherState.POSTED, (first.last_error, second.last_error)
    assert len(dinero_sandbox.org.purchase_vouchers) == 2


def test_a_wait_past_the_budget_gives_the_voucher_back(connected_dinero, dinero_sandbox, virtual_time):
    # Six requests a minute (one each 12 s): a send needs five, so the budget runs out while pacing.
    connected_dinero.settings = {**connected_dinero.settings, "rate_limit_per_minute": 6}
    connected_dinero.save()
    dinero_sandbox.set_rate_limit(DINERO_ORG, 6)
    voucher = _sync(expense(connected_dinero.company, "SLOW-1"))
    budget = 45.0
    slept_before = len(virtual_time.sleeps)

    result = vouchers_dispatch(system="dinero", max_seconds=budget)

    assert sum(virtual_time.sleeps[slept_before:]) <= budget  # no wait went past the budget
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED and voucher.last_error_code == "rate_limited"
    assert voucher.next_attempt_at > timezone.now()
    assert result.deferred == 1
    assert not Voucher.objects.filter(state=VoucherState.SENDING).exists()
    # Whatever the send had done before it was given back, the next attempts finish it exactly once.
    for _ in range(12):
        voucher.refresh_from_db()
        if voucher.state != VoucherState.QUEUED:
            break
        virtual_time.clock.advance(60)
        Voucher.objects.filter(pk=voucher.pk).update(next_attempt_at=timezone.now())
        vouchers_dispatch(system="dinero", max_seconds=budget)
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    assert len(dinero_sandbox.org.purchase_vouchers) == 1


def test_fortnox_short_pause_is_waited_for_within_the_budget(connected_fortnox, fortnox_sandbox, virtual_time):
    """Fortnox pauses only its 5 s window after a 429: that is sat out, the voucher goes out at once."""
    voucher = _journal(connected_fortnox.company, "P1")
    fortnox_sandbox.faults.inject("status", status=429, method="POST", path_contains="/3/vouchers",
                                  body="Too Many Requests")
    vouchers_dispatch(max_seconds=240)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED and voucher.attempts == 1
