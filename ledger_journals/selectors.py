"""Reads of the property-ledger flow: journals as the guide selects them."""

from __future__ import annotations

import datetime as dt

from bookkeeping.models import Voucher, VoucherKind


def journals_selection(*, company, references=None, day: dt.date | None = None, everything: bool = False):
    """Journals as the guide selects them: by owner (all), by date, or single journals."""
    qs = Voucher.objects.filter(company=company, kind=VoucherKind.JOURNAL, system="fortnox")
    if references:
        qs = qs.filter(source_reference__in=references)
    if day:
        qs = qs.filter(date=day)
    if not (references or day or everything):
        return qs.none()
    return qs.order_by("date", "id")
