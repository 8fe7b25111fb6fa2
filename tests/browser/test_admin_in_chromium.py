"""The admin in a real browser (Debian's Chromium through Playwright): import journals, preview, send."""

from __future__ import annotations

import os
import shutil

import pytest
from django.utils import timezone

from bookkeeping.models import Voucher, VoucherState
from tests.conftest import FORTNOX_CLIENT, FORTNOX_REDIRECT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def browser_page():
    playwright_sync = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # around it are plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page()
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def fortnox_ready(transactional_db, fortnox_sandbox):
    from bookkeeping.services.plans import chart_import
    from integrations import tokens
    from tests.factories import CompanyFactory, IntegrationFactory, UserFactory

    company = CompanyFactory(name="Brf Exempelgården", slug="brf")
    integration = IntegrationFactory(company=company, system="fortnox", status="active")
    code = fortnox_sandbox.authorize(FORTNOX_CLIENT[0], fortnox_sandbox.tenant_id, tokens.FORTNOX_SCOPES,
                                     FORTNOX_REDIRECT)
    tokens.fortnox_exchange_code(integration=integration, code=code)
    integration.refresh_from_db()
    chart_import(integration=integration, actor="test")
    UserFactory(username="admin", is_superuser=True)
    return company


def test_import_preview_and_send_journals(live_server, browser_page, fortnox_ready, fortnox_sandbox, tmp_path):
    page = browser_page
    day = timezone.localdate().isoformat()
    csv_file = tmp_path / "journaler.csv"
    csv_file.write_text(
        "journal,date,series,account,debit,credit,cost_centre,project,text\n"
        f"A25,{day},A,1510,83849,0,,,Aviserade hyror\n"
        f"A25,{day},A,3011,0,83849,100,,Hyror\n"
        f"A26,{day},A,1930,24500,0,,,Inbetalningar\n"
        f"A26,{day},A,1510,0,24500,,,Inbetalningar\n", encoding="utf-8")

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/bookkeeping/voucher/")
    page.click("#import-journals")
    page.select_option("#id_company", label="Brf Exempelgården")
    page.set_input_files("#id_file", str(csv_file))
    page.click("input[type=submit]")
    preview = page.locator("#journal-preview").inner_text()
    assert "A25" in preview and "A26" in preview and "✔" in preview
    assert not Voucher.objects.exists()  # the preview stores nothing
    page.click("input[value=Import]")
    assert Voucher.objects.count() == 2

    page.click("#action-toggle")
    page.select_option("select[name=action]", "send_selected")
    page.click("button[name=index]")
    assert "ready" in page.locator("#send-preview").inner_text()
    page.click("input[value=Send]")
    page.wait_for_selector("#progress-summary")
    assert "2 of 2 done" in page.locator("#progress-summary").inner_text()
    assert set(Voucher.objects.values_list("state", flat=True)) == {VoucherState.POSTED}
    assert len(fortnox_sandbox.vouchers(fortnox_sandbox.tenant_id)) == 2
