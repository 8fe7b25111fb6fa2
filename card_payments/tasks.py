"""Background tasks of the Nets Easy flow: thin shells over ``services``. Any may run twice."""

from __future__ import annotations

import datetime as dt
import logging

from django.core.cache import cache
from django.utils import timezone

from .services.sync import _ticket, enqueue_sync, progress_key

logger = logging.getLogger("kontera.tasks")



def sync_all() -> dict:
    """Every hour: one sync task per active Nets Easy integration (queued per company)."""
    from .selectors import nets_integrations_active

    queued = [i.pk for i in nets_integrations_active() if enqueue_sync(i.pk)]
    return {"queued": queued}


def sync_integration(integration_id: int, from_date: str | None = None, actor: str = "worker",
                     holds_ticket: bool = False) -> dict:
    from bookkeeping.services.audit import worker_for
    from integrations.models import Integration

    from .services.sync import payouts_sync

    state = {"state": "running", "message": "", "done": 0, "total": 0, "started": timezone.now().isoformat()}

    def progress(message, done=None, total=None):
        state.update(message=str(message), **({"done": done} if done is not None else {}),
                     **({"total": total} if total is not None else {}))
        cache.set(progress_key(integration_id), dict(state), timeout=24 * 3600)

    try:
        integration = Integration.objects.get(pk=integration_id)
        progress("…")
        result = payouts_sync(integration=integration, actor=worker_for(actor), progress=progress,
                              from_date=dt.date.fromisoformat(from_date) if from_date else None)
        state.update(state="done", result=result.as_dict(), finished=timezone.now().isoformat())
        cache.set(progress_key(integration_id), dict(state), timeout=24 * 3600)
        return result.as_dict()
    except Exception as exc:
        logger.exception("Nets Easy sync of integration %s failed", integration_id)
        state.update(state="failed", message=str(exc)[:500], finished=timezone.now().isoformat())
        cache.set(progress_key(integration_id), dict(state), timeout=24 * 3600)
        raise
    finally:
        if holds_ticket:
            cache.delete(_ticket(integration_id))


def activation_check(integration_id: int) -> dict:
    """After the settings are saved: check the secret key with Nets, then e-mail if the test voucher is through."""
    from integrations.models import Integration

    from .services.activation import activation_check_key, test_voucher_followup

    integration = Integration.objects.get(pk=integration_id)
    ok = activation_check_key(integration=integration)
    mail = test_voucher_followup(integration=Integration.objects.get(pk=integration_id))
    return {"key_ok": ok, "mail": mail}


def test_voucher_followups() -> dict:
    """Every minute: the e-mail for test vouchers whose outcome became known."""
    from integrations.models import Integration, IntegrationStatus

    from .services.activation import test_voucher_followup

    sent = []
    for integration in Integration.objects.filter(system="netseasy",
                                                  status=IntegrationStatus.AWAITING_CONFIRMATION):
        if test_voucher_followup(integration=integration) == "sent":
            sent.append(integration.pk)
    return {"sent": sent}
