"""The Fortnox connector end to end against the sandbox: OAuth, tokens, master data, exactly-once posting."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core import mail
from django.db import close_old_connections, connection
from django.urls import reverse
from django.utils import timezone

from bookkeeping.models import Account, AccountPlan, AuditEvent, Voucher, VoucherState
from bookkeeping.services.plans import chart_import
from bookkeeping.services.reconnection import integration_reconnected
from bookkeeping.services.sending import vouchers_dispatch, vouchers_recover_stuck
from bookkeeping.services.vouchers import voucher_queue
from integrations import tokens
from integrations.models import Integration, IntegrationStatus, OAuthState
from tests.conftest import FORTNOX_CLIENT, FORTNOX_REDIRECT
from tests.factories import IntegrationFactory, balanced_voucher


def _rows_guide():
    # journal A25 from the property-ledger guide (cost centre on the rent accounts)
    return ((1101, "0", "12000.00"), (1510, "83849.00", "0"), (2610, "0", "904.00"),
            (3011, "0", "65568.00", "100"), (3015, "0", "5247.00", "100"), (3016, "0", "130.00", "100"))


def journal(company, ref="A25", rows=None, day=None, series="A"):
    return balanced_voucher(company, rows=rows or _rows_guide(), source_reference=ref, series=series,
                            date=day or timezone.localdate(), description=f"Journal {ref}")


def post(voucher):
    assert voucher_queue(voucher=voucher, actor="test") == [], voucher.last_error
    return vouchers_dispatch(max_seconds=20)


# --- OAuth ------------------------------------------------------------------------------------


def test_full_oauth_round_trip_through_the_admin(client, db, fortnox_sandbox, company, staff_user,
                                                 django_capture_on_commit_callbacks):
    company.members.add(staff_user)
    staff_user.is_superuser = True
    staff_user.save()
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    client.force_login(staff_user)

    start = client.get(reverse("integrations:fortnox_connect", args=[integration.pk]))
    assert start.status_code == 302
    auth_url = start["Location"]
    query = parse_qs(urlsplit(auth_url).query)
    assert query["client_id"] == [FORTNOX_CLIENT[0]] and query["response_type"] == ["code"]
    assert set(query["scope"][0].split()) >= {"bookkeeping", "costcenter", "companyinformation"}
    assert query["access_type"] == ["offline"]

    # the staff member approves on Fortnox's (the sandbox's) consent page
    consent = requests.get(auth_url, timeout=5)
    assert "Godkänn behörighet" in consent.text
    form = dict(re.findall(r'<input type=hidden name="([^"]+)" value="([^"]*)"', consent.text))
    decided = requests.post(auth_url.split("?")[0], data={**form, "tenant": "1046823", "decision": "approve"},
                            allow_redirects=False, timeout=5)
    callback = urlsplit(decided.headers["Location"])
    assert callback.path == "/integrations/fortnox/callback"

    with django_capture_on_commit_callbacks(execute=True):
        done = client.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 302
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE
    assert integration.credentials["access_token"] and integration.credentials["refresh_token"]
    plan = AccountPlan.objects.get(company=company, system="fortnox")
    assert plan.accounts.filter(number=1930).exists()  # master data was imported after connecting
    assert integration.settings["tenant_id"] == "1046823"

    # the state is single-use
    again = client.get(f"{callback.path}?{callback.query}")
    assert again.status_code == 302
    assert OAuthState.objects.get(integration=integration).used_at is not None


def test_state_expires_after_ten_minutes(client, db, fortnox_sandbox, company, superuser):
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    client.force_login(superuser)
    url = client.get(reverse("integrations:fortnox_connect", args=[integration.pk]))["Location"]
    state = parse_qs(urlsplit(url).query)["state"][0]
    OAuthState.objects.filter(state=state).update(created_at=timezone.now() - dt.timedelta(minutes=11))
    code = fortnox_sandbox.authorize(FORTNOX_CLIENT[0], 1046823, tokens.FORTNOX_SCOPES, FORTNOX_REDIRECT, state)
    client.get(f"/integrations/fortnox/callback?code={code}&state={state}")
    integration.refresh_from_db()
    assert integration.credentials == {}
    assert integration.status == "setting_up"


def test_callback_refuses_a_user_of_another_company(client, db, fortnox_sandbox, company, staff_user):
    integration = IntegrationFactory(company=company, system="fortnox", status="setting_up")
    state = OAuthState.objects.create(state="s" * 40, integration=integration, user=None).state
    client.force_login(staff_user)  # staff, but does not serve this company
    code = fortnox_sandbox.authorize(FORTNOX_CLIENT[0], 1046823, tokens.FORTNOX_SCOPES, FORTNOX_REDIRECT, state)
    client.get(f"/integrations/fortnox/callback?code={code}&state={state}")
    integration.refresh_from_db()
    assert integration.credentials == {}


def test_connect_is_refused_for_other_companies(client, db, fortnox_sandbox, company, staff_user):
    integration = IntegrationFactory(company=company, system="fortnox")
    client.force_login(staff_user)
    assert client.get(reverse("integrations:fortnox_connect", args=[integration.pk])).status_code == 403


# --- tokens -----------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_refresh_token_is_dead(connected_fortnox, fortnox_sandbox):
    integration = connected_fortnox
    old_refresh = integration.credentials["refresh_token"]
    creds = dict(integration.credentials, expires_at=time.time() - 1)
    integration.credentials = creds
    integration.save()
    token = tokens.fortnox_access_token(integration=Integration.objects.get(pk=integration.pk))
    integration.refresh_from_db()
    assert integration.credentials["refresh_token"] != old_refresh
    assert token == integration.credentials["access_token"]
    assert fortnox_sandbox.refresh_count == 1
    # re-using the old refresh token is refused by Fortnox
    reuse = requests.post(f"{tokens.settings.FORTNOX_OAUTH_URL}/token",
                          data={"grant_type": "refresh_token", "refresh_token": old_refresh},
                          auth=FORTNOX_CLIENT, timeout=5)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"


def test_a_401_refreshes_once_then_succeeds(connected_fortnox, fortnox_sandbox):
    integration = connected_fortnox
    fortnox_sandbox.clock.advance(3601)  # Fortnox considers the access token expired; we don't know yet
    from integrations.fortnox.connector import FortnoxConnector

    info = FortnoxConnector(Integration.objects.get(pk=integration.pk)).check_connection()
    assert info.company_name == "Brf Exempelgården"
    assert fortnox_sandbox.refresh_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_refresh_exactly_once(fortnox_sandbox, company):
    integration = IntegrationFactory(company=company, system="fortnox", status="active")
    code = fortnox_sandbox.authorize(FORTNOX_CLIENT[0], 1046823, tokens.FORTNOX_SCOPES, FORTNOX_REDIRECT)
    tokens.fortnox_exchange_code(integration=integration, code=code)
    stale = Integration.objects.get(pk=integration.pk)
    stale.credentials = dict(stale.credentials, expires_at=time.time() - 5)
    stale.save()

    results, errors = [], []
    barrier = threading.Barrier(8)

    def worker():
        try:
            barrier.wait()
            mine = Integration.objects.get(pk=integration.pk)
            results.append(tokens.fortnox_access_token(integration=mine))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fortnox_sandbox.refresh_count == 1
    assert fortnox_sandbox.refresh_reuse == []
    assert len(set(results)) == 1


def test_idle_connection_is_refreshed_before_45_days(connected_fortnox, fortnox_sandbox):
    integration = Integration.objects.get(pk=connected_fortnox.pk)
    assert tokens.fortnox_refresh_idle(integration=integration) is False  # fresh: nothing to do
    integration.credentials = dict(integration.credentials, refreshed_at=time.time() - 8 * 86400)
    integration.save()
    from bookkeeping.tasks import refresh_idle_tokens

    assert refresh_idle_tokens() == {"refreshed": 1, "needs_reauthorisation": 0}
    assert fortnox_sandbox.refresh_count == 1


# --- master data ------------------------------------------------------------------------------


def test_import_reads_every_page(connected_fortnox, fortnox_sandbox):
    tenant = fortnox_sandbox.tenant(1046823)
    existing = {a for a in range(1000, 10000)} - {a.number for a in Account.objects.all()}
    extra = sorted(existing)[:620]
    for number in extra:
        tenant.add_account(number, f"Extrakonto {number}")
    summary = chart_import(integration=connected_fortnox, actor="test")
    plan = AccountPlan.objects.get(company=connected_fortnox.company, system="fortnox")
    assert summary.accounts == plan.accounts.count() >= 620 + 80
    assert plan.accounts.filter(number=extra[-1]).exists()
    assert plan.series.filter(code="A", manual=True).exists()
    assert plan.financial_years.count() >= 2
    paged = [r for r in fortnox_sandbox.log if r.path.endswith("/3/accounts")]
    assert len(paged) >= 2


# --- posting ----------------------------------------------------------------------------------


def test_journal_is_posted_with_number_series_and_year(connected_fortnox, fortnox_sandbox):
    voucher = journal(connected_fortnox.company)
    result = post(voucher)
    voucher.refresh_from_db()
    assert result.posted == 1, voucher.last_error
    assert voucher.state == VoucherState.POSTED
    assert voucher.remote_series == "A" and voucher.remote_number and voucher.remote_year
    remote = fortnox_sandbox.vouchers(1046823)
    assert len(remote) == 1
    events = list(AuditEvent.objects.filter(voucher=voucher).values_list("action", flat=True))
    assert "state:queued->sending" in events and "state:sending->posted" in events


def test_preflight_refuses_without_calling_fortnox(connected_fortnox, fortnox_sandbox):
    voucher = journal(connected_fortnox.company, rows=((1930, "10.00", "0"), (9999, "0", "10.00")))
    before = len(fortnox_sandbox.log)
    problems = voucher_queue(voucher=voucher, actor="test")
    assert [p.code for p in problems] == ["unknown_account"]
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.FAILED and "9999" in voucher.last_error
    assert len(fortnox_sandbox.log) == before


def test_fortnox_refusal_is_stored_in_plain_words(connected_fortnox, fortnox_sandbox):
    # the account is deactivated in Fortnox after our import: Fortnox refuses, we explain
    fortnox_sandbox.tenant(1046823).add_account(8999, "Årets resultat", active=True)
    chart_import(integration=connected_fortnox, actor="test")
    fortnox_sandbox.tenant(1046823).add_account(8999, "Årets resultat", active=False)
    voucher = journal(connected_fortnox.company, rows=((8999, "10.00", "0"), (1930, "0", "10.00")))
    post(voucher)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.FAILED
    assert "not active" in voucher.last_error and "Fortnox:" in voucher.last_error


def test_locked_period_refused_or_moved(connected_fortnox, fortnox_sandbox):
    company = connected_fortnox.company
    plan = AccountPlan.objects.get(company=company, system="fortnox")
    today = timezone.localdate()
    plan.locked_until = today - dt.timedelta(days=1)
    plan.save()
    fortnox_sandbox.tenant(1046823).locked_until = plan.locked_until
    old = journal(company, ref="OLD-1", day=today - dt.timedelta(days=3))
    assert [p.code for p in voucher_queue(voucher=old, actor="test")] == ["locked_period"]

    connected_fortnox.settings = {**connected_fortnox.settings, "locked_period_policy": "first_open"}
    connected_fortnox.save()
    moved = journal(company, ref="OLD-2", day=today - dt.timedelta(days=3))
    post(moved)
    moved.refresh_from_db()
    assert moved.state == VoucherState.POSTED, moved.last_error
    remote = fortnox_sandbox.vouchers(1046823)[-1]
    assert remote.transaction_date == today
    assert f"orig. date {(today - dt.timedelta(days=3)).isoformat()}" in remote.description


def test_dropped_connection_after_commit_gives_exactly_one_voucher(connected_fortnox, fortnox_sandbox):
    voucher = journal(connected_fortnox.company)
    fortnox_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/3/vouchers")
    post(voucher)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED and voucher.pending_since is not None
    assert len(fortnox_sandbox.vouchers(1046823)) == 1  # it landed, we just don't know
    Voucher.objects.filter(pk=voucher.pk).update(next_attempt_at=timezone.now())
    vouchers_dispatch(max_seconds=20)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED
    assert len(fortnox_sandbox.vouchers(1046823)) == 1
    assert AuditEvent.objects.filter(voucher=voucher, action="remote:lookup").exists()


def test_timeout_then_not_found_posts_once(connected_fortnox, fortnox_sandbox):
    voucher = journal(connected_fortnox.company)
    fortnox_sandbox.faults.inject("drop_before", method="POST", path_contains="/3/vouchers")
    post(voucher)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED and voucher.pending_since is not None
    assert fortnox_sandbox.vouchers(1046823) == []
    Voucher.objects.filter(pk=voucher.pk).update(next_attempt_at=timezone.now())
    vouchers_dispatch(max_seconds=20)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED
    assert len(fortnox_sandbox.vouchers(1046823)) == 1


def test_worker_killed_mid_send_is_recovered_by_lookup(connected_fortnox, fortnox_sandbox):
    voucher = journal(connected_fortnox.company)
    fortnox_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/3/vouchers")
    post(voucher)
    # simulate the worker dying instead of recording: the voucher stays 'sending'
    Voucher.objects.filter(pk=voucher.pk).update(state=VoucherState.SENDING,
                                                 pending_since=timezone.now() - dt.timedelta(hours=1))
    assert vouchers_recover_stuck() == 1
    Voucher.objects.filter(pk=voucher.pk).update(next_attempt_at=None)
    vouchers_dispatch(max_seconds=20)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED
    assert len(fortnox_sandbox.vouchers(1046823)) == 1


def test_a_5xx_is_retried_later_with_lookup(connected_fortnox, fortnox_sandbox):
    voucher = journal(connected_fortnox.company)
    fortnox_sandbox.faults.inject("status", status=503, method="POST", path_contains="/3/vouchers")
    post(voucher)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED and voucher.next_attempt_at > timezone.now()
    assert "internal error (503)" in voucher.last_error


def test_429_burst_backs_off_and_posts(connected_fortnox, fortnox_sandbox):
    voucher = journal(connected_fortnox.company)
    fortnox_sandbox.faults.inject("status", status=429, method="POST", path_contains="/3/vouchers", times=2,
                                  body="Too Many Requests")
    started = fortnox_sandbox.clock.now()  # the clock the sandbox counts its window on (virtual_time)
    post(voucher)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED
    assert fortnox_sandbox.clock.now() - started >= 9  # paused the whole 5 s window after each 429
    statuses = [r.status for r in fortnox_sandbox.log if r.path.endswith("/3/vouchers")]
    assert statuses.count(429) == 2


def test_pacing_never_triggers_429(connected_fortnox, fortnox_sandbox):
    for n in range(40):
        journal(connected_fortnox.company, ref=f"B{n}", rows=((1930, "1.00", "0"), (1510, "0", "1.00")))
    started = fortnox_sandbox.clock.now()
    for voucher in Voucher.objects.filter(company=connected_fortnox.company):
        voucher_queue(voucher=voucher, actor="test", kick=False)
    result = vouchers_dispatch(max_seconds=60)
    elapsed = fortnox_sandbox.clock.now() - started
    assert result.posted == 40
    assert [r.status for r in fortnox_sandbox.log].count(429) == 0
    assert elapsed >= 39 * 5 / 25  # at most 25 requests per 5 s


# --- authorisation lost and regained ----------------------------------------------------------


def test_expired_authorisation_waits_then_goes_out_after_reconnect(connected_fortnox, fortnox_sandbox, staff_user,
                                                                  django_capture_on_commit_callbacks):
    company = connected_fortnox.company
    company.members.add(staff_user)
    fortnox_sandbox.revoke(1046823, FORTNOX_CLIENT[0])
    integration = Integration.objects.get(pk=connected_fortnox.pk)
    integration.credentials = dict(integration.credentials, expires_at=time.time() - 1)
    integration.save()

    voucher = journal(company)
    with django_capture_on_commit_callbacks(execute=True):
        post(voucher)
    voucher.refresh_from_db()
    integration.refresh_from_db()
    assert voucher.state == VoucherState.AWAITING_AUTHORISATION
    assert integration.status == IntegrationStatus.NEEDS_REAUTHORISATION
    assert mail.outbox and staff_user.email in mail.outbox[0].to
    assert "Nothing is lost" in mail.outbox[0].body
    assert fortnox_sandbox.vouchers(1046823) == []

    # more journals queued meanwhile wait too
    second = journal(company, ref="A26")
    voucher_queue(voucher=second, actor="test")
    vouchers_dispatch(max_seconds=5)
    second.refresh_from_db()
    assert second.state == VoucherState.AWAITING_AUTHORISATION

    code = fortnox_sandbox.authorize(FORTNOX_CLIENT[0], 1046823, tokens.FORTNOX_SCOPES, FORTNOX_REDIRECT)
    tokens.fortnox_exchange_code(integration=integration, code=code)
    assert integration_reconnected(integration=integration, actor="test") == 2
    vouchers_dispatch(max_seconds=20)
    voucher.refresh_from_db()
    second.refresh_from_db()
    assert voucher.state == second.state == VoucherState.POSTED
    assert len(fortnox_sandbox.vouchers(1046823)) == 2


def test_never_connected_means_awaiting_authorisation(db, fortnox_sandbox, company):
    IntegrationFactory(company=company, system="fortnox", status="setting_up")
    from tests.factories import fortnox_plan

    fortnox_plan(company, accounts=(1930, 1510))
    voucher = journal(company, rows=((1930, "5.00", "0"), (1510, "0", "5.00")))
    post(voucher)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.AWAITING_AUTHORISATION


def test_numbers_sent_as_strings_are_understood(connected_fortnox, fortnox_sandbox):
    fortnox_sandbox.quirks.quoted_numbers = True
    summary = chart_import(integration=connected_fortnox, actor="test")
    assert summary.accounts > 80 and summary.financial_years >= 2
    voucher = journal(connected_fortnox.company)
    post(voucher)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED
    assert voucher.remote_number.isdigit() and voucher.remote_year.isdigit()


def test_validation_error_with_capitalised_or_lower_case_keys(connected_fortnox, fortnox_sandbox):
    # a 404 answers with capitalised keys, a 400 with lower-case ones: both become plain words
    from integrations.fortnox.client import FortnoxClient, NotFound

    client = FortnoxClient(Integration.objects.get(pk=connected_fortnox.pk))
    with pytest.raises(NotFound) as missing:
        client.get("vouchers/A/999999")
    assert missing.value.code and "Fortnox" in missing.value.message
    fortnox_sandbox.faults.inject("status", status=400, method="POST", path_contains="/3/vouchers",
                                  content_type="application/json",
                                  body='{"ErrorInformation":{"error":1,"message":"Kan inte hitta kontot.","code":"2000423"}}')
    voucher = journal(connected_fortnox.company)
    post(voucher)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.FAILED
    assert voucher.last_error_code == "2000423"
    assert "does not exist in Fortnox" in voucher.last_error and "Kan inte hitta kontot." in voucher.last_error
