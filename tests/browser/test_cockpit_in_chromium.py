"""The cockpit in a real browser (Debian's Chromium), at 1366 px, in English, Swedish and Danish: the overview,
the error inbox and a wrong-company Fortnox connection. On a Swedish or Danish page no English may be left."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from bookkeeping.models import Voucher, VoucherState
from integrations.models import Integration
from tests.browser.test_admin_in_chromium import CHROMIUM
from tests.conftest import FORTNOX_CLIENT
from tests.factories import CompanyFactory, IntegrationFactory, UserFactory, VoucherFactory
from wording import Msg, set_text

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]
SHOTS = os.environ.get("KONTERA_SCREENSHOTS")  # a folder, to look at the pages
LANGUAGES = {"en": "en-GB", "sv": "sv-SE", "da": "da-DK"}
PASSWORD = "pw-for-tests-123"

# English left on a Swedish or Danish page. Words that are also Swedish or Danish ("Integration", "Total",
# "Send", "note", "Reference", "Admin") are not listed; proper names (Fortnox, Dinero, Nets Easy) are data.
ENGLISH = [
    "the", "and", "of", "is", "are", "with", "voucher", "vouchers", "failed", "waiting", "posted", "queued",
    "needs", "attention", "company", "companies", "again", "cancel", "connect", "anyway", "error", "inbox",
    "what", "why", "date", "description", "attempts", "required", "handled", "outside", "ago", "never",
    "home", "log out", "view site", "change password", "settings", "refused", "pre-flight", "check",
    "awaiting", "authorisation", "expected", "longer", "last", "successful", "sync", "organisation number",
    "days", "per day", "payouts", "documents", "account", "accounts", "series", "from date", "to date",
    "search", "filter", "all", "show", "apply", "whole", "group", "reason", "explanation", "nothing", "yes",
    "no", "none", "welcome", "background tasks", "audit trail", "integrations",
]
ENGLISH_RE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in ENGLISH) + r")(?![\w-])", re.IGNORECASE)


def english_left(page, data: tuple[str, ...] = ()) -> list[str]:
    """The English words in the page's visible text (its data — names, references — taken out)."""
    text = page.locator("body").inner_text()
    for value in data:
        text = text.replace(value, " ")
    return sorted({match.group(0) for match in ENGLISH_RE.finditer(text)})


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"cockpit-{name}.png"), full_page=True)


@pytest.fixture
def browser():
    playwright_sync = pytest.importorskip("playwright.sync_api")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def open_page(browser, language: str):
    context = browser.new_context(locale=LANGUAGES[language], viewport={"width": 1366, "height": 900})
    return context.new_page()


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


@pytest.fixture
def bureau(transactional_db):
    """Anna serves two Swedish companies with failures of several kinds; another company is not hers."""
    anna = UserFactory(username="anna", first_name="Anna", last_name="Andersson")
    anna.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=[
        "bookkeeping", "integrations", "card_payments", "expense_documents"]))
    brf = CompanyFactory(name="Brf Exempelgården", slug="brf", org_number="769600-1234")
    shop = CompanyFactory(name="Exempel Handel AB", slug="shop", org_number="556677-8899")
    other = CompanyFactory(name="Annat Bolag AB", slug="annat")
    for company in (brf, shop):
        company.members.add(anna)
    IntegrationFactory(company=brf, system="fortnox", status="active",
                       remote_company={"name": "Brf Exempelgården", "organisation_number": "769600-1234"})
    IntegrationFactory(company=shop, system="fortnox", status="needs_reauthorisation")
    IntegrationFactory(company=other, system="fortnox", status="active")
    now = timezone.now()

    def voucher(company, state, **fields):
        return VoucherFactory(company=company, state=state, source_reference=f"V-{uuid.uuid4().hex[:6].upper()}",
                              description="Hyror", **fields)

    for _ in range(3):  # refused by Fortnox, written by the worker as it writes: a code with its words
        failed = voucher(brf, VoucherState.FAILED, last_error_code="2000423", preflight_ok=True)
        set_text(failed, "last_error", Msg("%(explanation)s — %(original)s", explanation=Msg(
            "An account on the voucher does not exist in Fortnox."), original="Fortnox: “Kontot finns inte” (2000423)"))
        failed.save()
    voucher(brf, VoucherState.DRAFT, preflight_ok=False)
    voucher(brf, VoucherState.QUEUED, queued_at=now - dt.timedelta(hours=2))
    for days in range(0, 20, 3):
        voucher(brf, VoucherState.POSTED, posted_at=now - dt.timedelta(days=days), remote_number=str(days))
    voucher(shop, VoucherState.AWAITING_AUTHORISATION)
    voucher(other, VoucherState.FAILED, last_error_code="2000423")
    return anna, brf, shop, other


