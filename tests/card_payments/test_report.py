"""'Vill du felanmäla något?': the report is stored and mailed with diagnostics — and never a secret."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

from card_payments.models import ProblemReport
from card_payments.services.problem_report import diagnostics_collect, problem_report_create
from card_payments.services.sync import payouts_sync
from integrations.models import Integration
from tests.netseasy_fixtures import NETS_KEY, days_ago, sell


@pytest.fixture
def troubled(nets_active, nets_sandbox, connected_fortnox):
    """An integration with some history: a booked payout, then Nets answering 503."""
    sell(nets_sandbox, day=days_ago(3))
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    payouts_sync(integration=nets_active, actor="test")
    nets_sandbox.faults.inject("status", status=503, times=5)
    assert not payouts_sync(integration=nets_active, actor="test").ok
    nets_active.refresh_from_db()
    return nets_active


def secrets_of(integration) -> list[str]:
    fortnox = Integration.objects.get(company=integration.company, system="fortnox")
    values = [NETS_KEY, fortnox.credentials["access_token"], fortnox.credentials["refresh_token"],
              settings.SECRET_KEY, settings.FORTNOX_CLIENT_SECRET, *settings.KONTERA_ENCRYPTION_KEYS]
    assert all(values)
    return values


def test_the_report_is_stored_and_mailed_without_any_secret(troubled, staff_user):
    # the user even pastes the key into the text by mistake
    report = problem_report_create(integration=troubled, user=staff_user,
                                   text=f"The sync fails since this morning. My key is {NETS_KEY}")
    [message] = mail.outbox[-1:]
    assert message.to == [settings.KONTERA_SUPPORT_EMAIL] and message.reply_to == [staff_user.email]
    stored = json.dumps(report.diagnostics, ensure_ascii=False) + report.text
    for secret in secrets_of(troubled):
        assert secret not in stored
        assert secret not in message.body and secret not in message.subject
    assert "[redacted]" in report.text
    assert report.emailed_to == settings.KONTERA_SUPPORT_EMAIL
    # …and it is still useful: states, recent errors, versions
    diagnostics = report.diagnostics
    assert diagnostics["integration"]["status"] == "active"
    assert diagnostics["integration"]["secret_key_stored"] is True
    assert diagnostics["fortnox"]["status"] == "active" and diagnostics["fortnox"]["accounts"] > 50
    assert diagnostics["payouts"]["by_state"] == {"booked": 1}
    assert any("internal error (503)" in e["message"] for e in diagnostics["recent_errors"])
    assert diagnostics["versions"]["django"] and diagnostics["versions"]["python"]
    assert "internal error (503)" in message.body


def test_diagnostics_scrub_a_secret_that_slipped_into_a_message(troubled):
    from bookkeeping.services.audit import audit_record

    fortnox = Integration.objects.get(company=troubled.company, system="fortnox")
    # an error text that happens to quote a token verbatim (no "Bearer" for the pattern to catch)
    audit_record(action="netseasy:sync", outcome="error", integration=troubled,
                 message=f"odd answer: {fortnox.credentials['refresh_token']}")
    text = json.dumps(diagnostics_collect(integration=troubled))
    for secret in secrets_of(troubled):
        assert secret not in text


def test_report_from_the_settings_page(client, troubled, staff_user):
    from django.contrib.auth.models import Permission

    staff_user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["integrations", "card_payments"]))
    client.force_login(staff_user)
    page = reverse("admin:card_payments_netspayout_settings", args=[troubled.company_id])
    assert "Vill du felanmäla något?" in client.get(page).content.decode()
    response = client.post(reverse("admin:card_payments_netspayout_report", args=[troubled.company_id]),
                           {"text": "Utbetalningen i går syns inte."})
    assert response.status_code == 302
    report = ProblemReport.objects.get()
    assert report.user == staff_user and report.text == "Utbetalningen i går syns inte."
    assert mail.outbox[-1].to == [settings.KONTERA_SUPPORT_EMAIL]
    empty = client.post(reverse("admin:card_payments_netspayout_report", args=[troubled.company_id]), {"text": ""})
    assert empty.status_code == 200 and ProblemReport.objects.count() == 1
