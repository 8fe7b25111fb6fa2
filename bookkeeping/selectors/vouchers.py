from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from integrations.models import Integration, IntegrationStatus

from ..models import Company, DispatchLease, Voucher, VoucherState


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
    qs = Voucher.objects.filter(state=VoucherState.SENDING, pending_since__lt=older_than)
    if unleased_at is not None:
        qs = qs.exclude(company_id__in=DispatchLease.objects.filter(expires_at__gt=unleased_at).values("company_id"))
    return qs


def companies_with_due_vouchers(*, system: str | None = None, free_at=None, exclude=()) -> list[int]:
    """Companies with vouchers due now, the one served least recently first (never served: first of all);
    with ``free_at``, only those whose dispatch lease has lapsed by then (nobody sends for them).

    Served in turn, not by the age of their vouchers: ordered by voucher age, the company with the
    oldest backlog was claimed again after every slice and the others waited (issue 8, the campaign's
    UNSETTLED vouchers). One row per company, from the companies table with an EXISTS per company on
    the (state, company) index, so a claim reads a few hundred rows, not the whole queue."""
    due = dispatchable_vouchers(system=system).filter(company_id=OuterRef("pk"))
    qs = Company.objects.filter(Exists(due))
    if free_at is not None:
        qs = qs.exclude(Exists(DispatchLease.objects.filter(company_id=OuterRef("pk"), expires_at__gt=free_at)))
    if exclude:
        qs = qs.exclude(pk__in=list(exclude))
    return list(qs.order_by(F("dispatch_lease__claimed_at").asc(nulls_first=True), "pk").values_list("pk", flat=True))


def landed_elsewhere(voucher: Voucher, *, day) -> frozenset[tuple[str, str]]:
    """(series, number) where the company's other vouchers of that posting date landed in the target, as
    their post answers said: a look-up for ``voucher`` need not read those (``VoucherDTO.known_elsewhere``)."""
    return frozenset(
        Voucher.objects.filter(company_id=voucher.company_id, system=voucher.system, date=day)
        .exclude(pk=voucher.pk).exclude(remote_number="")
        .values_list("remote_series", "remote_number"))