@pytest.mark.parametrize("language", ["en", "sv", "da"])
def test_overview_and_error_inbox(live_server, browser, bureau, language):
    anna, brf, shop, other = bureau
    page = open_page(browser, language)
    log_in(page, live_server, "anna")
    page.goto(f"{live_server.url}/admin/")
    assert page.locator("#company-overview tr[data-company=brf]").count() == 1
    assert page.locator("#company-overview tr[data-company=annat]").count() == 0
    chips = page.locator("#attention-summary .chip").all_inner_texts()
    assert any(c.startswith("3") for c in chips) and len(chips) == 4  # failed, pre-flight, awaiting, queued
    assert page.locator("#chart-fortnox rect.bar-posted").count() == 7
    shot(page, f"overview-{language}")
    data = ("Brf Exempelgården", "Exempel Handel AB", "Anna Andersson", "Fortnox", "Kontera")
    if language != "en":
        assert english_left(page, data) == [], english_left(page, data)

    # the failed chip leads to exactly the three failed vouchers
    page.locator("#attention-summary .chip a").first.click()
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 3
    shot(page, f"failed-list-{language}")

    page.goto(f"{live_server.url}/admin/")
    page.click("#error-inbox-link")
    page.wait_for_selector("#error-inbox")
    group = page.locator(".inbox-group")
    assert group.count() == 1 and group.locator("tbody tr").count() == 3
    shot(page, f"inbox-{language}")
    if language != "en":
        remote = ("Hyror", "Fortnox: “Kontot finns inte” (2000423)")  # Fortnox's own words stay as they came
        assert english_left(page, data + remote) == [], english_left(page, data + remote)
    group.locator("textarea[name=note]").fill("Bokförd för hand som A 31")
    group.locator("button[value=handled_outside]").click()
    page.wait_for_selector(".messagelist .success")
    assert Voucher.objects.filter(company=brf, state=VoucherState.HANDLED_OUTSIDE).count() == 3
    assert Voucher.objects.get(company=other).state == VoucherState.FAILED
    shot(page, f"inbox-done-{language}")


@pytest.mark.parametrize("language", ["en", "sv", "da"])
def test_a_wrong_company_connection_is_held_back(live_server, browser, fortnox_sandbox, transactional_db, language,
                                                 settings):
    redirect = f"{live_server.url}/integrations/fortnox/callback"
    fortnox_sandbox.register_client(*FORTNOX_CLIENT, [redirect])
    settings.FORTNOX_REDIRECT_URI = redirect
    fortnox_sandbox.add_tenant(1053991, "Exempel Handel AB", "556677-8899")
    company = CompanyFactory(name="Brf Exempelgården", slug="brf", org_number="769600-1234")
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    UserFactory(username="root", is_superuser=True)

    page = open_page(browser, language)
    log_in(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/integrations/integration/{integration.pk}/change/")
    shot(page, f"integration-{language}")
    page.click("#connect-fortnox")
    page.check("input[name=tenant][value='1053991']")  # the wrong company, on Fortnox's consent page
    page.click("button[value=approve]")
    page.wait_for_selector("#identity-comparison")
    comparison = page.locator("#identity-comparison").inner_text()
    assert "769600-1234" in comparison and "556677-8899" in comparison
    assert "Exempel Handel AB" in comparison and "Brf Exempelgården" in comparison
    integration.refresh_from_db()
    assert not integration.credentials and integration.status == "setting_up"
    shot(page, f"held-{language}")
    if language != "en":
        data = ("Brf Exempelgården", "Exempel Handel AB", "Fortnox", "Kontera", "root")
        assert english_left(page, data) == [], english_left(page, data)

    page.fill("#id_note", "Organisationsnumret byttes vid fusionen")
    page.click("#connect-anyway-button")
    page.wait_for_selector(".messagelist")
    integration = Integration.objects.get(pk=integration.pk)
    assert integration.credentials["access_token"]
    assert integration.remote_company["override"]["note"] == "Organisationsnumret byttes vid fusionen"
    shot(page, f"connected-anyway-{language}")
