"""Background tasks: thin shells over services. Any task may run twice; the services are idempotent."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django_q.tasks import async_task

from .services import sending
from .services.dispatchers import kick_dispatch, queued_ticket_return

logger = logging.getLogger("kontera.tasks")


def _node_progress(_result=None) -> None:
    from operations.heartbeat import heartbeat_progress

    heartbeat_progress()


def dispatch(ticket: int | None = None, *_former_args) -> dict:
    """A dispatcher: sends for whichever companies are free (``services.dispatchers``), then hands over.

    Its queued ticket goes back first, so the next kick can queue another; once it holds a company it
    kicks once more, so that every free worker of every node gets a dispatcher while companies wait."""
    from django_q.conf import Conf

    queued_ticket_return(ticket)
    timeout = int(settings.Q_CLUSTER.get("timeout", 300))
    fanned_out = []

    def fan_out() -> None:
        if not fanned_out and not Conf.SYNC:  # run inline (tests), a kick would nest dispatchers
            fanned_out.append(kick_dispatch())

    result = sending.vouchers_dispatch(max_seconds=max(timeout - 60, 30), progress=_node_progress,
                                                on_claim=fan_out)
    if result.remaining:
        kick_dispatch()
    return result.__dict__


def sweep() -> dict:
    """Every minute (and every few seconds from each node's supervisor): recover interrupted sends and
    start dispatchers for work that waits without one."""
    recovered = sending.vouchers_recover_stuck()
    enqueued = kick_dispatch()
    return {"recovered": recovered, "dispatchers_started": enqueued}


def enqueue_master_data_import(integration_id: int, *, actor: str = "worker") -> None:
    async_task("bookkeeping.tasks.import_master_data", integration_id, actor, task_name=f"master-data-{integration_id}")


def import_master_data(integration_id: int, actor: str = "worker") -> dict:
    """Import the target's chart of accounts, cost centres, series, years and locked period."""
    from integrations.base import AuthError
    from integrations.models import Integration

    from .services.audit import worker_for
    from .services.integrations import integration_needs_reauthorisation
    from .services.plans import chart_import

    integration = Integration.objects.get(pk=integration_id)
    try:
        summary = chart_import(integration=integration, actor=worker_for(actor))
    except AuthError as exc:
        integration_needs_reauthorisation(integration=integration, reason=exc.message)
        return {"ok": False, "error": exc.message}
    return {"ok": True, **summary.__dict__}


def refresh_idle_tokens() -> dict:
    """Daily: refresh OAuth connections (Fortnox; Dinero through Visma Connect) idle for a week, so their
    refresh tokens never lapse unnoticed. Connections without a refresh token (a Dinero API key) are skipped."""
    from integrations import tokens
    from integrations.base import AuthError, ConnectorError
    from integrations.models import Integration, IntegrationStatus

    from .services.integrations import integration_needs_reauthorisation

    refreshed, lost = 0, 0
    for integration in Integration.objects.filter(system__in=list(tokens.PROVIDERS), status=IntegrationStatus.ACTIVE):
        try:
            refreshed += tokens.refresh_idle(integration=integration)
        except AuthError as exc:
            integration_needs_reauthorisation(integration=integration, reason=exc.message)
            lost += 1
        except ConnectorError as exc:
            logger.warning("Idle refresh of integration %s failed for now: %s", integration.pk, exc.message)
    return {"refreshed": refreshed, "needs_reauthorisation": lost}


def clean_abandoned_uploads() -> dict:
    """Every half hour: uploads older than KONTERA_UPLOAD_MAX_AGE_MINUTES, and expired sessions (an
    expense-import preview waits in the session)."""
    from importlib import import_module

    from .services.uploads import uploads_cleanup

    removed = uploads_cleanup()
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return {"uploads_removed": removed}


def mappings_reevaluate(company_id: int, actor: str = "worker") -> dict:
    """After a mapping changed: resolve again what the company has not sent yet (one task per company)."""
    from .models import Company
    from .services.mappings import mappings_reevaluate as reevaluate
    from .services.mappings import reevaluation_ticket

    # Give the ticket back first: a change committed from now on queues a new task.
    cache.delete(reevaluation_ticket(company_id))
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return {}
    return reevaluate(company=company, actor=actor)
