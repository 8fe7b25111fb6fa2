"""The Nets Easy connector against the sandbox over real HTTP: raw-key auth, paging, typed errors, Decimal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qs

import pytest

from integrations.base import AuthError, RemoteValidationError, RetryableError
from integrations.netseasy import client as client_module
from integrations.netseasy.connector import NetsEasyConnector
from tests.factories import IntegrationFactory
from tests.netseasy_fixtures import NETS_KEY, OTHER_NETS_KEY, days_ago, sell

D = Decimal


@pytest.fixture
def connector(db, nets_sandbox, company):
    integration = IntegrationFactory(company=company, system="netseasy", status="active",
                                     credentials={"secret_key": NETS_KEY})
    return NetsEasyConnector(integration)


def queries(sandbox, path_part):
    return [parse_qs(r.query) for r in sandbox.log if path_part in r.path]


def test_the_raw_secret_key_is_the_authorization_header(connector, nets_sandbox):
    assert connector.check_connection().ok
    wrong = NetsEasyConnector(IntegrationFactory(system="netseasy", credentials={"secret_key": OTHER_NETS_KEY}))
    with pytest.raises(AuthError) as excinfo:
        wrong.check_connection()
    assert "does not accept the secret key" in excinfo.value.message
    assert excinfo.value.http_status == 401
    assert OTHER_NETS_KEY not in excinfo.value.message and OTHER_NETS_KEY not in repr(wrong.client)


def test_list_payouts_reads_every_zero_based_page(connector, nets_sandbox, monkeypatch):
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    for n in range(5):
        sell(nets_sandbox, day=days_ago(10 - n), reference=f"ORDER-{n}")
        nets_sandbox.settle_payout(NETS_KEY, date=days_ago(9 - n))
    payouts = connector.list_payouts(days_ago(30), days_ago(0))
    assert len(payouts) == 5 and len({p.id for p in payouts}) == 5
    pages = [q["pageNumber"] for q in queries(nets_sandbox, "/report/v1/payouts")]
    assert pages == [["0"], ["1"], ["2"]]
    assert payouts[0].date == days_ago(9) and payouts[0].currency == "SEK"


def test_payout_details_merge_every_page_of_payment_actions(connector, nets_sandbox, monkeypatch):
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    for n in range(5):
        sell(nets_sandbox, day=days_ago(3), reference=f"ORDER-{n}")
    payout_id = nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    payout, actions = connector.payout_details(payout_id)
    assert len(actions) == payout.number_of_actions == 5
    assert sorted(a.reference for a in actions) == [f"ORDER-{n}" for n in range(5)]
    assert len(queries(nets_sandbox, f"/report/v1/payouts/{payout_id}")) == 3


def test_amounts_become_decimal_once_and_refunds_are_magnitudes(connector, nets_sandbox):
    _pid, charge = sell(nets_sandbox, day=days_ago(4), lines=((10000, 2500, 1),), reference="ORDER-1")
    nets_sandbox.refund(charge, at=days_ago(3))
    payout_id = nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    raw = nets_sandbox.payout_json(payout_id)
    assert [a["amount"] for a in raw["paymentActions"]] == [12500, -12500]  # Nets' sign on refunds (default)
    payout, actions = connector.payout_details(payout_id)
    charge_dto, refund_dto = actions
    assert (charge_dto.action, charge_dto.amount, charge_dto.vat) == ("CHARGE", D("125.00"), D("25.00"))
    assert (refund_dto.action, refund_dto.amount, refund_dto.vat, refund_dto.fee) == ("REFUND", D("125.00"),
                                                                                      D("25.00"), D("1.00"))
    assert isinstance(payout.amount, Decimal) and payout.amount == D(raw["amount"]) / 100
    assert payout.fees == D(raw["fees"]) / 100
    assert charge_dto.timestamp.tzinfo is not None
    assert refund_dto.tax_details == (("25", D("25.00")),)


def test_get_payment_gives_country_company_and_order_lines(connector, nets_sandbox):
    payment_id, charge = sell(nets_sandbox, day=days_ago(2), country="DEU", company=True,
                              lines=((10000, 0, 2),), reference="B2B-1")
    payment = connector.get_payment(payment_id)
    assert (payment.country, payment.is_company, payment.currency, payment.reference) == ("DEU", True, "SEK", "B2B-1")
    [line] = payment.charges[charge]
    assert (line.rate, line.net, line.vat, line.gross) == ("0", D("200.00"), D("0.00"), D("200.00"))
    private_id, _c = sell(nets_sandbox, day=days_ago(2), country="SWE")
    assert connector.get_payment(private_id).is_company is False


def test_an_unknown_payment_is_a_validation_error(connector, nets_sandbox):
    with pytest.raises(RemoteValidationError) as excinfo:
        connector.get_payment("0" * 32)
    assert excinfo.value.http_status == 404


def test_a_429_pauses_then_succeeds(connector, nets_sandbox, monkeypatch):
    monkeypatch.setattr(client_module, "FIRST_PAUSE", 0.3)
    nets_sandbox.rate_limit = (2, 0.5)
    for _ in range(4):
        connector.check_connection()
    statuses = [r.status for r in nets_sandbox.log]
    assert statuses.count(429) >= 1 and statuses.count(200) == 4


def test_429_for_ever_becomes_a_retryable_error(connector, nets_sandbox, monkeypatch):
    monkeypatch.setattr(client_module, "FIRST_PAUSE", 0.05)
    nets_sandbox.faults.inject("status", status=429, times=10)
    with pytest.raises(RetryableError) as excinfo:
        connector.check_connection()
    assert excinfo.value.http_status == 429
    assert [r.status for r in nets_sandbox.log].count(429) == client_module.MAX_RATE_RETRIES + 1


@pytest.mark.parametrize("fault", [
    {"kind": "status", "status": 503},
    {"kind": "drop_before"},
    {"kind": "delay", "seconds": 3.5},  # longer than the 3 s read timeout
])
def test_5xx_timeouts_and_dropped_connections_are_retryable(connector, nets_sandbox, fault):
    nets_sandbox.faults.inject(**fault)
    with pytest.raises(RetryableError):
        connector.list_payouts(dt.date.today(), dt.date.today())


def test_it_is_a_source_not_a_target(connector):
    assert NetsEasyConnector.is_target is False
    assert NetsEasyConnector.secret_fields == ("secret_key",)
    from integrations.registry import connector_class

    assert connector_class("netseasy") is NetsEasyConnector
