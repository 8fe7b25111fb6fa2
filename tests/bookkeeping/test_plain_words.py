"""Screens in plain words: settings as form fields, credentials in words, the audit trail in words,
numbers and regions in the reader's language, period filters, translated labels."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone, translation

from bookkeeping.admin.integration_settings import credentials_words
from bookkeeping.models import AuditEvent, VoucherState
from bookkeeping.services.audit import audit_record
from bookkeeping.services.vouchers import voucher_queue
from card_payments.models import NetsPaymentAction, NetsPayout
from tests.factories import (
    CompanyFactory,
    FinancialYearFactory,
    IntegrationFactory,
    UserFactory,
    VoucherFactory,
    balanced_voucher,
    fortnox_plan,
)

S = VoucherState


@pytest.fixture
def root(db, client):
    user = UserFactory(username="root", is_superuser=True, first_name="Rut", last_name="Admin")
    client.force_login(user)
    return user


def test_the_fortnox_integration_page_has_form_fields_not_json(client, root):
    integration = IntegrationFactory(system="fortnox", settings={"locked_period_policy": "refuse", "tenant_id": "7"})
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    page = client.get(url).content.decode()
    assert 'name="settings"' not in page and "{&quot;" not in page
    assert 'name="setting_locked_period_policy"' in page and "is posted on the first open date" in page
    assert client.post(url, {"setting_locked_period_policy": "sometimes"}).status_code == 200  # refused
    client.post(url, {"setting_locked_period_policy": "first_open"})
    integration.refresh_from_db()
    assert integration.settings == {"locked_period_policy": "first_open", "tenant_id": "7"}  # the rest is kept


def test_credentials_in_words_and_masked():
    now = time.time()
    lines = credentials_words({"access_token": "a" * 40 + "wxyz", "expires_at": now + 52 * 60 + 30,
                               "refresh_token": "r" * 40 + "9f3a",
                               "refresh_expires_at": dt.datetime(2027, 1, 16, 12, tzinfo=dt.UTC).timestamp(),
                               "scope": "bookkeeping companyinformation"}, now=now)
    text = "\n".join(lines)
    assert "Access token ••••wxyz: valid 52 more minutes." in text
    assert "Refresh token ••••9f3a: until 16 Jan 2027" in text
    assert "a" * 10 not in text and "r" * 10 not in text
    with translation.override("sv"):
        swedish = "\n".join(credentials_words({"api_key": "k" * 30 + "1234"}))
    assert swedish == "API-nyckel: sparad (••••1234)."


def test_the_audit_trail_names_the_staff_member_even_when_the_worker_acted(client, root):
    company = CompanyFactory(slug="brf")
    fortnox_plan(company)
    anna = UserFactory(username="anna", first_name="Anna", last_name="Andersson")
    voucher = balanced_voucher(company)
    voucher_queue(voucher=voucher, actor=anna)  # anna asks for it to be sent
    voucher.refresh_from_db()
    audit_record(action="state:queued->sending", voucher=voucher, actor="worker", message="Queued → Sending")
    event = AuditEvent.objects.filter(voucher=voucher).latest("id")
    assert event.actor == anna and event.actor_label == "worker"
    page = client.get(reverse("admin:bookkeeping_auditevent_changelist")).content.decode()
    assert "Anna Andersson (by the worker)" in page
    assert "Queued for sending" in page and 'class="field-what">Sending<' in page  # human labels …
    assert "state:queued-&gt;sending" not in page and "state:draft" not in page  # … not codes
    assert reverse("admin:bookkeeping_voucher_change", args=[voucher.pk]) in page  # a link, not an id
    local = timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M")
    assert local in page  # local time


def test_remote_numbers_in_the_targets_words(client, root):
    company = CompanyFactory(slug="brf")
    plan = fortnox_plan(company, year=2022)
    plan.financial_years.all().delete()
    FinancialYearFactory(plan=plan, start=dt.date(2021, 7, 1), end=dt.date(2022, 6, 30), remote_id="3")
    VoucherFactory(company=company, state=S.POSTED, remote_id="A25", remote_series="A", remote_number="25",
                   remote_year="3", date=dt.date(2022, 3, 1))
    page = client.get(reverse("admin:bookkeeping_voucher_changelist")).content.decode()
    assert "Fortnox A 25, financial year 2021/22" in page


def test_amounts_and_sales_regions_in_the_readers_language(client, root):
    company = CompanyFactory(slug="shop")
    integration = IntegrationFactory(company=company, system="netseasy")
    payout = NetsPayout.objects.create(integration=integration, company=company, nets_id="p1",
                                       date=dt.date.today(), currency="SEK", amount=Decimal("83849.50"))
    for region, nets_id in (("se", "a1"), ("eu", "a2"), ("world", "a3")):
        NetsPaymentAction.objects.create(payout=payout, company=company, nets_id=nets_id, action="CHARGE",
                                         amount=Decimal("10.00"), currency="SEK", booking_date=dt.date.today(),
                                         region=region)
    listing = client.get(reverse("admin:card_payments_netspayout_changelist"), HTTP_ACCEPT_LANGUAGE="sv")
    assert "83\xa0849,50" in listing.content.decode()
    detail = client.get(reverse("admin:card_payments_netspayout_change", args=[payout.pk]),
                        HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Sverige" in detail and "utanför EU" in detail and ">EU<" in detail.replace("\n", "").replace(" ", "")
    danish = client.get(reverse("admin:card_payments_netspayout_changelist"), HTTP_ACCEPT_LANGUAGE="da")
    assert "83\xa0849,50" in danish.content.decode()


@pytest.mark.parametrize("name, field", [
    ("admin:bookkeeping_voucher_changelist", "date"),
    ("admin:expense_documents_expensedocument_changelist", "document_date"),
    ("admin:card_payments_netspayout_changelist", "date"),
    ("admin:bookkeeping_auditevent_changelist", "created_at"),
])
def test_period_filters(client, root, name, field):
    page = client.get(reverse(name)).content.decode()
    assert f"{field}__range__gte" in page and f"{field}__range__lte" in page


def test_the_period_filter_filters(client, root):
    company = CompanyFactory(slug="brf")
    VoucherFactory(company=company, source_reference="IN-RANGE", date=dt.date(2026, 3, 10))
    VoucherFactory(company=company, source_reference="OUT-OF-RANGE", date=dt.date(2026, 5, 10))
    page = client.get(reverse("admin:bookkeeping_voucher_changelist"),
                      {"date__range__gte": "2026-03-01", "date__range__lte": "2026-03-31"}).content.decode()
    assert "IN-RANGE" in page and "OUT-OF-RANGE" not in page


def test_task_queue_labels_are_translated(client, root):
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Bakgrundsjobb" in page and "Background tasks" not in page


def test_staff_read_what_the_worker_wrote_in_their_language(client, db):
    company = CompanyFactory(slug="brf")
    fortnox_plan(company)
    voucher = balanced_voucher(company, rows=((9999, "5.00", "0"), (3011, "0", "5.00")))
    voucher_queue(voucher=voucher, actor="worker")
    anna = UserFactory(username="anna")
    anna.user_permissions.add(*Permission.objects.filter(codename__in=["view_voucher", "change_voucher"]))
    company.members.add(anna)
    client.force_login(anna)
    danish = client.get(reverse("admin:bookkeeping_voucher_changelist"), HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert "Konto 9999 findes ikke i kontoplanen" in danish


def test_every_audit_action_the_code_records_has_a_label_in_words():
    # The audit trail shows what happened in words; a new action code without a label would show as a code.
    import re
    from pathlib import Path

    from bookkeeping.admin.audit import ACTIONS

    root = Path(__file__).resolve().parents[2]
    recorded = set()
    for path in root.glob("*/**/*.py"):
        if path.parts[len(root.parts)] in (".venv", "tests", "bench") or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        recorded |= set(re.findall(r'action="([a-z_]+:[a-z_]+)"', text))
        for pattern in re.findall(r'action=f"\{[a-z_.]+\}:([a-z_]+)"', text):
            recorded |= {f"{system}:{pattern}" for system in ("fortnox", "dinero")}
    assert recorded and not sorted(code for code in recorded if code not in ACTIONS)
