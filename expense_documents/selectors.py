"""Reads for expense documents: the sync state staff see, in words."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.utils.translation import gettext_lazy

from bookkeeping.models import VoucherState
from wording import Msg, text_of

from .models import ExpenseDocument

S = VoucherState
# Problems that make a document wait (a draft, never queued) rather than be refused.
WAITING_CODES = frozenset({"no_dkk_amount"})

STATE_LABELS = {
    "not_set_up": gettext_lazy("Dinero not set up"),
    "not_synced": gettext_lazy("Not synced yet"),
    "opted_out": gettext_lazy("Opted out"),
    "waiting": gettext_lazy("Waiting"),
    "queued": gettext_lazy("Queued"),
    "sending": gettext_lazy("Sending"),
    "synced": gettext_lazy("Synced to Dinero"),
    "changed": gettext_lazy("Changed — update pending"),
    "refused": gettext_lazy("Refused"),
    "awaiting_authorisation": gettext_lazy("Waiting for Dinero to be connected again"),
    "handled_outside": gettext_lazy("Handled outside Kontera"),
}
STATE_COLOURS = {
    "synced": "#2e7d32", "handled_outside": "#2e7d32", "refused": "#c62828", "waiting": "#ef6c00", "awaiting_authorisation": "#ef6c00",
    "changed": "#ef6c00", "queued": "#1565c0", "sending": "#1565c0",
}


@dataclass(frozen=True)
class SyncState:
    code: str
    detail: str = ""

    @property
    def label(self):
        return STATE_LABELS.get(self.code, self.code)

    @property
    def colour(self) -> str:
        return STATE_COLOURS.get(self.code, "#555")


def document_sync_state(document: ExpenseDocument) -> SyncState:
    """Where the document stands with Dinero, and why, in plain words."""
    voucher = document.voucher
    rule = document.opted_out_by
    if rule is not None and (voucher is None or voucher.state == S.OPTED_OUT):
        return SyncState("opted_out", Msg("Opted out of the sync by workflow rule “%(name)s”.", name=rule.name))
    if voucher is None:
        from integrations.models import Integration

        if not Integration.objects.filter(company_id=document.company_id, system="dinero").exists():
            return SyncState("not_set_up", Msg("Set up the Dinero integration for this company first."))
        return SyncState("not_synced", Msg("Not handed to the sync yet."))
    state = voucher.state
    error = text_of(voucher, "last_error")
    if document.needs_sync and state == S.POSTED:
        return SyncState("changed", Msg("Changed after it was synced; the update follows shortly."))
    if state == S.DRAFT:
        if voucher.last_error_code in WAITING_CODES:
            return SyncState("waiting", error)
        return SyncState("not_synced", error or Msg("Not queued yet."))
    if state == S.QUEUED:
        if voucher.last_error:
            return SyncState("queued", Msg("Will try again: %(error)s", error=error))
        return SyncState("changed" if voucher.remote_id else "queued",
                         Msg("Update queued.") if voucher.remote_id else Msg("Queued for Dinero."))
    if state == S.SENDING:
        return SyncState("sending", Msg("Being sent to Dinero."))
    if state == S.POSTED:
        number = voucher.remote_number
        detail = (Msg("Dinero voucher number %(number)s (%(status)s).", number=number, status=voucher.remote_status)
                  if number else Msg("Draft in Dinero (%(guid)s); book it there.", guid=voucher.remote_id))
        return SyncState("synced", detail)
    if state == S.NEEDS_UPDATE:
        if voucher.last_error_code in WAITING_CODES:
            return SyncState("waiting", error)
        return SyncState("changed", error or Msg("Changed after it was synced; the update is queued."))
    if state == S.FAILED:
        return SyncState("refused", error)
    if state == S.AWAITING_AUTHORISATION:
        return SyncState("awaiting_authorisation", error)
    if state == S.AWAITING_MAPPING:
        return SyncState("waiting", error)
    if state == S.OPTED_OUT:
        return SyncState("opted_out", Msg("Opted out of the sync."))
    if state == S.HANDLED_OUTSIDE:
        return SyncState("handled_outside", Msg("Handled outside Kontera (see the voucher's audit trail)."))
    return SyncState(state, error)


def documents_needing_sync(*, company_ids=None) -> QuerySet[ExpenseDocument]:
    qs = ExpenseDocument.objects.filter(needs_sync=True)
    if company_ids is not None:
        qs = qs.filter(company_id__in=company_ids)
    return qs.order_by("company_id", "document_date", "id")


def documents_on_error_account(company_ids=None) -> dict[int, int]:
    """Per company: documents with a line on the error account, to be recategorised."""
    return _count_per_company(ExpenseDocument.objects.filter(used_error_account=True), company_ids)


def documents_opted_out(company_ids=None) -> dict[int, int]:
    """Per company: documents a workflow rule keeps out of the sync."""
    return _count_per_company(ExpenseDocument.objects.filter(opted_out_by__isnull=False), company_ids)


def _count_per_company(documents, company_ids) -> dict[int, int]:
    if company_ids is not None:
        documents = documents.filter(company_id__in=company_ids)
    return dict(documents.values_list("company_id").annotate(n=Count("id")).values_list("company_id", "n")
                .order_by())
