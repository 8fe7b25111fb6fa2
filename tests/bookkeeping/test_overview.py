"""The overview (the admin's home page): what needs attention per company, each count a link to its list."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from bookkeeping.admin.overview import overview_context
from bookkeeping.models import Voucher, VoucherState
from bookkeeping.selectors.overview import QUEUE_PATIENCE, daily_chart, voucher_attention
from card_payments.models import NetsPayout, PayoutState
from expense_documents.models import ExpenseDocument
from tests.factories import CompanyFactory, IntegrationFactory, UserFactory, VoucherFactory

S = VoucherState


@pytest.fixture
def two_companies(db):
    mine = CompanyFactory(name="Mitt Bolag AB", slug="mitt", org_number="556036-0793")
    theirs = CompanyFactory(name="Annat Bolag AB", slug="annat")
    anna = UserFactory(username="anna")
    anna.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=[
        "bookkeeping", "integrations", "card_payments", "expense_documents"]))
    mine.members.add(anna)
    IntegrationFactory(company=mine, system="fortnox", status="active",
                       remote_company={"name": "Mitt Bolag AB", "organisation_number": "556036-0793"})
    IntegrationFactory(company=theirs, system="fortnox", status="active")
    return mine, theirs, anna


def vouchers(company, state, n=1, **fields):
    return [VoucherFactory(company=company, system="fortnox", state=state,
                           source_reference=f"REF-{state}-{uuid.uuid4().hex[:10]}", **fields) for _ in range(n)]


def test_counts_per_company_and_integration(two_companies):
    mine, theirs, _anna = two_companies
    long_ago = timezone.now() - QUEUE_PATIENCE - dt.timedelta(minutes=5)
    vouchers(mine, S.FAILED, 2, last_error_code="2000423", preflight_ok=True)
    vouchers(mine, S.FAILED, 1, last_error_code="unknown_account", preflight_ok=False)
    vouchers(mine, S.DRAFT, 3, preflight_ok=False)  # imported, cannot be sent
    vouchers(mine, S.DRAFT, 4, preflight_ok=True)  # fine, not sent yet: nothing to see
    vouchers(mine, S.AWAITING_AUTHORISATION, 1)
    vouchers(mine, S.QUEUED, 2, queued_at=long_ago)
    vouchers(mine, S.QUEUED, 5, queued_at=timezone.now())  # on its way, as expected
    vouchers(theirs, S.FAILED, 7)
    counts = voucher_attention([mine.pk])
    assert set(counts) == {(mine.pk, "fortnox")}
    item = counts[(mine.pk, "fortnox")]
    assert (item.failed, item.preflight, item.awaiting_authorisation, item.stuck) == (2, 4, 1, 2)
    assert voucher_attention(None)[(theirs.pk, "fortnox")].failed == 7


def test_staff_see_their_companies_and_every_count_links_to_exactly_those_vouchers(client, two_companies):
    mine, theirs, anna = two_companies
    failed = vouchers(mine, S.FAILED, 2, preflight_ok=True)
    refused = vouchers(mine, S.DRAFT, 1, preflight_ok=False)
    vouchers(theirs, S.FAILED, 5)
    client.force_login(anna)
    page = client.get("/admin/").content.decode()
    assert "Mitt Bolag AB" in page and "Annat Bolag AB" not in page
    assert "556036-0793" in page  # the remote company's organisation number
    links = {label.strip(): url.replace("&amp;", "&") for url, _n, label in
             re.findall(r'<a href="([^"]+)"><strong>(\d+)</strong> ([^<]+)</a>', page)}
    listed = client.get(links["failed"]).content.decode()
    assert all(v.source_reference in listed for v in failed)
    assert refused[0].source_reference not in listed
    listed = client.get(links["refused by the pre-flight check"]).content.decode()
    assert refused[0].source_reference in listed and failed[0].source_reference not in listed


def test_superusers_see_every_company(client, two_companies):
    mine, theirs, _anna = two_companies
    client.force_login(UserFactory(username="root", is_superuser=True))
    page = client.get("/admin/").content.decode()
    assert "Mitt Bolag AB" in page and "Annat Bolag AB" in page and "All companies" in page


def test_the_flows_add_their_counts(two_companies):
    mine, _theirs, anna = two_companies
    nets = IntegrationFactory(company=mine, system="netseasy", status="active")
    dinero = IntegrationFactory(company=mine, system="dinero", status="active")
    for state in (PayoutState.WAITING_CURRENCY, PayoutState.RESIDUAL_ERROR, PayoutState.BOOKED):
        NetsPayout.objects.create(integration=nets, company=mine, nets_id=f"p-{state}", date=dt.date.today(),
                                  currency="SEK", amount=Decimal("1.00"), state=state)
    ExpenseDocument.objects.create(company=mine, reference="D1", supplier_name="Q8", document_date=dt.date.today(),
                                   used_error_account=True)
    request = type("R", (), {"user": anna})()
    context = overview_context(request)
    row = next(r for r in context["rows"] if r["company"] == mine)
    items = {i["summary"].integration.system: {str(c["label"]): c["n"] for c in i["items"]}
             for i in row["integrations"]}
    assert items["netseasy"] == {"payouts that need staff": 2}
    assert items["dinero"] == {"documents on the error account": 1}
    assert dinero.pk in [i["summary"].integration.pk for i in row["integrations"]]


def test_technical_tables_are_for_superusers_only(client, two_companies):
    _mine, _theirs, anna = two_companies
    anna.user_permissions.add(*Permission.objects.filter(content_type__app_label="django_q"))
    client.force_login(anna)
    page = client.get("/admin/").content.decode()
    for hidden in ("OAuth states", "Rate-limit slots", "Successful tasks", "Failed tasks", "Scheduled tasks"):
        assert hidden not in page
    assert client.get(reverse("admin:django_q_success_changelist")).status_code == 403
    assert client.get(reverse("admin:integrations_oauthstate_changelist")).status_code == 403
    client.force_login(UserFactory(username="root", is_superuser=True))
    page = client.get("/admin/").content.decode()
    assert "OAuth states" in page and "Successful tasks" in page


def test_the_chart_counts_per_day_and_system(two_companies):
    mine, _theirs, _anna = two_companies
    now = timezone.now()
    vouchers(mine, S.POSTED, 3, posted_at=now)
    vouchers(mine, S.POSTED, 1, posted_at=now - dt.timedelta(days=2))
    vouchers(mine, S.POSTED, 1, posted_at=now - dt.timedelta(days=40))  # outside the window
    vouchers(mine, S.FAILED, 2)
    vouchers(mine, S.QUEUED, 1, queued_at=now)
    series = daily_chart([mine.pk])["fortnox"]
    assert len(series) == 30
    today = series[-1]
    assert (today.posted, today.failed, today.waiting) == (3, 2, 1)
    assert series[-3].posted == 1 and sum(d.posted for d in series) == 4


def test_the_chart_is_drawn_on_the_page(client, two_companies):
    mine, _theirs, anna = two_companies
    vouchers(mine, S.POSTED, 2, posted_at=timezone.now())
    vouchers(mine, S.FAILED, 1)
    client.force_login(anna)
    page = client.get("/admin/").content.decode()
    assert '<figure id="chart-fortnox">' in page
    assert page.count('class="bar-posted"') == 1 and page.count('class="bar-failed"') == 1
    assert "2 posted, 1 failed, 0 waiting" in page
    assert "http://" not in page.split('<figure id="chart-fortnox">')[1].split("</figure>")[0].replace(
        "http://www.w3.org", "")  # nothing loaded from anywhere


def test_the_overview_queries_do_not_grow_with_companies_or_vouchers(client, two_companies,
                                                                    django_assert_max_num_queries):
    mine, _theirs, anna = two_companies
    for n in range(8):
        company = CompanyFactory(slug=f"extra-{n}")
        company.members.add(anna)
        IntegrationFactory(company=company, system="fortnox", status="active")
        vouchers(company, S.FAILED, 3)
    client.force_login(anna)
    client.get("/admin/")  # warm the session
    with django_assert_max_num_queries(25):
        client.get("/admin/")
    assert Voucher.objects.count() == 24
