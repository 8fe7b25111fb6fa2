from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from integrations.models import Integration, IntegrationStatus

from ..models import Voucher, VoucherState


def dispatchable_vouchers(*, system: str | None = None, company_ids=None) -> QuerySet[Voucher]:
    """Queued vouchers whose next attempt is due, oldest first.

    Vouchers whose connection is paused wait untouched; those without a usable authorisation
    are included so that sending moves them to 'awaiting authorisation'.
    """
    now = timezone.now()
    on_hold = Integration.objects.filter(
        company_id=OuterRef("company_id"), system=OuterRef("system"),
        status__in=[IntegrationStatus.PAUSED, IntegrationStatus.AWAITING_CONFIRMATION],
    )
    qs = Voucher.objects.filter(state=VoucherState.QUEUED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    ).exclude(Exists(on_hold))
    if system:
        qs = qs.filter(system=system)
    if company_ids is not None:
        qs = qs.filter(company_id__in=company_ids)
    return qs.order_by("date", "id")


def vouchers_stuck_sending(*, older_than, unleased_at=None) -> QuerySet[Voucher]:
    """Vouchers in 'sending' since before ``older_than``; with ``unleased_at``, only those whose company
    no dispatcher holds then (a live dispatcher may still be waiting for the answer)."""
    from ..models import DispatchLease

    qs = Voucher.objects.filter(state=VoucherState.SENDING, pending_since__lt=older_than)
    if unleased_at is not None:
        qs = qs.exclude(company_id__in=DispatchLease.objects.filter(expires_at__gt=unleased_at).values("company_id"))
    return qs


def companies_with_due_vouchers(*, system: str | None = None, free_at=None, exclude=()) -> list[int]:
    """Companies with vouchers due now, the longest waiting first; with ``free_at``, only those whose
    dispatch lease has lapsed by then (nobody sends for them)."""
    from ..models import DispatchLease

    qs = dispatchable_vouchers(system=system)
    if free_at is not None:
        qs = qs.exclude(company_id__in=DispatchLease.objects.filter(expires_at__gt=free_at).values("company_id"))
    if exclude:
        qs = qs.exclude(company_id__in=list(exclude))
    seen: dict[int, None] = {}
    for company_id in qs.order_by("date", "id").values_list("company_id", flat=True)[:5000]:
        seen.setdefault(company_id, None)
    return list(seen)
