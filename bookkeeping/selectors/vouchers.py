from __future__ import annotations

from collections import OrderedDict

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


def round_robin_batch(*, system: str | None = None, slot: int = 0, slots: int = 1, per_company: int = 25) -> list[int]:
    """Voucher ids interleaved across companies (A1, B1, C1, A2, B2 …) for one dispatch slot.

    The companies with work are dealt out over the slots in turn, so concurrent workers serve
    different companies, each at its own target's pace.
    """
    by_company: OrderedDict[int, list[int]] = OrderedDict()
    for voucher_id, company_id in dispatchable_vouchers(system=system).values_list("id", "company_id"):
        bucket = by_company.setdefault(company_id, [])
        if len(bucket) < per_company:
            bucket.append(voucher_id)
    if slots > 1:
        mine = sorted(by_company)[slot::slots]
        by_company = OrderedDict((company_id, by_company[company_id]) for company_id in mine)
    batch: list[int] = []
    queues = list(by_company.values())
    while queues:
        next_round = []
        for queue in queues:
            batch.append(queue.pop(0))
            if queue:
                next_round.append(queue)
        queues = next_round
    return batch


def vouchers_stuck_sending(*, older_than) -> QuerySet[Voucher]:
    return Voucher.objects.filter(state=VoucherState.SENDING, pending_since__lt=older_than)
