"""Nets Easy → Fortnox in a real browser: settings, test voucher, OK, sync with progress, reconciliation."""

from __future__ import annotations

import os

import pytest

from card_payments.models import NetsPayout
from integrations.models import Integration
from tests.browser.test_admin_in_chromium import CHROMIUM, browser_page, fortnox_ready  # noqa: F401
from tests.netseasy_fixtures import NETS_KEY, days_ago, sell

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]
SHOTS = os.environ.get("KONTERA_SCREENSHOTS")  # a folder, to look at the pages


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"netseasy-{name}.png"), full_page=True)


def test_set_up_confirm_and_sync_in_the_browser(live_server, browser_page, fortnox_ready, fortnox_sandbox,  # noqa: F811
                                                nets_sandbox):
    page = browser_page
    sell(nets_sandbox, day=days_ago(3), country="SWE", lines=((19920, 2500, 1), (10625, 1200, 2)), reference="W-1")
    sell(nets_sandbox, day=days_ago(3), country="NOR", lines=((11920, 0, 1),), reference="W-2")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/integrations/netspayout/")
    page.click("#netseasy-companies a")
    page.fill("#id_secret_key", NETS_KEY)
    page.fill("#id_start_date", days_ago(20).isoformat())
    page.fill("#id_sales_account_se", "3001")
    page.fill("#id_sales_account_eu", "3106")
    page.fill("#id_sales_account_world", "3105")
    shot(page, "1-settings")
    page.click("input[type=submit].default")
    assert "The test voucher is in Fortnox as A1" in page.locator("#test-voucher-state").inner_text()
    assert "accepts the secret key" in page.locator("#key-check").inner_text()
    shot(page, "2-awaiting-ok")
    assert not NetsPayout.objects.exists() or NetsPayout.objects.filter(state="booked").count() == 0

    page.click("#confirm-ok")
    assert Integration.objects.get(system="netseasy").status == "active"
    shot(page, "3-integration-page")
    page.click("text=Sync payouts now")
    page.click("input[type=submit].default")
    assert "Finished." in page.locator("#sync-state").inner_text()
    shot(page, "4-progress")
    page.click("text=Payouts and reconciliation")
    page.click("#result_list tbody tr th a >> nth=0")
    assert page.locator("#residual").inner_text() == "0.00"
    shot(page, "5-payout")
    assert NetsPayout.objects.get().state == "booked"
    assert len(fortnox_sandbox.vouchers(1046823)) == 1 + 3
