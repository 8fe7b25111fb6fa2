"""Reads for the error inbox: failed vouchers grouped by their stored error code (index voucher_state_company_idx)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet

from ..models import Voucher, VoucherState


@dataclass(frozen=True)
class FailureGroup:
    system: str
    code: str
    count: int
    companies: int


def failed_vouchers(company_ids=None) -> QuerySet[Voucher]:
    vouchers = Voucher.objects.filter(state=VoucherState.FAILED)
    return vouchers if company_ids is None else vouchers.filter(company_id__in=company_ids)


def failure_groups(company_ids=None) -> list[FailureGroup]:
    """One row per (target system, error code), biggest first."""
    rows = (failed_vouchers(company_ids).values("system", "last_error_code")
            .annotate(n=Count("id"), companies=Count("company_id", distinct=True)).order_by("-n", "system",
                                                                                          "last_error_code"))
    return [FailureGroup(row["system"], row["last_error_code"], row["n"], row["companies"]) for row in rows]


def group_vouchers(company_ids, *, system: str, code: str, limit: int | None = 50) -> QuerySet[Voucher]:
    vouchers = (failed_vouchers(company_ids).filter(system=system, last_error_code=code)
                .select_related("company").order_by("company__name", "date", "id"))
    return vouchers[:limit] if limit else vouchers
