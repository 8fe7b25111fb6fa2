"""The Nets Easy flow's pure parts: the region rule, minor units → Decimal, one action's lines, settings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from bookkeeping.rules import sales_region
from card_payments.models import NetsPayment, NetsPaymentAction
from card_payments.services.booking_rules import plan_action
from card_payments.services.settings import NetsConfig, clean_secret_key, clean_settings
from integrations.netseasy import mapping

D = Decimal

# Written out here (not imported), so a wrong list in the code fails this test.
EU_27 = ["AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL",
         "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP"]


def test_sweden_is_its_own_region():
    assert sales_region("SWE") == "se"
    assert sales_region("swe ") == "se"
    assert sales_region("SE") == "se"


@pytest.mark.parametrize("country", EU_27)
def test_every_other_eu_member_state_is_eu(country):
    assert sales_region(country) == "eu"


def test_there_are_26_other_member_states():
    assert len(set(EU_27)) == 26


@pytest.mark.parametrize("country", ["NOR", "USA", "GBR", "CHE", "ISL", "CAN", "AUS", "JPN", "TUR", "UKR", "ALA"])
def test_outside_the_eu_is_the_world(country):
    assert sales_region(country) == "world"


@pytest.mark.parametrize("alpha2, region", [("DE", "eu"), ("GR", "eu"), ("EL", "eu"), ("NO", "world"),
                                            ("US", "world"), ("GB", "world"), ("CH", "world")])
def test_alpha2_is_understood(alpha2, region):
    assert sales_region(alpha2) == region


@pytest.mark.parametrize("country", [None, "", "S", "SVERIGE", "12", "S-E"])
def test_an_unknown_country_has_no_region(country):
    assert sales_region(country) is None


# --- minor units ------------------------------------------------------------------------------


def test_minor_units_convert_exactly_once_to_decimal():
    assert mapping.money(12500) == D("125.00") and isinstance(mapping.money(12500), Decimal)
    assert mapping.money(-38780) == D("-387.80")
    assert mapping.money(1) == D("0.01")
    assert mapping.money(None) == D("0.00")
    assert mapping.money(1500, "JPY") == D("1500")
    with pytest.raises(ValueError):
        mapping.money(125.0)


def test_rates_are_percent_times_100():
    assert mapping.rate_key(2500) == "25"
    assert mapping.rate_key(1200) == "12"
    assert mapping.rate_key(600) == "6"
    assert mapping.rate_key(1250) == "12.5"
    assert mapping.rate_key(0) == "0"


@pytest.mark.parametrize("sign", [-1, 1])
def test_refund_actions_are_magnitudes_whatever_the_sign(sign):
    raw = {"id": "AB" * 16, "paymentId": "CD" * 16, "paymentAction": "REFUND", "amount": sign * 12500,
           "vatAmount": sign * 2500, "fee": sign * 100, "currency": "SEK", "timestamp": "2024-05-03T05:07:40.118Z",
           "transactionTaxDetails": [{"rate": 2500, "amount": sign * 2500}]}
    action = mapping.action_dto(raw)
    assert (action.amount, action.vat, action.fee) == (D("125.00"), D("25.00"), D("1.00"))
    assert action.id == "ab" * 16 and action.timestamp == dt.datetime(2024, 5, 3, 5, 7, 40, 118000, tzinfo=dt.UTC)
    assert action.tax_details == (("25", D("25.00")),)


def test_a_payout_keeps_a_negative_amount():
    payout = mapping.payout_dto({"id": "11ebb9ef6a7d4df0b20d59ad574e9761", "reference": "1234567890",
                                 "date": "2024-05-08", "currency": "SEK", "amount": -38780, "chargedAmount": 23701,
                                 "refundedAmount": 61700, "depositedAmount": 0, "fees": 781})
    assert payout.amount == D("-387.80") and payout.refunded == D("617.00") and payout.fees == D("7.81")


def test_the_payment_country_is_the_shipping_country_else_billing():
    body = {"payment": {"paymentId": "a" * 32, "orderDetails": {"currency": "SEK", "reference": "R"},
                        "consumer": {"shippingAddress": {}, "billingAddress": {"country": "NOR"}, "company": {}}}}
    assert mapping.payment_dto(body).country == "NOR"
    body["payment"]["consumer"]["shippingAddress"] = {"country": "DNK"}
    assert mapping.payment_dto(body).country == "DNK"


# --- one action's lines ---------------------------------------------------------------------


def config(**overrides) -> NetsConfig:
    values = dict(start_date=dt.date(2024, 1, 1), sales_accounts={"se": 3001, "eu": 3106, "world": 3105},
                  sales_account_eu_b2b=None, receivable_account=1580, bank_account=1930, fee_account=6040,
                  vat_accounts={"25": 2611, "12": 2621, "6": 2631}, sales_series="A", payout_series="A",
                  mode="per_sale")
    values.update(overrides)
    return NetsConfig(**values)


def action(kind="CHARGE", amount="125.00", vat="25.00", nets_id="c1", tax=None):
    return NetsPaymentAction(nets_id=nets_id, payment_id="p1", action=kind, amount=D(amount), vat_amount=D(vat),
                             currency="SEK", booking_date=dt.date(2024, 5, 3), reference="ORDER-1",
                             tax_details=tax or {})


def payment(country="SWE", lines=(("25", "100.00", "25.00", "125.00"),), company=False, key="c1", refund=False):
    data = {key: [{"rate": r, "net": n, "vat": v, "gross": g} for r, n, v, g in lines]}
    return NetsPayment(payment_id="p1", country=country, is_company=company, charges={} if refund else data,
                       refunds=data if refund else {})


def lines_of(planned):
    return [(line.account, line.amount) for line in planned.lines]


def test_a_swedish_charge_debits_1580_and_credits_sales_and_vat():
    planned = plan_action(action(), payment(), config())
    assert lines_of(planned) == [(1580, D("125.00")), (3001, D("-100.00")), (2611, D("-25.00"))]
    assert (planned.region, planned.flags, planned.problem) == ("se", [], "")


def test_mixed_rates_go_to_their_own_vat_accounts():
    lines = (("25", "100.00", "25.00", "125.00"), ("12", "100.00", "12.00", "112.00"), ("6", "100.00", "6.00", "106.00"))
    planned = plan_action(action(amount="343.00", vat="43.00"), payment(lines=lines), config())
    assert lines_of(planned) == [(1580, D("343.00")), (3001, D("-300.00")), (2611, D("-25.00")),
                                 (2621, D("-12.00")), (2631, D("-6.00"))]


def test_a_refund_reverses():
    planned = plan_action(action(kind="REFUND"), payment(refund=True), config())
    assert lines_of(planned) == [(1580, D("-125.00")), (3001, D("100.00")), (2611, D("25.00"))]


def test_vat_on_a_norwegian_customer_is_booked_as_charged_and_flagged():
    planned = plan_action(action(), payment(country="NOR"), config())
    assert lines_of(planned) == [(1580, D("125.00")), (3105, D("-100.00")), (2611, D("-25.00"))]
    assert planned.region == "world" and "outside the EU (NOR)" in planned.flags[0]


def test_an_eu_company_without_vat_goes_to_the_b2b_account_when_set():
    zero = payment(country="DEU", company=True, lines=(("0", "125.00", "0.00", "125.00"),))
    assert lines_of(plan_action(action(vat="0.00"), zero, config())) == [(1580, D("125.00")), (3106, D("-125.00"))]
    planned = plan_action(action(vat="0.00"), zero, config(sales_account_eu_b2b=3108))
    assert lines_of(planned) == [(1580, D("125.00")), (3108, D("-125.00"))] and planned.flags == []
    consumer = payment(country="DEU", lines=(("0", "125.00", "0.00", "125.00"),))
    assert "consumer in another EU country" in plan_action(action(vat="0.00"), consumer, config()).flags[0]


def test_a_vat_rate_without_an_account_blocks_the_action():
    oss = payment(country="DEU", lines=(("19", "100.00", "19.00", "119.00"),))
    planned = plan_action(action(amount="119.00", vat="19.00"), oss, config())
    assert planned.lines == [] and "19 % VAT" in planned.problem


def test_an_unknown_country_blocks_the_action():
    assert "country is unknown" in plan_action(action(), payment(country=""), config()).problem


def test_without_order_lines_the_payout_reports_vat_is_used_and_a_mismatch_is_flagged():
    planned = plan_action(action(tax={"25": "25.00"}), payment(key="other"), config())
    assert lines_of(planned) == [(1580, D("125.00")), (3001, D("-100.00")), (2611, D("-25.00"))]
    odd = plan_action(action(tax={"25": "25.00"}),
                      payment(lines=(("25", "100.00", "25.00", "130.00"),)), config())
    assert "add up to 130.00" in odd.flags[0]


def test_a_deposit_moves_money_from_the_bank_to_nets():
    planned = plan_action(action(kind="DEPOSIT", amount="50.00", vat="0"), None, config())
    assert lines_of(planned) == [(1580, D("50.00")), (1930, D("-50.00"))]


# --- settings ---------------------------------------------------------------------------------


def test_settings_get_their_defaults():
    cleaned = clean_settings({"start_date": "2024-05-01", "sales_account_se": "3001", "sales_account_eu": 3106,
                              "sales_account_world": 3105})
    assert cleaned["receivable_account"] == 1580 and cleaned["bank_account"] == 1930
    assert cleaned["fee_account"] == 6040 and cleaned["vat_accounts"] == {"25": 2611, "12": 2621, "6": 2631}
    assert cleaned["sales_series"] == cleaned["payout_series"] == "A" and cleaned["mode"] == "per_sale"
    assert cleaned["sales_account_se"] == 3001


def test_settings_errors_are_per_field():
    with pytest.raises(ValidationError) as excinfo:
        clean_settings({"start_date": "1 maj", "sales_account_se": "30O1", "mode": "weekly",
                        "vat_accounts": {"tjugofem": 2611}})
    errors = excinfo.value.message_dict
    assert set(errors) >= {"start_date", "sales_account_se", "sales_account_eu", "sales_account_world", "mode",
                           "vat_accounts"}


def test_secret_keys_are_checked_for_shape():
    assert clean_secret_key(" live-secret-key-4b6f6e746572612d64656d6f2d6b6579 ").startswith("live-")
    for wrong in ("live-checkout-key-4b6f6e746572612d64656d6f2d6b6579", "abc", "Bearer live-secret-key-00"):
        with pytest.raises(ValidationError):
            clean_secret_key(wrong)
