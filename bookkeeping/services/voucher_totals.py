"""The stored debit and credit totals of vouchers, kept equal to the sums of their rows.

Every service that writes voucher rows calls one of these in the same transaction as the rows:
the lists read the stored totals instead of joining a million vouchers' rows (issue 15).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from ..models import Voucher, VoucherRow

ZERO = Decimal("0.00")
# SQLite takes at most 32,766 values in one query; a chunk of ids stays far below.
CHUNK = 5000


def _row_sum(column: str) -> Coalesce:
    summed = (VoucherRow.objects.filter(voucher_id=OuterRef("pk")).order_by().values("voucher_id")
              .annotate(total=Sum(column)).values("total"))
    return Coalesce(Subquery(summed), Value(ZERO), output_field=DecimalField(max_digits=16, decimal_places=2))


def vouchers_totals_refresh(*, voucher_ids: Iterable[int]) -> None:
    """Sum the rows of these vouchers into their stored totals (one UPDATE per 5,000 vouchers)."""
    ids = sorted({pk for pk in voucher_ids if pk is not None})
    for start in range(0, len(ids), CHUNK):
        Voucher.objects.filter(pk__in=ids[start:start + CHUNK]).update(
            debit_total=_row_sum("debit"), credit_total=_row_sum("credit"))


def voucher_totals_refresh(*, voucher: Voucher) -> None:
    """The same for one voucher, and the instance in memory follows (a later ``save()`` keeps them)."""
    vouchers_totals_refresh(voucher_ids=[voucher.pk])
    voucher.debit_total, voucher.credit_total = (
        Voucher.objects.filter(pk=voucher.pk).values_list("debit_total", "credit_total").get())


def rows_totals(rows: Iterable[dict]) -> tuple[Decimal, Decimal]:
    """The totals of rows given as field values (bulk writes that set them while inserting)."""
    debit = credit = ZERO
    for row in rows:
        debit += Decimal(row.get("debit") or ZERO)
        credit += Decimal(row.get("credit") or ZERO)
    return debit, credit
