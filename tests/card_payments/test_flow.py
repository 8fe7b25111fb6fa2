"""Nets Easy → Fortnox end to end, against both sandboxes over real HTTP: booking, reconciliation, exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bookkeeping.models import Voucher, VoucherKind, VoucherState
from card_payments.models import NetsPayment, NetsPaymentAction, NetsPayout, PayoutState
from card_payments.selectors import payout_reconciliation
from card_payments.services import payout_booking as payout_services
from card_payments.services.payout_booking import payout_mark_handled
from card_payments.services.sync import payouts_sync
from tests.netseasy_fixtures import FORTNOX_TENANT, NETS_KEY, days_ago, nets_values, remote_balance, sell, sync_and_post

D = Decimal


def remote_rows(fortnox_sandbox, voucher: Voucher):
    """The rows of our voucher as they landed in Fortnox: {account: debit − credit}."""
    [landed] = [v for v in fortnox_sandbox.vouchers(FORTNOX_TENANT)
                if v.series == voucher.remote_series and str(v.number) == voucher.remote_number]
    rows: dict[int, Decimal] = {}
    for row in landed.rows:
        rows[row.account] = rows.get(row.account, D("0")) + D(row.debit) - D(row.credit)
    return rows


def shop_two_payouts(nets_sandbox):
    """Day 1: a Swedish order (25 % + 12 %), a German one (25 %) and a Norwegian one (no VAT) → payout 1.
    Day 2: the Swedish order is refunded in full, another Swedish sale → payout 2 (the refund pays a fee)."""
    day1, day2 = days_ago(6), days_ago(5)
    sell(nets_sandbox, day=day1, country="SWE", lines=((19920, 2500, 2), (10625, 1200, 1)), reference="ORDER-1")
    sell(nets_sandbox, day=day1, country="DEU", lines=((47920, 2500, 1),), reference="ORDER-2")
    sell(nets_sandbox, day=day1, country="NOR", lines=((11920, 0, 1),), reference="ORDER-3")
    first = nets_sandbox.settle_payout(NETS_KEY, date=days_ago(5))
    charge_se = [a for a in nets_sandbox.payout_json(first)["paymentActions"] if a["reference"] == "ORDER-1"][0]
    nets_sandbox.refund(charge_se["id"], at=day2)
    sell(nets_sandbox, day=day2, country="SWE", lines=((7054, 1200, 3),), reference="ORDER-4")
    second = nets_sandbox.settle_payout(NETS_KEY, date=days_ago(4))
    return first, second


def test_payouts_reconcile_to_exactly_zero_in_fortnox(nets_active, nets_sandbox, fortnox_sandbox):
    first, second = shop_two_payouts(nets_sandbox)
    result = sync_and_post(nets_active)
    assert result.ok, result.as_dict()
    assert result.payouts_booked == 2

    ours = Voucher.objects.filter(company=nets_active.company, source_system="netseasy").exclude(kind="test")
    assert ours.count() == 4 + 1 + 2  # three sales, one refund, one sale; two payouts
    assert set(ours.values_list("state", flat=True)) == {VoucherState.POSTED}
    # the reconciliation account nets to exactly zero over everything that landed in Fortnox
    assert remote_balance(fortnox_sandbox, 1580) == D("0.00")
    for nets_id in (first, second):
        payout = NetsPayout.objects.get(nets_id=nets_id)
        nets = nets_sandbox.payout_json(nets_id)
        assert payout.state == PayoutState.BOOKED, payout.state_message
        assert payout.amount == D(nets["amount"]) / 100
        rec = payout_reconciliation(payout)
        assert (rec.expected, rec.residual, rec.account_balance) == (payout.amount, D("0.00"), D("0.00"))
        rows = remote_rows(fortnox_sandbox, payout.voucher)
        assert rows[1930] == payout.amount  # the bank gets exactly what Nets paid out
        assert rows[6040] == D(nets["fees"]) / 100 > 0
        assert rows[1580] == -(payout.amount + payout.fees)
        assert payout.voucher.series == "A" and payout.voucher.date == payout.date


def test_sales_are_booked_by_region_with_vat_per_rate(nets_active, nets_sandbox, fortnox_sandbox):
    shop_two_payouts(nets_sandbox)
    sync_and_post(nets_active)
    by_ref = {a.reference: a for a in NetsPaymentAction.objects.filter(action="CHARGE")}

    swedish = remote_rows(fortnox_sandbox, by_ref["ORDER-1"].voucher)
    # 2 × 199.20 at 25 % + 106.25 at 12 %: net 504.65, VAT 99.60 + 12.75
    assert swedish == {1580: D("617.00"), 3001: D("-504.65"), 2611: D("-99.60"), 2621: D("-12.75")}
    german = remote_rows(fortnox_sandbox, by_ref["ORDER-2"].voucher)
    assert german == {1580: D("599.00"), 3106: D("-479.20"), 2611: D("-119.80")}
    norwegian = remote_rows(fortnox_sandbox, by_ref["ORDER-3"].voucher)
    assert norwegian == {1580: D("119.20"), 3105: D("-119.20")}
    assert (by_ref["ORDER-3"].country, by_ref["ORDER-3"].region) == ("NOR", "world")
    assert by_ref["ORDER-2"].region == "eu" and by_ref["ORDER-1"].region == "se"
    assert all(a.flag == "" for a in by_ref.values())


def test_a_refund_reverses_the_sale(nets_active, nets_sandbox, fortnox_sandbox):
    shop_two_payouts(nets_sandbox)
    sync_and_post(nets_active)
    refund = NetsPaymentAction.objects.get(action="REFUND")
    assert refund.amount == D("617.00")  # a magnitude, whatever sign Nets sends
    rows = remote_rows(fortnox_sandbox, refund.voucher)
    assert rows == {1580: D("-617.00"), 3001: D("504.65"), 2611: D("99.60"), 2621: D("12.75")}
    assert refund.voucher.kind == VoucherKind.SALE and "återbetalning" in refund.voucher.description
    second = refund.payout
    assert second.refunded_amount == D("617.00") and second.amount < 0  # the refund exceeds the day's sales
    assert remote_rows(fortnox_sandbox, second.voucher)[1930] == second.amount  # the bank is credited


def test_fees_go_to_6040_without_vat(nets_active, nets_sandbox, fortnox_sandbox):
    first, second = shop_two_payouts(nets_sandbox)
    sync_and_post(nets_active)
    expected_fees = sum(D(nets_sandbox.payout_json(p)["fees"]) for p in (first, second)) / 100
    assert remote_balance(fortnox_sandbox, 6040) == expected_fees
    # the refund in payout 2 paid the fixed fee: 1.00 SEK on top of the sale's fee
    refund = NetsPaymentAction.objects.get(action="REFUND")
    assert refund.fee == D("1.00")
    assert remote_balance(fortnox_sandbox, 2641) == D("0.00")  # no input VAT: Nets' fees carry none
    landed_accounts = {row.account for v in fortnox_sandbox.vouchers(FORTNOX_TENANT) for row in v.rows}
    assert not landed_accounts & {2641, 2645, 2614}


@pytest.fixture
def refund_positive_sandbox(nets_sandbox):
    nets_sandbox.refund_amount_sign = 1
    return nets_sandbox


def test_either_refund_sign_convention_books_the_same(nets_active, refund_positive_sandbox, fortnox_sandbox):
    shop_two_payouts(refund_positive_sandbox)
    result = sync_and_post(nets_active)
    assert result.ok
    refund = NetsPaymentAction.objects.get(action="REFUND")
    assert refund.amount == D("617.00") and refund.fee == D("1.00")
    assert remote_balance(fortnox_sandbox, 1580) == D("0.00")


def test_per_day_mode_books_one_summary_voucher_per_day(connected_fortnox, nets_sandbox, staff_user,
                                                        django_capture_on_commit_callbacks, fortnox_sandbox):
    from card_payments.services.activation import netseasy_confirm, netseasy_settings_save

    with django_capture_on_commit_callbacks(execute=True):
        saved = netseasy_settings_save(company=connected_fortnox.company, values=nets_values(mode="per_day"),
                                       secret_key=NETS_KEY, actor=staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        assert netseasy_confirm(integration=saved.integration, actor="test")[0]
    shop_two_payouts(nets_sandbox)
    result = sync_and_post(saved.integration)
    assert result.ok, result.as_dict()
    sales = Voucher.objects.filter(source_system="netseasy", kind=VoucherKind.SALE)
    assert sales.count() == 2  # one per day, not one per sale
    day1 = sales.get(date=days_ago(6))
    assert remote_rows(fortnox_sandbox, day1) == {
        1580: D("1335.20"), 3001: D("-504.65"), 3106: D("-479.20"), 3105: D("-119.20"),
        2611: D("-219.40"), 2621: D("-12.75")}
    day2 = sales.get(date=days_ago(5))  # the refund of ORDER-1 and ORDER-4 on one voucher, netted per account
    assert remote_rows(fortnox_sandbox, day2) == {
        1580: D("-379.99"), 3001: D("504.65") - D("211.62"), 2611: D("99.60"), 2621: D("12.75") - D("25.39")}
    assert remote_balance(fortnox_sandbox, 1580) == D("0.00")
    assert all(payout_reconciliation(p).residual == 0 for p in NetsPayout.objects.all())


def test_a_payout_in_another_currency_waits_for_staff(nets_active, nets_sandbox, staff_user):
    sell(nets_sandbox, day=days_ago(3), country="DEU", lines=((4792, 2500, 1),), currency="EUR", reference="EU-1")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2), currency="EUR")
    result = sync_and_post(nets_active)
    payout = NetsPayout.objects.get()
    assert payout.state == PayoutState.WAITING_CURRENCY and "EUR" in payout.state_message
    assert result.waiting_currency == 1 and result.ok  # waiting is a clear state, not a failure
    assert not Voucher.objects.filter(source_system="netseasy").exclude(kind="test").exists()
    assert not NetsPaymentAction.objects.filter(booked_at__isnull=False).exists()
    assert payout_mark_handled(payout=payout, actor=staff_user)
    payout.refresh_from_db()
    assert payout.state == PayoutState.HANDLED_MANUALLY
    sync_and_post(nets_active)
    assert not Voucher.objects.filter(source_system="netseasy").exclude(kind="test").exists()


def test_running_the_sync_again_books_nothing_new(nets_active, nets_sandbox, fortnox_sandbox):
    shop_two_payouts(nets_sandbox)
    sync_and_post(nets_active)
    vouchers = Voucher.objects.count()
    landed = len(fortnox_sandbox.vouchers(FORTNOX_TENANT))
    payment_reads = sum(1 for r in nets_sandbox.log if "/v1/payments/" in r.path)
    again = sync_and_post(nets_active)
    assert again.ok and again.vouchers_created == 0 and again.payouts_new == 0
    assert Voucher.objects.count() == vouchers
    assert len(fortnox_sandbox.vouchers(FORTNOX_TENANT)) == landed
    # payments are cached: the second run did not fetch them again
    assert sum(1 for r in nets_sandbox.log if "/v1/payments/" in r.path) == payment_reads
    assert NetsPayment.objects.count() == 4


def test_new_payouts_are_booked_by_the_next_sync(nets_active, nets_sandbox, fortnox_sandbox):
    sell(nets_sandbox, day=days_ago(3), reference="ORDER-A")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    sync_and_post(nets_active)
    sell(nets_sandbox, day=days_ago(2), reference="ORDER-B")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(1))
    result = sync_and_post(nets_active)
    assert result.payouts_new == 1 and result.vouchers_created == 2
    assert NetsPayout.objects.filter(state=PayoutState.BOOKED).count() == 2
    assert remote_balance(fortnox_sandbox, 1580) == D("0.00")


class Crash(BaseException):
    """Stands for the process dying (not an Exception, so nothing catches it)."""


@pytest.mark.django_db(transaction=True)
def test_a_crash_between_two_vouchers_books_nothing_twice(nets_active, nets_sandbox, fortnox_sandbox, monkeypatch):
    shop_two_payouts(nets_sandbox)
    real = payout_services._create_voucher
    calls = []

    def dies_on_the_third(**kwargs):
        calls.append(kwargs["reference"])
        if len(calls) == 3:
            raise Crash()
        return real(**kwargs)

    monkeypatch.setattr(payout_services, "_create_voucher", dies_on_the_third)
    with pytest.raises(Crash):
        payouts_sync(integration=nets_active, actor="test")
    # two vouchers were committed (and, on commit, posted); the third rolled back with its claim
    assert NetsPaymentAction.objects.filter(booked_at__isnull=False).count() == 2
    assert Voucher.objects.filter(source_system="netseasy").exclude(kind="test").count() == 2

    monkeypatch.setattr(payout_services, "_create_voucher", real)
    result = sync_and_post(nets_active)
    assert result.ok, result.as_dict()
    ours = Voucher.objects.filter(source_system="netseasy").exclude(kind="test")
    assert ours.count() == 7
    assert set(ours.values_list("state", flat=True)) == {VoucherState.POSTED}
    for action in NetsPaymentAction.objects.all():
        assert Voucher.objects.filter(source_reference=action.nets_id).count() == 1
    landed = fortnox_sandbox.vouchers(FORTNOX_TENANT)
    assert len(landed) == 1 + 7  # the test voucher and each of ours exactly once
    tags = [v.comments.split()[0] for v in landed]
    assert len(tags) == len(set(tags))
    assert remote_balance(fortnox_sandbox, 1580) == D("0.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_book_each_payout_once(nets_active, nets_sandbox, fortnox_sandbox):
    import threading

    from django.db import connection

    shop_two_payouts(nets_sandbox)
    errors = []
    barrier = threading.Barrier(2)

    def worker():
        try:
            barrier.wait()
            payouts_sync(integration=nets_active, actor="test")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sync_and_post(nets_active)
    assert Voucher.objects.filter(source_system="netseasy").exclude(kind="test").count() == 7
    assert remote_balance(fortnox_sandbox, 1580) == D("0.00")


def test_a_deposit_is_booked_from_the_bank_to_the_reconciliation_account(nets_active, nets_sandbox, fortnox_sandbox):
    sell(nets_sandbox, day=days_ago(3), reference="ORDER-1")
    nets_sandbox.deposit(NETS_KEY, 5000, at=nets_sandbox._epoch(days_ago(3)))
    payout_id = nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    result = sync_and_post(nets_active)
    assert result.ok, result.as_dict()
    deposit = NetsPaymentAction.objects.get(action="DEPOSIT")
    assert remote_rows(fortnox_sandbox, deposit.voucher) == {1580: D("50.00"), 1930: D("-50.00")}
    payout = NetsPayout.objects.get(nets_id=payout_id)
    assert payout.deposited_amount == D("50.00") and payout.gross == D("175.00")
    assert remote_rows(fortnox_sandbox, payout.voucher)[1580] == D("-175.00")
    assert remote_balance(fortnox_sandbox, 1580) == D("0.00")


def test_vat_that_does_not_match_the_region_is_booked_as_charged_and_flagged(nets_active, nets_sandbox,
                                                                             fortnox_sandbox):
    sell(nets_sandbox, day=days_ago(3), country="NOR", lines=((10000, 2500, 1),), reference="ORDER-NO")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    sync_and_post(nets_active)
    action = NetsPaymentAction.objects.get()
    assert "outside the EU (NOR)" in action.flag
    assert remote_rows(fortnox_sandbox, action.voucher) == {1580: D("125.00"), 3105: D("-100.00"),
                                                            2611: D("-25.00")}
    payout = action.payout
    assert payout.state == PayoutState.BOOKED and "worth a look" in payout.state_message


def test_an_eu_company_without_vat_goes_to_3108_when_configured(connected_fortnox, nets_sandbox, staff_user,
                                                                django_capture_on_commit_callbacks, fortnox_sandbox):
    from card_payments.services.activation import netseasy_confirm, netseasy_settings_save

    with django_capture_on_commit_callbacks(execute=True):
        saved = netseasy_settings_save(company=connected_fortnox.company,
                                       values=nets_values(sales_account_eu_b2b=3108), secret_key=NETS_KEY,
                                       actor=staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        assert netseasy_confirm(integration=saved.integration, actor="test")[0]
    sell(nets_sandbox, day=days_ago(3), country="FIN", company=True, lines=((40000, 0, 1),), reference="B2B-1")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    sync_and_post(saved.integration)
    action = NetsPaymentAction.objects.get()
    assert remote_rows(fortnox_sandbox, action.voucher) == {1580: D("400.00"), 3108: D("-400.00")}
    assert action.flag == ""


def test_the_demo_merchant_books_three_weeks_with_zero_residuals(connected_fortnox, sandbox_server, settings,
                                                                 staff_user, django_capture_on_commit_callbacks,
                                                                 fortnox_sandbox):
    """The sandbox's demo data (Sweden, EU, outside the EU, refunds, one EUR payout), per-day mode."""
    from card_payments.services.activation import netseasy_confirm, netseasy_settings_save
    from integrations.sandboxes.netseasy import DEMO_SECRET_KEY, NetsEasySandbox

    sandbox = NetsEasySandbox()
    demo = sandbox.seed_demo()
    sandbox_server.board.apps["/netseasy"] = sandbox
    settings.NETS_EASY_API_URL = f"{sandbox_server.url}/netseasy"
    try:
        with django_capture_on_commit_callbacks(execute=True):
            saved = netseasy_settings_save(company=connected_fortnox.company, secret_key=DEMO_SECRET_KEY,
                                           values=nets_values(mode="per_day", start_date=demo["from_date"]),
                                           actor=staff_user)
        with django_capture_on_commit_callbacks(execute=True):
            assert netseasy_confirm(integration=saved.integration, actor="test")[0]
        result = sync_and_post(saved.integration)
    finally:
        sandbox_server.board.apps.pop("/netseasy", None)
    assert result.ok, result.as_dict()
    sek = NetsPayout.objects.filter(currency="SEK")
    assert sek.count() == len(demo["payout_ids"]) and set(sek.values_list("state", flat=True)) == {"booked"}
    assert NetsPayout.objects.get(currency="EUR").state == PayoutState.WAITING_CURRENCY
    assert all(payout_reconciliation(p).residual == 0 for p in sek)
    assert NetsPaymentAction.objects.filter(action="REFUND", booked_at__isnull=False).count() == demo["refunds"]
    assert remote_balance(fortnox_sandbox, 1580) == D("0.00")
    assert remote_balance(fortnox_sandbox, 1930) == sum(p.amount for p in sek)
    assert remote_balance(fortnox_sandbox, 6040) == sum(p.fees for p in sek)
    regions = set(NetsPaymentAction.objects.exclude(region="").values_list("region", flat=True))
    assert regions == {"se", "eu", "world"}
    assert not Voucher.objects.filter(source_system="netseasy").exclude(state=VoucherState.POSTED).exists()
