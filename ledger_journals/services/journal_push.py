"""Sending the selected journals to Fortnox: they are queued in the core's voucher state machine."""

from __future__ import annotations

import datetime as dt

from bookkeeping.models import VoucherState
from bookkeeping.services.audit import Actor
from bookkeeping.services.vouchers import QueueResult, vouchers_queue

from ..selectors import journals_selection


def journals_push(*, company, references=None, day: dt.date | None = None, everything: bool = False,
                  actor: Actor = None) -> QueueResult:
    vouchers = journals_selection(company=company, references=references, day=day, everything=everything)
    return vouchers_queue(vouchers=vouchers.exclude(state=VoucherState.POSTED), actor=actor)
