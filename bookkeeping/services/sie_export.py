"""SIE 4E export of what was posted to Fortnox for a company and period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from bookkeeping import sie

from ..models import Voucher, VoucherState
from ..selectors.plans import plan_snapshot

TEXT_LIMIT = 50  # Fortnox's SIE import accepts at most 50 characters of text


def transaction_text(row) -> str:
    """The row's text, with what the source called it when that differs from the account (e.g. the
    category "Hyra bostad" booked on 3011), so a reader of the file sees both; the source value is
    kept whole and the text shortened when the limit is reached."""
    text = row.text or ""
    key = (row.source_key or "").strip()
    tag = f"[{key}]"
    if not key or key == str(row.account) or tag in text:
        return text
    if len(tag) >= TEXT_LIMIT:
        return tag[:TEXT_LIMIT]
    room = TEXT_LIMIT - len(tag) - (1 if text else 0)
    return f"{text[:room]} {tag}" if text else tag


def sie_export(*, company, date_from: dt.date, date_to: dt.date) -> bytes:
    """What was posted to Fortnox for a company and period, as a SIE 4E file (PC8, no #KSUMMA)."""
    vouchers = (Voucher.objects.filter(company=company, system="fortnox", state=VoucherState.POSTED,
                                       date__gte=date_from, date__lte=date_to)
                .prefetch_related("rows").order_by("remote_series", "date", "id"))
    plan = plan_snapshot(company, "fortnox")
    sie_vouchers = []
    used_objects = {}
    for voucher in vouchers:
        rows = []
        for r in voucher.rows.all():
            objects = []
            if r.cost_centre:
                objects.append(("1", r.cost_centre))
                used_objects[("1", r.cost_centre)] = r.cost_centre
            if r.project:
                objects.append(("6", r.project))
                used_objects[("6", r.project)] = r.project
            rows.append(sie.SieRow(account=str(r.account), amount=(r.debit - r.credit).quantize(Decimal("0.01")),
                                   objects=tuple(objects), text=transaction_text(r)))
        sie_vouchers.append(sie.SieVoucher(
            series=voucher.remote_series or voucher.series, number=voucher.remote_number,
            date=voucher.date, text=voucher.description, rows=tuple(rows)))
    year = plan.financial_year_for(date_from)
    accounts = {str(n): a.name for n, a in plan.accounts.items()}
    return sie.write(
        vouchers=sie_vouchers, company_name=company.name, org_number=company.org_number,
        fiscal_year=(year[0], year[1]) if year else None, accounts=accounts, objects=used_objects,
        text_limit=TEXT_LIMIT,
    )
