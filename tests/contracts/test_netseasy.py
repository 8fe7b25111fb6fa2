"""Every request Kontera makes to Nets Easy (Nexi Checkout), against one documented example.

Sources (see also shared/reference/netseasy-api.md):
  REPORTING  https://developer.nexigroup.com/nexi-checkout/en-EU/api/reporting-v1 — GET /report/v1/payouts
             (fromDate, toDate required; currency, pageNumber zero-based, pageSize) and
             GET /report/v1/payouts/{id} (pageNumber, pageSize); field names also in repository
             dr0wzee/nets-easy-dotnet, NetsEasy.Net/Entity/ReportPayouts/Payout.cs and ReportPayoutDetails/*.
  PAYMENT    GET /v1/payments/{paymentId}: the official PHP SDK, repository Nets-eCom/php-payment-sdk,
             lib/Model/Result/RetrievePaymentResult.php and tests/Model/Result/RetrievePaymentResultTest.php
  AUTH       the raw secret key in Authorization, no scheme (php-payment-sdk lib/Http/HttpClient.php)
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from integrations.netseasy.client import NetsEasyClient
from integrations.netseasy.connector import NetsEasyConnector
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db

KEY = "live-secret-key-1a6981e849434c8c90dd382878b4310d"
JSON = {"Content-Type": "application/json"}
PAYOUT_ID = "11ebb9ef6a7d4df0b20d59ad574e9761"  # a payout id as a Nexi QA test saw it
PAYMENT_ID = "025400006091b1ef6937598058c4e487"

PAYOUT = {  # REPORTING payout fields; values as in netseasy-api.md §3.5
    "id": PAYOUT_ID, "reference": "1234567890", "date": "2024-05-08", "bankAccountIban": "SE4550000000058398257466",
    "bankAccountBic": "ESSESESS", "currency": "SEK", "amount": 12094, "chargedAmount": 12500, "numberOfCharges": 1,
    "refundedAmount": 0, "numberOfRefunds": 0, "depositedAmount": 0, "numberOfDeposits": 0, "fees": 406,
    "feeVATpercent": 0, "feeTaxRate": 0, "feeTaxAmount": 0, "transactionTaxDetails": [{"rate": 2500, "amount": 2500}],
}
ACTION = {
    "id": "01ee00006091b2196937598058c4e488", "paymentId": PAYMENT_ID, "paymentAction": "CHARGE",
    "paymentMethod": "Visa", "paymentType": "CARD", "timestamp": "2024-05-03T05:07:40.118Z", "reference": "ORDER-1001",
    "invoiceNumber": None, "amount": 12500, "vatAmount": 2500, "currency": "SEK", "fee": 406, "flexibleFee": 306,
    "fixedFee": 100, "feeVATpercent": 0, "feeTaxRate": 0, "feeTaxAmount": 0,
    "transactionTaxDetails": [{"rate": 2500, "amount": 2500}], "subscriptionId": None,
}


@pytest.fixture
def nets(settings, db):
    settings.NETS_EASY_API_URL = "https://api.dibspayment.eu"
    return NetsEasyConnector(IntegrationFactory(system="netseasy", credentials={"secret_key": KEY}))


def assert_headers(captured):
    assert captured.headers["Authorization"] == KEY  # the raw key, no "Bearer"
    assert captured.headers["Accept"] == "application/json"
    assert captured.body is None


def test_list_payouts(nets, wire):
    wire.answer("GET", r"^/report/v1/payouts$", {"headers": JSON, "body": {"numberOfPayouts": 1, "payouts": [PAYOUT]}})
    [payout] = nets.list_payouts(dt.date(2024, 5, 1), dt.date(2024, 5, 31))
    sent = wire.last("GET", "/report/v1/payouts", exact=True)
    assert_headers(sent)
    assert sent.query == {"fromDate": "2024-05-01", "toDate": "2024-05-31", "pageSize": "100", "pageNumber": "0"}
    assert (payout.id, payout.reference, payout.date, payout.currency) == (PAYOUT_ID, "1234567890",
                                                                          dt.date(2024, 5, 8), "SEK")
    assert (payout.amount, payout.charged, payout.fees) == (Decimal("120.94"), Decimal("125.00"), Decimal("4.06"))


def test_payout_details(nets, wire):
    wire.answer("GET", rf"^/report/v1/payouts/{PAYOUT_ID}$", {"headers": JSON, "body": {
        **PAYOUT, "numberOfPaymentActions": 1, "paymentActions": [ACTION]}})
    payout, [action] = nets.payout_details(PAYOUT_ID)
    sent = wire.last("GET", f"/report/v1/payouts/{PAYOUT_ID}")
    assert_headers(sent)
    assert sent.query == {"pageNumber": "0", "pageSize": "100"}
    assert payout.number_of_actions == 1
    assert (action.action, action.payment_id, action.amount, action.vat, action.fee) == (
        "CHARGE", PAYMENT_ID, Decimal("125.00"), Decimal("25.00"), Decimal("4.06"))


def test_get_payment(nets, wire):
    wire.answer("GET", rf"^/v1/payments/{PAYMENT_ID}$", {"headers": JSON, "body": {"payment": {
        "paymentId": PAYMENT_ID, "summary": {"reservedAmount": 12500, "chargedAmount": 12500},
        "consumer": {"shippingAddress": {"addressLine1": "Solgatan 4", "postalCode": "11522", "city": "STOCKHOLM",
                                         "country": "SWE"}, "company": {},
                     "privatePerson": {"firstName": "John", "lastName": "Doe"}},
        "paymentDetails": {"paymentType": "CARD", "paymentMethod": "Visa"},
        "orderDetails": {"amount": 12500, "currency": "SEK", "reference": "ORDER-1001"},
        "created": "2024-05-03T05:07:10.000Z",
        "charges": [{"chargeId": "01ee00006091b2196937598058c4e488", "amount": 12500,
                     "created": "2024-05-03T05:07:40.118Z", "orderItems": [
                         {"reference": "SKU-1", "name": "Bok", "quantity": 1, "unit": "pcs", "unitPrice": 10000,
                          "taxRate": 2500, "taxAmount": 2500, "grossTotalAmount": 12500, "netTotalAmount": 10000}]}],
    }}})
    payment = nets.get_payment(PAYMENT_ID)
    assert_headers(wire.last("GET", f"/v1/payments/{PAYMENT_ID}"))
    assert wire.last("GET", f"/v1/payments/{PAYMENT_ID}").query == {}
    assert (payment.id, payment.country, payment.currency, payment.is_company) == (PAYMENT_ID, "SWE", "SEK", False)
    assert list(payment.charges) == ["01ee00006091b2196937598058c4e488"]


def test_check_connection_reads_one_day_of_payouts(nets, wire):
    wire.answer("GET", r"^/report/v1/payouts$", {"headers": JSON, "body": {"numberOfPayouts": 0, "payouts": []}})
    assert nets.check_connection().ok
    sent = wire.last("GET", "/report/v1/payouts", exact=True)
    assert set(sent.query) == {"fromDate", "toDate", "pageSize"}


def test_the_client_never_shows_the_key():
    assert KEY not in repr(NetsEasyClient(KEY))
