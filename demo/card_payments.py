"""The demo web shop's Nets Easy settings (the sandbox's demo merchant)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext as _

from card_payments.services.activation import netseasy_settings_save
from card_payments.services.settings import DEFAULTS, SOURCE, clean_settings, fortnox_ready
from integrations.models import Integration, IntegrationStatus


def demo_netseasy(company) -> dict:
    """The demo web shop sells through the Nets Easy sandbox's demo merchant (idempotent).

    When the company's Fortnox is connected and its chart imported, the settings are saved for real
    (a test voucher goes to Fortnox, awaiting OK); until then they are prefilled and waiting.
    """
    from integrations.sandboxes.netseasy import DEMO_DAYS, DEMO_SECRET_KEY

    values = {
        "start_date": (timezone.localdate() - dt.timedelta(days=DEMO_DAYS)).isoformat(),
        "sales_account_se": 3001, "sales_account_eu": 3106, "sales_account_world": 3105,
        "sales_account_eu_b2b": 3108, **{k: v for k, v in DEFAULTS.items()},
    }
    integration = Integration.objects.filter(company=company, system=SOURCE).first()
    if integration is not None and integration.status != IntegrationStatus.SETTING_UP:
        return {"integration": integration.pk, "status": integration.status, "created": False}
    ready, reason = fortnox_ready(company)
    if ready:
        saved = netseasy_settings_save(company=company, values={**(integration.settings if integration else {}),
                                                                **values}, secret_key=DEMO_SECRET_KEY,
                                       actor="demo")
        return {"integration": saved.integration.pk, "status": saved.integration.status, "created": True,
                "test_voucher": saved.test_voucher.pk if saved.test_voucher else None}
    if integration is None:
        integration = Integration.objects.create(
            company=company, system=SOURCE, status=IntegrationStatus.SETTING_UP, settings=clean_settings(values),
            credentials={"secret_key": DEMO_SECRET_KEY},
            # The reason it waits (Fortnox not connected yet) is shown live on the settings page; storing
            # it here would keep saying "Connect Fortnox first" after Fortnox is connected.
            status_message=_("Prefilled for the demo merchant. Open “Nets Easy settings” and press Save once "
                             "Fortnox is connected: a test voucher goes to Fortnox."))
    return {"integration": integration.pk, "status": integration.status, "created": False, "waiting_for": reason}
