"""Restoring an older backup never posts twice what the target already has."""

from django.core.management import call_command
from django.utils import timezone

from bookkeeping.models import Voucher, VoucherState
from bookkeeping.services.sending import vouchers_dispatch
from bookkeeping.services.vouchers import voucher_queue
from tests.factories import balanced_voucher

ROWS = ((1930, "100.00", "0"), (3011, "0", "100.00", "100"))


def test_a_voucher_sent_after_the_backup_is_found_not_posted_again(connected_fortnox, fortnox_sandbox):
    voucher = balanced_voucher(connected_fortnox.company, rows=ROWS, date=timezone.localdate(), series="A")
    assert voucher_queue(voucher=voucher, actor="test", kick=False) == []
    vouchers_dispatch(max_seconds=10)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED
    posted = len(fortnox_sandbox.vouchers(fortnox_sandbox.tenant_id))
    # The backup was taken while it was still queued: that is what the restored row says.
    Voucher.objects.filter(pk=voucher.pk).update(state=VoucherState.QUEUED, remote_id="", remote_number="",
                                                  remote_series="", remote_year="", posted_at=None,
                                                  pending_since=None, next_attempt_at=None)

    call_command("after_restore")
    vouchers_dispatch(max_seconds=10)

    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED and voucher.remote_id  # found by our reference
    assert len(fortnox_sandbox.vouchers(fortnox_sandbox.tenant_id)) == posted  # not posted twice
    newer = balanced_voucher(connected_fortnox.company, rows=ROWS)
    assert newer.pk >= voucher.pk + 1_000_000  # never the reference of one sent after the backup
