"""SIE 4E export of what was posted to Fortnox for a company and period."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO, NamedTuple

from bookkeeping import sie

from ..models import Voucher, VoucherRow, VoucherState
from ..selectors.plans import plan_snapshot

CENT = Decimal("0.01")
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


CHUNK = 5000  # rows fetched per round trip from the server-side cursor


class _Row(NamedTuple):
    account: str
    debit: Decimal
    credit: Decimal
    cost_centre: str
    project: str
    text: str
    source_key: str


def _posted(company, date_from: dt.date, date_to: dt.date):
    return Voucher.objects.filter(company=company, system="fortnox", state=VoucherState.POSTED,
                                  date__gte=date_from, date__lte=date_to)


def _sie_vouchers(vouchers) -> Iterator[sie.SieVoucher]:
    """The posted vouchers in the file's order with their rows: one query, read from a server-side cursor
    (PostgreSQL) a chunk at a time; a voucher is complete when the next one's rows begin."""
    found = (VoucherRow.objects.filter(voucher__in=vouchers)
             .order_by("voucher__remote_series", "voucher__date", "voucher_id", "position", "id")
             .values_list("voucher_id", "voucher__remote_series", "voucher__series", "voucher__remote_number",
                          "voucher__date", "voucher__description", *_Row._fields))
    head, rows = None, []
    for voucher_id, remote_series, series, remote_number, day, description, *values in found.iterator(CHUNK):
        if head is None or head[0] != voucher_id:
            if head is not None:
                yield _sie_voucher(head, rows)
            head, rows = (voucher_id, remote_series, series, remote_number, day, description), []
        r = _Row(*values)
        objects = (("1", r.cost_centre),) if r.cost_centre else ()
        if r.project:
            objects += (("6", r.project),)
        rows.append(sie.SieRow(account=str(r.account), amount=(r.debit - r.credit).quantize(CENT), objects=objects,
                               text=transaction_text(r)))
    if head is not None:
        yield _sie_voucher(head, rows)


def _sie_voucher(head: tuple, rows: list) -> sie.SieVoucher:
    _pk, remote_series, series, remote_number, day, description = head
    return sie.SieVoucher(series=remote_series or series, number=remote_number, date=day, text=description,
                          rows=tuple(rows))


def sie_export_write(*, company, date_from: dt.date, date_to: dt.date, out: BinaryIO) -> int:
    """Write what was posted to Fortnox for a company and period to ``out`` as a SIE 4E file (PC8, no
    #KSUMMA), streamed: the accounts and objects used come from one query, the vouchers with their rows
    from another read a chunk at a time, so memory stays flat however many there are. Returns the
    number of vouchers written. ``SieError`` if a stored voucher cannot be written, or one has no rows
    (write to a temporary file; keep it only on success)."""
    vouchers = _posted(company, date_from, date_to)
    used = set(VoucherRow.objects.filter(voucher__in=vouchers).order_by()
               .values_list("account", "cost_centre", "project").distinct())
    used_accounts = {account for account, _cc, _project in used}
    used_objects = {("1", cc) for _account, cc, _project in used if cc}
    used_objects |= {("6", project) for _account, _cc, project in used if project}
    plan = plan_snapshot(company, "fortnox")
    year = plan.financial_year_for(date_from)
    accounts = {str(n): a.name for n, a in plan.accounts.items()}
    written = sie.write_stream(
        out, vouchers=_sie_vouchers(vouchers), used_accounts=used_accounts, used_objects=used_objects,
        company_name=company.name, org_number=company.org_number, fiscal_year=(year[0], year[1]) if year else None,
        accounts=accounts, objects={obj: obj[1] for obj in used_objects}, text_limit=TEXT_LIMIT,
    )
    expected = vouchers.count()
    if written != expected:  # a posted voucher without rows: the file would miss it
        raise sie.SieError([(0, f"{expected - written} posted vouchers of the period have no rows")])
    return written


def sie_export(*, company, date_from: dt.date, date_to: dt.date) -> bytes:
    """``sie_export_write`` into memory, for a small period (tests, a quick look)."""
    out = io.BytesIO()
    sie_export_write(company=company, date_from=date_from, date_to=date_to, out=out)
    return out.getvalue()
