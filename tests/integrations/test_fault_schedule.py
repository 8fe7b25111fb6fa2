"""Issue 8: the fault campaign in small and deterministic, in the suite (both databases).

Three Fortnox companies, two Dinero organisations and a web shop's Nets Easy payouts (booked into the
first Fortnox company), a few dozen vouchers, sent through the real
dispatch path (tasks inline, real HTTP to the sandboxes) under a fixed schedule of faults: dropped
before processing, dropped after the commit, 5xx, timeouts and 429 — on the posts and on the
look-ups, read-backs and book calls after them, and on the reading of the payouts from Nets. Counted from the sandboxes' own state:
0 double (our reference more than once at the target), 0 lost (every voucher posted, and there
exactly once), 0 stuck (nothing left in 'sending').
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.utils import timezone

from bookkeeping.models import Voucher, VoucherState
from bookkeeping.services.plans import chart_import
from bookkeeping.services.sending import vouchers_dispatch, vouchers_recover_stuck
from bookkeeping.services.vouchers import voucher_queue
from expense_documents.services.sync import expense_document_sync
from integrations import tokens
from integrations.fortnox import mapping as fortnox_mapping
from tests import factories
from tests.conftest import FORTNOX_CLIENT, FORTNOX_REDIRECT
from tests.dinero_fixtures import DINERO_ORG, expense
from tests.netseasy_fixtures import FORTNOX_TENANT, NETS_KEY, days_ago, remote_balance, sell

JOURNALS_PER_COMPANY = 8
DOCUMENTS_PER_ORGANISATION = 6
SECOND_ORG = (222333, "Anden ApS", "second-dinero-api-key", "22334455")
MORE_TENANTS = ((2000002, "Brf Andra", "769600-2222"), (2000003, "Brf Tredje", "769600-3333"))

POST_JOURNAL = ("POST", "/3/vouchers")
LOOK_UP_JOURNAL = ("GET", "/3/vouchers")
CREATE = ("POST", "/vouchers/purchase")  # the create (and, matched first, nothing else: see _dinero_fault)
READ_BACK = ("GET", "/vouchers/purchase/")
BOOK = ("POST", "/book")
LIST_FILES = ("GET", "/files")
LIST_PAYOUTS = ("GET", "/report/v1/payouts")  # the list and (matched after it) each payout's details

TIMEOUT = ("delay", {"seconds": 2.5})  # the read timeout is 1.5 s here
S503 = ("status", {"status": 503, "body": "Service Unavailable"})
S500 = ("status", {"status": 500, "body": "Internal Server Error"})
R429 = ("status", {"status": 429, "body": "Too Many Requests"})
DROP_BEFORE = ("drop_before", {})
DROP_AFTER = ("drop_after_commit", {})

# Round by round, what goes wrong (each fault hits the first matching request of that round).
FORTNOX_SCHEDULE = [
    [(DROP_AFTER, POST_JOURNAL), (DROP_AFTER, POST_JOURNAL), (DROP_BEFORE, POST_JOURNAL), (S503, POST_JOURNAL),
     (TIMEOUT, POST_JOURNAL), (R429, POST_JOURNAL), (DROP_AFTER, POST_JOURNAL), (S500, POST_JOURNAL)],
    # the look-ups of the unknown outcomes fail in every way, and a few new posts too
    [(S503, LOOK_UP_JOURNAL), (TIMEOUT, LOOK_UP_JOURNAL), (DROP_BEFORE, LOOK_UP_JOURNAL), (R429, LOOK_UP_JOURNAL),
     (DROP_AFTER, POST_JOURNAL), (S503, POST_JOURNAL)],
    [(S503, LOOK_UP_JOURNAL), (DROP_AFTER, POST_JOURNAL), (TIMEOUT, POST_JOURNAL)],
    [(DROP_BEFORE, LOOK_UP_JOURNAL)],
]
DINERO_SCHEDULE = [
    [(DROP_AFTER, CREATE), (S503, CREATE), (DROP_BEFORE, CREATE), (R429, CREATE),
     (S503, READ_BACK), (DROP_AFTER, BOOK), (S503, BOOK), (TIMEOUT, BOOK)],
    [(S503, LIST_FILES), (TIMEOUT, LIST_FILES), (DROP_BEFORE, LIST_FILES), (R429, LIST_FILES),
     (DROP_BEFORE, READ_BACK), (R429, BOOK), (DROP_AFTER, CREATE)],
    [(S503, LIST_FILES), (TIMEOUT, READ_BACK), (DROP_BEFORE, BOOK), (TIMEOUT, CREATE)],
    [(DROP_BEFORE, LIST_FILES), (S503, READ_BACK)],
]
# The payouts are read again each round; a failed reading books nothing and the next one goes on.
NETS_SCHEDULE = [
    [(S503, LIST_PAYOUTS)],
    [(TIMEOUT, LIST_PAYOUTS), (DROP_BEFORE, LIST_PAYOUTS)],
    [(DROP_AFTER, LIST_PAYOUTS), (R429, LIST_PAYOUTS)],
    [],
]
PAYOUTS = 3
SALES_PER_PAYOUT = 2


@pytest.fixture(autouse=True)
def _short_timeout(settings, fortnox_sandbox, dinero_sandbox):
    settings.KONTERA_HTTP_TIMEOUT = (2.0, 1.5)  # after the sandboxes' own setting


def _connect_fortnox(sandbox, tenant_id, name, org_number, slug):
    company = factories.CompanyFactory(name=name, slug=slug, org_number=org_number)
    integration = factories.IntegrationFactory(company=company, system="fortnox", status="active")
    code = sandbox.authorize(FORTNOX_CLIENT[0], tenant_id, tokens.FORTNOX_SCOPES, FORTNOX_REDIRECT)
    tokens.fortnox_exchange_code(integration=integration, code=code)
    integration.refresh_from_db()
    chart_import(integration=integration, actor="test")
    return company


def _connect_second_dinero(sandbox):
    from expense_documents.services.dinero_setup import dinero_setup

    org_id, name, api_key, cvr = SECOND_ORG
    sandbox.add_organization(org_id, name, api_key, vat_number=cvr)
    company = factories.CompanyFactory(name=name, slug="anden-aps", country="DK", base_currency="DKK",
                                       org_number=f"DK{cvr}")
    payment_list = factories.PaymentMethodListFactory(company=company, name="Kvitteringer")
    factories.PaymentMethodFactory(payment_list=payment_list, name="Firmakort", account_number=55010)
    dinero_setup(company=company, api_key=api_key, organization_id=str(org_id), error_account=7480,
                 import_chart=True, invoice_payment_method="63000", receipt_payment_list="Kvitteringer",
                 actor="test")
    return company


def _journals(company, prefix):
    vouchers = []
    for n in range(JOURNALS_PER_COMPANY):
        amount = f"{100 + n}.00"
        voucher = factories.balanced_voucher(company, rows=((1930, amount, "0"), (1510, "0", amount)),
                                             source_reference=f"{prefix}-{n}", series="A",
                                             date=timezone.localdate(), description=f"Journal {prefix}-{n}")
        assert voucher_queue(voucher=voucher, actor="test", kick=False) == []
        vouchers.append(voucher)
    return vouchers


def _documents(company, prefix):
    vouchers = []
    for n in range(DOCUMENTS_PER_ORGANISATION):
        kind = "invoice" if n % 2 == 0 else "receipt"
        document = expense(company, f"{prefix}-{n}", type=kind, lines=((f"{200 + n}.00", "I25", 7200, "Kontor"),))
        expense_document_sync(document=document, actor="test", kick=False)
        document.refresh_from_db()
        assert document.voucher.state == VoucherState.QUEUED, document.voucher.last_error
        vouchers.append(document.voucher)
    return vouchers


def _shop(nets_sandbox) -> list[str]:
    """Sales settled in a few payouts, each sale and payout to become one voucher in Fortnox."""
    payouts = []
    for p in range(PAYOUTS):
        for n in range(SALES_PER_PAYOUT):
            sell(nets_sandbox, day=days_ago(10 - p), lines=((10000 + 100 * n, 2500, 1),), reference=f"ORDER-{p}-{n}")
        payouts.append(nets_sandbox.settle_payout(NETS_KEY, date=days_ago(9 - p)))
    return payouts


def _inject(sandbox, faults):
    injected = []
    for (kind, kwargs), (method, path) in faults:
        injected.append(sandbox.faults.inject(kind, method=method, path_contains=path, **kwargs))
    return injected


def test_a_fixed_fault_schedule_gives_no_double_no_lost_no_stuck(
        connected_fortnox, fortnox_sandbox, connected_dinero, dinero_sandbox, nets_active, nets_sandbox,
        sandbox_clock, settings):
    from card_payments.models import NetsPayout, PayoutState
    from card_payments.services.sync import payouts_sync

    settings.KONTERA_HTTP_TIMEOUT = (2.0, 1.5)  # the Nets fixture sets its own; the delays are 2.5 s
    tenants = {fortnox_sandbox.tenant_id: connected_fortnox.company}
    for n, (tenant_id, name, org_number) in enumerate(MORE_TENANTS):
        fortnox_sandbox.add_tenant(tenant_id, name, org_number)
        tenants[tenant_id] = _connect_fortnox(fortnox_sandbox, tenant_id, name, org_number, f"brf-{n}")
    organisations = {DINERO_ORG: connected_dinero.company, SECOND_ORG[0]: _connect_second_dinero(dinero_sandbox)}

    journals = {tenant: _journals(company, f"J{tenant}") for tenant, company in tenants.items()}
    documents = {org: _documents(company, f"D{org}") for org, company in organisations.items()}
    nets_payouts = _shop(nets_sandbox)
    ours = [v for vs in (*journals.values(), *documents.values()) for v in vs]
    assert len(ours) == 3 * JOURNALS_PER_COMPANY + 2 * DOCUMENTS_PER_ORGANISATION
    shop = Voucher.objects.filter(company=nets_active.company, source_system="netseasy").exclude(kind="test")

    injected, landed = [], set()
    for round_number in range(12):
        if round_number < len(FORTNOX_SCHEDULE):
            injected += _inject(fortnox_sandbox, FORTNOX_SCHEDULE[round_number])
            injected += _inject(dinero_sandbox, DINERO_SCHEDULE[round_number])
            injected += _inject(nets_sandbox, NETS_SCHEDULE[round_number])
        payouts_sync(integration=nets_active, actor="test")  # what the schedule runs; the vouchers it books wait
        vouchers_dispatch(max_seconds=600)
        vouchers_recover_stuck()
        if round_number >= len(FORTNOX_SCHEDULE) and not (
                Voucher.objects.filter(pk__in=[v.pk for v in ours]).exclude(state=VoucherState.POSTED).exists()
                or shop.exclude(state=VoucherState.POSTED).exists()
                or NetsPayout.objects.exclude(state=PayoutState.BOOKED).exists()):
            break
        # Time passes: back-offs come due and every request limit frees. In life a retry after an unknown
        # outcome comes at least 30 s later (the back-off), long after a slow answer's request took effect;
        # the test makes retries due at once, so it first lets the slow requests land (the sandbox sleeps in
        # real time; before, a look-up could run before the timed-out post landed and the test posted twice).
        if any(f.kind == "delay" and f.times == 0 and id(f) not in landed for f in injected):
            time.sleep(TIMEOUT[1]["seconds"] - 1.5 + 0.5)
            landed.update(id(f) for f in injected if f.kind == "delay" and f.times == 0)
        sandbox_clock.advance(61)
        Voucher.objects.filter(state=VoucherState.QUEUED).update(next_attempt_at=timezone.now())

    # Every fault of the schedule happened (else the test would prove less than it says).
    assert all(fault.times == 0 for fault in injected), [f for f in injected if f.times]
    assert len(injected) == sum(len(faults) for faults in (*FORTNOX_SCHEDULE, *DINERO_SCHEDULE, *NETS_SCHEDULE))

    # The shop: each payout booked once, every sale and payout posted once, 1580 back to exactly 0.00.
    assert sorted(NetsPayout.objects.values_list("nets_id", flat=True)) == sorted(nets_payouts)
    assert set(NetsPayout.objects.values_list("state", flat=True)) == {PayoutState.BOOKED}
    assert shop.count() == PAYOUTS * (SALES_PER_PAYOUT + 1)
    assert set(shop.values_list("state", flat=True)) == {VoucherState.POSTED}
    ours += list(shop)
    assert remote_balance(fortnox_sandbox, 1580, tenant=FORTNOX_TENANT) == 0

    states = Counter(Voucher.objects.filter(pk__in=[v.pk for v in ours]).values_list("state", flat=True))
    assert states[VoucherState.SENDING] == 0, "stuck"
    assert states == {VoucherState.POSTED: len(ours)}, "lost (not posted): " + str(states)

    # Double and lost, read from the sandboxes' own state.
    for tenant_id, vouchers in journals.items():
        remote = fortnox_sandbox.vouchers(tenant_id)
        for voucher in vouchers:
            copies = [r for r in remote if fortnox_mapping.carries_reference({"Comments": r.comments}, voucher.reference)]
            assert len(copies) == 1, (voucher.reference, len(copies))
        if tenant_id == FORTNOX_TENANT:  # the shop's sales and payouts, and its test voucher, land here too
            for voucher in shop:
                assert len([r for r in remote if fortnox_mapping.carries_reference({"Comments": r.comments},
                                                                                   voucher.reference)]) == 1
            vouchers = [*vouchers, *shop, *Voucher.objects.filter(company=nets_active.company, kind="test")]
        assert len(remote) == len(vouchers), f"Fortnox {tenant_id}: {len(remote)} for {len(vouchers)}"
    for org_id, vouchers in documents.items():
        remote = list(dinero_sandbox.organization(org_id).purchase_vouchers.values())
        for voucher in vouchers:
            voucher.refresh_from_db()
            copies = [r for r in remote if str(r.get("ExternalReference") or "").split(":")[0] == voucher.reference]
            assert len(copies) == 1, (voucher.reference, len(copies))
            assert copies[0]["Guid"] == voucher.remote_id and copies[0]["Booked"]
        assert len(remote) == len(vouchers), f"Dinero {org_id}: {len(remote)} for {len(vouchers)}"
