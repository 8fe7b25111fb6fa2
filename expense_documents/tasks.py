"""Background work for expense documents: apply the workflow rules and queue new and changed
documents, per company, for every active Dinero integration. Thin: the service does the work."""

from __future__ import annotations

import logging

from .services.sync import enqueue_sync

logger = logging.getLogger("kontera.tasks")

BATCH = 200


def sync_documents(company_id: int | None = None, batch: int = BATCH) -> dict:
    """Sync up to ``batch`` pending documents per company; hands over to itself if work remains."""
    from bookkeeping.models import Company
    from integrations.models import Integration, IntegrationStatus

    from .selectors import documents_needing_sync
    from .services.sync import documents_sync

    active = Integration.objects.filter(system="dinero", status=IntegrationStatus.ACTIVE)
    if company_id is not None:
        active = active.filter(company_id=company_id)
    totals: dict[str, int] = {}
    remaining = False
    for company in Company.objects.filter(pk__in=active.values("company_id")):
        outcomes = documents_sync(company=company, actor="worker", limit=batch)
        for outcome in outcomes:
            totals[outcome.state] = totals.get(outcome.state, 0) + 1
        # A full batch means there may be more; a document being sent waits for the next run.
        remaining = remaining or (len(outcomes) >= batch and documents_needing_sync(
            company_ids=[company.pk]).exclude(voucher__state="sending").exists())
    if remaining:
        enqueue_sync(company_id)
    return {"documents": totals, "remaining": remaining}
