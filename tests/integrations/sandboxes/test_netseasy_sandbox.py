"""The Nets Easy sandbox behaves like the contract in shared/reference/netseasy-api.md (no Django)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from integrations.sandboxes.base import ServerThread, mount
from integrations.sandboxes.netseasy import (
    DEMO_SECRET_KEY,
    EU_MEMBER_STATES,
    NetsEasySandbox,
    build_order_item,
    validate_order_items,
)

KEY = "test-secret-key-0123456789abcdef0123456789abcdef"
OTHER_KEY = "test-secret-key-fedcba9876543210fedcba9876543210"
ID_32_HEX = re.compile(r"^[0-9a-f]{32}$")
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")
ACTION_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

TSHIRT = {"reference": "TS-1", "name": "T-shirt", "quantity": 1, "unit": "pcs", "unitPrice": 10000,
          "taxRate": 2500}
COFFEE = {"reference": "KF-1", "name": "Kaffe", "quantity": 2, "unit": "pcs", "unitPrice": 10625,
          "taxRate": 1200}


@pytest.fixture(scope="module")
def shared():
    """One sandbox served for the whole module (stopping a server costs half a second)."""
    sandbox = NetsEasySandbox()
    thread = ServerThread(sandbox).start()
    yield sandbox, thread
    thread.stop()


@pytest.fixture
def sandbox(shared):
    sandbox = shared[0]
    sandbox.reset()
    sandbox.rate_limit = None
    return sandbox


@pytest.fixture
def server(shared, sandbox):
    return shared[1]


@pytest.fixture
def merchant(sandbox):
    return sandbox.add_merchant(KEY, "Testbutiken AB")


class Api:
    """A minimal client: raw key in Authorization, JSON in and out."""

    def __init__(self, base: str, key: str | None = KEY) -> None:
        self.base = base
        self.session = requests.Session()
        if key is not None:
            self.session.headers["Authorization"] = key

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=5)

    def post(self, path: str, body: dict, *, key: str | None = None, timeout: float = 5) -> requests.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        return self.session.post(self.base + path, json=body, headers=headers, timeout=timeout)


@pytest.fixture
def api(server, merchant):
    return Api(server.url)


def _payout_list(api: Api, **params) -> dict:
    params.setdefault("fromDate", "2000-01-01")
    params.setdefault("toDate", "2100-12-31")
    response = api.get("/report/v1/payouts", **params)
    assert response.status_code == 200, response.text
    return response.json()


def _check_invariant(payout: dict, actions: list[dict]) -> None:
    """The payout identity and that the actions add up to the totals, reading actions sign-agnostically."""
    assert payout["amount"] == (
        payout["chargedAmount"] - payout["refundedAmount"] + payout["depositedAmount"] - payout["fees"]
    )
    by_kind: dict[str, list[dict]] = {"CHARGE": [], "REFUND": [], "DEPOSIT": []}
    for action in actions:
        by_kind[action["paymentAction"]].append(action)
        assert abs(action["fee"]) == abs(action["flexibleFee"]) + abs(action["fixedFee"])
    assert payout["chargedAmount"] == sum(abs(a["amount"]) for a in by_kind["CHARGE"])
    assert payout["refundedAmount"] == sum(abs(a["amount"]) for a in by_kind["REFUND"])
    assert payout["depositedAmount"] == sum(abs(a["amount"]) for a in by_kind["DEPOSIT"])
    assert payout["numberOfCharges"] == len(by_kind["CHARGE"])
    assert payout["numberOfRefunds"] == len(by_kind["REFUND"])
    assert payout["numberOfDeposits"] == len(by_kind["DEPOSIT"])
    assert payout["fees"] == sum(abs(a["fee"]) for a in actions)


# ----------------------------------------------------------------------------------------------- auth


def test_raw_secret_key_is_accepted(api):
    response = api.get("/report/v1/payouts", fromDate="2024-01-01", toDate="2024-01-31")
    assert response.status_code == 200
    assert response.json() == {"numberOfPayouts": 0, "payouts": []}


@pytest.mark.parametrize(
    "header",
    [None, OTHER_KEY, f"Bearer {KEY}", f"Basic {KEY}", KEY.upper(), "live" + KEY[4:]],
    ids=["missing", "unknown", "bearer", "basic", "upper", "other-env"],
)
def test_wrong_or_prefixed_key_gets_401_with_empty_body(server, merchant, sandbox, header):
    payment_id = sandbox.create_payment(merchant)
    client = Api(server.url, key=header)
    for response in (client.get(f"/v1/payments/{payment_id}"),
                     client.get("/report/v1/payouts", fromDate="2024-01-01", toDate="2024-01-31")):
        assert response.status_code == 401
        assert response.content == b""


def test_merchants_are_isolated(server, sandbox, merchant):
    sandbox.add_merchant(OTHER_KEY, "Annan AB")
    payment_id = sandbox.create_payment(merchant)
    assert Api(server.url, key=OTHER_KEY).get(f"/v1/payments/{payment_id}").status_code == 404
    assert Api(server.url).get(f"/v1/payments/{payment_id}").status_code == 200


def test_add_merchant_checks_key_format_and_environment():
    sandbox = NetsEasySandbox(environment="live")
    with pytest.raises(ValueError):
        sandbox.add_merchant("live-secret-key-xyz", "Kort nyckel")
    with pytest.raises(ValueError):
        sandbox.add_merchant(KEY, "Testnyckel mot live")
    sandbox.add_merchant("live" + KEY[4:], "Live AB")


# ------------------------------------------------------------------------------------- Payment API


def test_payment_shape_omits_zero_summary_keys_and_uses_alpha3(api, sandbox, merchant):
    created = datetime(2024, 5, 3, 5, 6, 11, 325400, tzinfo=UTC)
    payment_id = sandbox.create_payment(merchant, amount_items=[TSHIRT, COFFEE], country="DEU",
                                        reference="ORDER-1001", created=created)
    assert ID_32_HEX.match(payment_id)

    payment = api.get(f"/v1/payments/{payment_id}").json()["payment"]
    amount = 12500 + 23800
    assert payment["paymentId"] == payment_id
    assert payment["summary"] == {"reservedAmount": amount}
    assert payment["orderDetails"] == {"amount": amount, "currency": "SEK", "reference": "ORDER-1001"}
    assert payment["consumer"]["shippingAddress"]["country"] == "DEU"
    assert payment["consumer"]["billingAddress"]["country"] == "DEU"
    assert payment["consumer"]["company"] == {}
    assert payment["consumer"]["privatePerson"]["lastName"]
    assert payment["paymentDetails"]["paymentType"] == "CARD"
    assert payment["paymentDetails"]["paymentMethod"] in ("Visa", "MasterCard")
    assert set(payment["paymentDetails"]["cardDetails"]) == {"maskedPan", "expiryDate"}
    assert payment["created"] == "2024-05-03T05:06:11.3254+00:00"
    assert payment["charges"] == [] and payment["refunds"] == []

    charge_id = sandbox.charge(payment_id)
    payment = api.get(f"/v1/payments/{payment_id}").json()["payment"]
    assert payment["summary"] == {"reservedAmount": amount, "chargedAmount": amount}
    [charge] = payment["charges"]
    assert charge["chargeId"] == charge_id and charge["amount"] == amount
    assert ISO_WITH_OFFSET.match(charge["created"])
    assert [item["reference"] for item in charge["orderItems"]] == ["TS-1", "KF-1"]

    refund_id = sandbox.refund(charge_id, 12500, order_items=[TSHIRT])
    payment = api.get(f"/v1/payments/{payment_id}").json()["payment"]
    assert payment["summary"] == {"reservedAmount": amount, "chargedAmount": amount, "refundedAmount": 12500}
    [refund] = payment["refunds"]
    assert refund["refundId"] == refund_id and refund["state"] == "Completed" and refund["amount"] == 12500


def test_company_consumer(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant, company=True)
    consumer = api.get(f"/v1/payments/{payment_id}").json()["payment"]["consumer"]
    assert consumer["privatePerson"] == {}
    assert consumer["company"]["name"] and consumer["company"]["registrationNumber"]
    assert consumer["company"]["contactDetails"]["phoneNumber"]["prefix"] == "+46"


def test_order_item_arithmetic():
    assert build_order_item(TSHIRT) == {
        "reference": "TS-1", "name": "T-shirt", "quantity": 1.0, "unit": "pcs", "unitPrice": 10000,
        "taxRate": 2500, "taxAmount": 2500, "grossTotalAmount": 12500, "netTotalAmount": 10000,
    }
    coffee = build_order_item(COFFEE)
    assert (coffee["netTotalAmount"], coffee["taxAmount"], coffee["grossTotalAmount"]) == (21250, 2550, 23800)
    # 7054 * 12 % = 846.48 -> 846 (half up), gross 7900
    tea = build_order_item({"unitPrice": 7054, "taxRate": 1200})
    assert (tea["taxAmount"], tea["grossTotalAmount"]) == (846, 7900)
    discount = build_order_item({"unitPrice": -2000, "taxRate": 2500})
    assert (discount["taxAmount"], discount["grossTotalAmount"]) == (-500, -2500)
    export = build_order_item({"unitPrice": 19920, "quantity": 3, "taxRate": 0})
    assert (export["taxAmount"], export["grossTotalAmount"]) == (0, 59760)
    with pytest.raises(ValueError):
        build_order_item({**TSHIRT, "grossTotalAmount": 12400})


def _create_body(items: list[dict], amount: int | None = None, **checkout) -> dict:
    full = [build_order_item(item) for item in items]
    return {
        "order": {"items": full, "currency": "SEK", "reference": "WEB-1",
                  "amount": sum(i["grossTotalAmount"] for i in full) if amount is None else amount},
        "checkout": {"url": "https://shop.example/checkout", "termsUrl": "https://shop.example/terms",
                     **checkout},
    }


def test_create_payment_over_http_then_hosted_checkout_then_charge(api, server, sandbox):
    response = api.post("/v1/payments", _create_body([TSHIRT]))
    assert response.status_code == 201
    body = response.json()
    payment_id = body["paymentId"]
    assert ID_32_HEX.match(payment_id)
    assert body["hostedPaymentPageUrl"].startswith(server.url) and payment_id in body["hostedPaymentPageUrl"]

    payment = api.get(f"/v1/payments/{payment_id}").json()["payment"]
    assert payment["summary"] == {} and payment["paymentDetails"] == {}
    # Not reserved yet: Nets will not charge it.
    refused = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500})
    assert refused.status_code == 400 and "errors" in refused.json()

    page = requests.get(body["hostedPaymentPageUrl"], timeout=5)
    assert page.status_code == 200 and "<form" in page.text
    done = requests.post(body["hostedPaymentPageUrl"], data={"country": "NOR", "paymentMethod": "Visa"},
                         timeout=5)
    assert done.status_code == 200
    payment = api.get(f"/v1/payments/{payment_id}").json()["payment"]
    assert payment["summary"] == {"reservedAmount": 12500}
    assert payment["consumer"]["shippingAddress"]["country"] == "NOR"

    charged = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500})
    assert charged.status_code == 201 and ID_32_HEX.match(charged.json()["chargeId"])


def test_hosted_payment_page_redirects_to_return_url(api):
    body = _create_body([TSHIRT], integrationType="HostedPaymentPage", returnUrl="https://shop.example/ok")
    del body["checkout"]["url"]
    created = api.post("/v1/payments", body).json()
    done = requests.post(created["hostedPaymentPageUrl"], data={"country": "SWE"}, allow_redirects=False,
                         timeout=5)
    assert done.status_code == 302
    assert done.headers["Location"] == f"https://shop.example/ok?paymentid={created['paymentId']}"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["order"].update(amount=12400), "order.amount"),
        (lambda b: b["order"]["items"][0].update(grossTotalAmount=12400), "order.items[0].grossTotalAmount"),
        (lambda b: b["order"]["items"][0].update(netTotalAmount=9000), "order.items[0].netTotalAmount"),
        (lambda b: b["order"]["items"][0].update(taxAmount=2000, grossTotalAmount=12000),
         "order.items[0].taxAmount"),
        (lambda b: b["order"].update(items=[]), "order.items"),
        (lambda b: b["order"].update(currency="XYZ"), "order.currency"),
        (lambda b: b["checkout"].pop("termsUrl"), "checkout.termsUrl"),
        (lambda b: b["checkout"].pop("url"), "checkout.url"),
        (lambda b: b.pop("order"), "order"),
    ],
)
def test_create_payment_validation(api, mutate, field):
    body = _create_body([TSHIRT])
    mutate(body)
    response = api.post("/v1/payments", body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert isinstance(response.json()["errors"][field], list)


def test_post_without_json_content_type_is_415(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant)
    response = api.session.post(f"{api.base}/v1/payments/{payment_id}/charges", data="amount=12500",
                                headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
    assert response.status_code == 415
    assert sandbox.payment_json(payment_id)["payment"]["charges"] == []


def test_unknown_and_malformed_ids(api):
    assert api.get("/v1/payments/" + "0" * 32).status_code == 404
    response = api.get("/v1/payments/not-a-payment-id")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["paymentId"]
    assert api.post("/v1/charges/" + "1" * 32 + "/refunds", {"amount": 100}).status_code == 404
    assert api.get("/report/v1/payouts/" + "2" * 32).status_code == 404
    assert api.get("/report/v1/payouts/xyz").status_code == 400


def test_no_list_payments_endpoint(api, sandbox, merchant):
    sandbox.create_payment(merchant, reference="ORDER-9")
    for response in (api.get("/v1/payments"), api.get("/v1/payments", reference="ORDER-9"),
                     api.get("/v1/payments/")):
        assert response.status_code in (404, 405)
        assert response.content == b""


# ------------------------------------------------------------------------------ charges and refunds


def test_charge_with_idempotency_key_charges_once(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant, amount_items=[TSHIRT])
    first = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="charge-abc")
    second = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="charge-abc")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    payment = api.get(f"/v1/payments/{payment_id}").json()["payment"]
    assert len(payment["charges"]) == 1
    assert payment["summary"]["chargedAmount"] == 12500

    # A new key is a new charge attempt, and the reservation is used up.
    third = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="charge-def")
    assert third.status_code == 400 and "amount" in third.json()["errors"]
    # The same key for a different request is refused, not replayed.
    other = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 100}, key="charge-abc")
    assert other.status_code == 400 and "Idempotency-Key" in other.json()["errors"]


def test_idempotency_key_length(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant)
    too_long = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="k" * 65)
    assert too_long.status_code == 400 and "Idempotency-Key" in too_long.json()["errors"]
    longest = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="k" * 64)
    assert longest.status_code == 201


def test_partial_charge_needs_order_items(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant, amount_items=[TSHIRT, COFFEE])
    without = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500})
    assert without.status_code == 400 and "orderItems" in without.json()["errors"]
    mismatch = api.post(f"/v1/payments/{payment_id}/charges",
                        {"amount": 12000, "orderItems": [build_order_item(TSHIRT)]})
    assert mismatch.status_code == 400
    partial = api.post(f"/v1/payments/{payment_id}/charges",
                       {"amount": 12500, "orderItems": [build_order_item(TSHIRT)]})
    assert partial.status_code == 201
    summary = api.get(f"/v1/payments/{payment_id}").json()["payment"]["summary"]
    assert summary == {"reservedAmount": 36300, "chargedAmount": 12500}


def test_refund_with_idempotency_key_and_limits(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant, amount_items=[TSHIRT, COFFEE])
    charge_id = sandbox.charge(payment_id)
    too_much = api.post(f"/v1/charges/{charge_id}/refunds", {"amount": 36301})
    assert too_much.status_code == 400 and "amount" in too_much.json()["errors"]
    partial_without_items = api.post(f"/v1/charges/{charge_id}/refunds", {"amount": 12500})
    assert partial_without_items.status_code == 400

    body = {"amount": 23800, "orderItems": [build_order_item(COFFEE)]}
    first = api.post(f"/v1/charges/{charge_id}/refunds", body, key="refund-1")
    second = api.post(f"/v1/charges/{charge_id}/refunds", body, key="refund-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["refundId"] == second.json()["refundId"]
    payment = api.get(f"/v1/payments/{payment_id}").json()["payment"]
    assert len(payment["refunds"]) == 1 and payment["summary"]["refundedAmount"] == 23800

    rest = api.post(f"/v1/charges/{charge_id}/refunds", {"amount": 12501,
                                                         "orderItems": [build_order_item(TSHIRT)]})
    assert rest.status_code == 400


def test_programmatic_partial_charge_and_refund_get_consistent_synthetic_lines(sandbox, merchant):
    payment_id = sandbox.create_payment(merchant, amount_items=[TSHIRT])
    first = sandbox.charge(payment_id, 5000)
    sandbox.charge(payment_id)  # the rest of the reservation
    sandbox.refund(first, 3333)
    payment = sandbox.payment_json(payment_id)["payment"]
    assert [c["amount"] for c in payment["charges"]] == [5000, 7500]
    assert payment["summary"] == {"reservedAmount": 12500, "chargedAmount": 12500, "refundedAmount": 3333}
    for entry in payment["charges"] + payment["refunds"]:
        items, errors = validate_order_items(entry["orderItems"], "orderItems")
        assert errors == {}
        assert sum(item["grossTotalAmount"] for item in items) == entry["amount"]
        assert {item["taxRate"] for item in items} == {2500}
    with pytest.raises(ValueError):
        sandbox.refund(first, 5000 - 3333 + 1)


# ------------------------------------------------------------------------------------ Reporting API


@pytest.mark.parametrize(
    "params",
    [{}, {"toDate": "2024-01-31"}, {"fromDate": "2024-01-01"},
     {"fromDate": "2024-13-01", "toDate": "2024-12-31"},
     {"fromDate": "20240101", "toDate": "2024-01-31"}, {"fromDate": "2024-1-1", "toDate": "2024-01-31"},
     {"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-01-31"}],
)
def test_payout_list_requires_valid_from_and_to_dates(api, params):
    response = api.get("/report/v1/payouts", **params)
    assert response.status_code == 400
    errors = response.json()["errors"]
    for name in ("fromDate", "toDate"):
        if name not in params or not re.fullmatch(r"\d{4}-\d\d-\d\d", params[name]) or "-13-" in params[name]:
            assert name in errors


def test_payout_list_paging_is_zero_based(api, sandbox, merchant):
    start = date(2023, 1, 1)
    created = []
    for n in range(250):
        sandbox.charge(sandbox.create_payment(merchant, reference=f"ORDER-{n}"))
        created.append(sandbox.settle_payout(merchant, date=start + timedelta(days=n)))
    pages = [_payout_list(api, pageNumber=page) for page in range(4)]
    assert [len(page["payouts"]) for page in pages] == [100, 100, 50, 0]
    assert {page["numberOfPayouts"] for page in pages} == {250}
    seen = [p["id"] for page in pages for p in page["payouts"]]
    assert seen == created  # sorted by date, no duplicates, nothing missing
    assert all("paymentActions" not in p and "numberOfPaymentActions" not in p for p in pages[0]["payouts"])

    small = _payout_list(api, pageSize=7, pageNumber=1)
    assert [p["id"] for p in small["payouts"]] == created[7:14]
    one_day = _payout_list(api, fromDate="2023-01-05", toDate="2023-01-05")
    assert [p["date"] for p in one_day["payouts"]] == ["2023-01-05"]  # both bounds inclusive
    assert _payout_list(api, fromDate="2023-01-05", toDate="2023-01-09")["numberOfPayouts"] == 5
    assert api.get("/report/v1/payouts", fromDate="2023-01-01", toDate="2023-12-31",
                   pageNumber="-1").status_code == 400
    assert api.get("/report/v1/payouts", fromDate="2023-01-01", toDate="2023-12-31",
                   pageSize="0").status_code == 400


def test_payout_fields(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant, amount_items=[TSHIRT], reference="ORDER-1001")
    charge_id = sandbox.charge(payment_id)
    payout_id = sandbox.settle_payout(merchant, date="2024-05-08")
    [payout] = _payout_list(api)["payouts"]
    assert ID_32_HEX.match(payout["id"]) and payout["id"] == payout_id
    assert payout["date"] == "2024-05-08" and payout["currency"] == "SEK"
    assert payout["bankAccountIban"].startswith("SE") and payout["bankAccountBic"]
    assert re.fullmatch(r"\d{10}", payout["reference"])
    # The contract's example: 125.00 charged, 2.45 % + 1.00 fee = 4.06, 120.94 paid out.
    assert (payout["chargedAmount"], payout["fees"], payout["amount"]) == (12500, 406, 12094)
    assert (payout["feeVATpercent"], payout["feeTaxRate"], payout["feeTaxAmount"]) == (0, 0, 0)
    assert payout["transactionTaxDetails"] == [{"rate": 2500, "amount": 2500}]

    details = api.get(f"/report/v1/payouts/{payout_id}").json()
    assert details["numberOfPaymentActions"] == 1
    [action] = details["paymentActions"]
    assert action == {
        "id": charge_id, "paymentId": payment_id, "paymentAction": "CHARGE",
        "paymentMethod": action["paymentMethod"], "paymentType": "CARD", "timestamp": action["timestamp"],
        "reference": "ORDER-1001", "invoiceNumber": None, "amount": 12500, "vatAmount": 2500,
        "currency": "SEK", "fee": 406, "flexibleFee": 306, "fixedFee": 100, "feeVATpercent": 0,
        "feeTaxRate": 0, "feeTaxAmount": 0, "transactionTaxDetails": [{"rate": 2500, "amount": 2500}],
        "subscriptionId": None,
    }
    assert ACTION_TS.match(action["timestamp"])
    assert sandbox.settle_payout(merchant, date="2024-05-09") is None  # nothing left to settle


def test_payment_action_paging(api, sandbox, merchant):
    charge_ids = [sandbox.charge(sandbox.create_payment(merchant)) for _ in range(230)]
    payout_id = sandbox.settle_payout(merchant, date="2024-06-01")
    pages = [api.get(f"/report/v1/payouts/{payout_id}", pageNumber=n, pageSize=100).json() for n in range(4)]
    assert [len(p["paymentActions"]) for p in pages] == [100, 100, 30, 0]
    assert {p["numberOfPaymentActions"] for p in pages} == {230}
    assert sorted(a["id"] for p in pages for a in p["paymentActions"]) == sorted(charge_ids)
    default = api.get(f"/report/v1/payouts/{payout_id}").json()
    assert len(default["paymentActions"]) == 100
    assert default["paymentActions"][0]["id"] == pages[0]["paymentActions"][0]["id"]


@pytest.mark.parametrize("sign", [-1, 1])
def test_payout_invariant_with_refunds_fees_and_deposits(sign):
    sandbox = NetsEasySandbox(refund_amount_sign=sign)
    thread = ServerThread(sandbox).start()
    try:
        merchant = sandbox.add_merchant(KEY, "Testbutiken AB")
        api = Api(thread.url)
        full = sandbox.charge(sandbox.create_payment(merchant, amount_items=[TSHIRT]))
        partial = sandbox.charge(sandbox.create_payment(merchant, amount_items=[TSHIRT, COFFEE]))
        sandbox.charge(sandbox.create_payment(merchant, amount_items=[COFFEE], country="USA"))
        first = sandbox.settle_payout(merchant, date="2024-05-02")
        sandbox.refund(full)
        sandbox.refund(partial, 23800, order_items=[COFFEE])
        sandbox.charge(sandbox.create_payment(merchant, amount_items=[TSHIRT, TSHIRT | {"reference": "T2"}]))
        sandbox.deposit(merchant, 5000)
        second = sandbox.settle_payout(merchant, date="2024-05-03")

        for payout_id in (first, second):
            payout = api.get(f"/report/v1/payouts/{payout_id}").json()
            _check_invariant(payout, payout["paymentActions"])
        payout = api.get(f"/report/v1/payouts/{second}").json()
        assert payout["refundedAmount"] == 12500 + 23800 and payout["numberOfRefunds"] == 2
        assert payout["depositedAmount"] == 5000
        refunds = [a for a in payout["paymentActions"] if a["paymentAction"] == "REFUND"]
        assert {a["amount"] for a in refunds} == {sign * 12500, sign * 23800}
        assert all(a["fee"] == sign * 100 and a["flexibleFee"] == 0 for a in refunds)
        assert {a["vatAmount"] for a in refunds} == {sign * 2500, sign * 2550}
        # Charges are positive whatever the refund sign.
        assert all(a["amount"] > 0 and a["fee"] > 0 for a in payout["paymentActions"]
                   if a["paymentAction"] == "CHARGE")
        # VAT per rate nets refunds against charges: +2*2500 (two T-shirts) -2500 -2550
        assert payout["transactionTaxDetails"] == [
            {"rate": 1200, "amount": -2550}, {"rate": 2500, "amount": 2500},
        ]
        listed = {p["id"]: p for p in _payout_list(api)["payouts"]}
        assert listed[second]["amount"] == payout["amount"]
    finally:
        thread.stop()


def test_refund_fee_mode_none():
    sandbox = NetsEasySandbox(refund_fee_mode="none")
    merchant = sandbox.add_merchant(KEY, "Testbutiken AB")
    charge_id = sandbox.charge(sandbox.create_payment(merchant, amount_items=[TSHIRT]))
    sandbox.settle_payout(merchant, date="2024-05-01")
    sandbox.refund(charge_id)
    sandbox.charge(sandbox.create_payment(merchant, amount_items=[TSHIRT]))
    payout = sandbox.payout_json(sandbox.settle_payout(merchant, date="2024-05-02"))
    assert payout["fees"] == 406 and payout["amount"] == 12500 - 12500 - 406
    _check_invariant(payout, payout["paymentActions"])


def test_currency_filter(api, sandbox, merchant):
    sandbox.charge(sandbox.create_payment(merchant, currency="SEK"))
    sek = sandbox.settle_payout(merchant, date="2024-05-02", currency="SEK")
    sandbox.charge(sandbox.create_payment(merchant, currency="EUR", country="FIN"))
    eur = sandbox.settle_payout(merchant, date="2024-05-02", currency="EUR")
    assert sandbox.settle_payout(merchant, date="2024-05-02", currency="DKK") is None
    assert [p["id"] for p in _payout_list(api, currency="EUR")["payouts"]] == [eur]
    assert [p["id"] for p in _payout_list(api, currency="SEK")["payouts"]] == [sek]
    assert {p["id"] for p in _payout_list(api)["payouts"]} == {sek, eur}
    assert api.get("/report/v1/payouts", fromDate="2024-05-01", toDate="2024-05-31",
                   currency="eur").status_code == 400


# ----------------------------------------------------------------------------------------------- demo


def test_seed_demo(server, sandbox):
    summary = sandbox.seed_demo()
    assert summary["secret_key"] == DEMO_SECRET_KEY
    assert re.fullmatch(r"live-secret-key-[0-9a-f]{32}", DEMO_SECRET_KEY)
    api = Api(server.url, key=DEMO_SECRET_KEY)
    today = sandbox.today()

    listing = _payout_list(api, fromDate=(today - timedelta(days=30)).isoformat(), toDate=today.isoformat())
    payouts = listing["payouts"]
    assert 18 <= listing["numberOfPayouts"] <= 25
    assert payouts[-1]["date"] == today.isoformat()
    assert [p["currency"] for p in payouts].count("EUR") == 1
    assert sum(p["numberOfRefunds"] for p in payouts) >= 3

    countries, rates_by_region = set(), {"SE": set(), "EU": set(), "non-EU": set()}
    for listed in payouts:
        details = api.get(f"/report/v1/payouts/{listed['id']}", pageSize=1000).json()
        assert details["amount"] > 0
        _check_invariant(details, details["paymentActions"])
        for action in details["paymentActions"]:
            payment = api.get(f"/v1/payments/{action['paymentId']}").json()["payment"]
            country = payment["consumer"]["shippingAddress"]["country"]
            countries.add(country)
            region = "SE" if country == "SWE" else "EU" if country in EU_MEMBER_STATES else "non-EU"
            for charge in payment["charges"]:
                rates_by_region[region].update(item["taxRate"] for item in charge["orderItems"])
    assert "SWE" in countries
    assert len(countries & (EU_MEMBER_STATES - {"SWE"})) >= 3
    assert len(countries - EU_MEMBER_STATES) >= 3
    assert {2500, 1200, 600} <= rates_by_region["SE"]
    assert rates_by_region["non-EU"] == {0}

    # Deterministic: a second sandbox at the same moment holds the same data.
    again = NetsEasySandbox()
    again.clock.advance(sandbox.clock.now() - again.clock.now())
    again.seed_demo()
    assert again.payouts_of(DEMO_SECRET_KEY) == sandbox.payouts_of(DEMO_SECRET_KEY)
    with pytest.raises(ValueError):
        sandbox.seed_demo()  # the demo merchant exists already


def test_mounted_under_prefix(sandbox, merchant):
    thread = ServerThread(mount({"/netseasy": sandbox})).start()
    try:
        api = Api(thread.url + "/netseasy")
        created = api.post("/v1/payments", _create_body([TSHIRT])).json()
        assert created["hostedPaymentPageUrl"].startswith(thread.url + "/netseasy/checkout/")
        assert api.get(f"/v1/payments/{created['paymentId']}").status_code == 200
        assert requests.get(thread.url + f"/v1/payments/{created['paymentId']}", timeout=5).status_code == 404
        assert sandbox.log[-1].path == f"/v1/payments/{created['paymentId']}"
    finally:
        thread.stop()


# --------------------------------------------------------------------------------------------- faults


def test_fault_status_503_then_recovers(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant)
    sandbox.faults.inject("status", status=503, path_contains="/charges")
    failed = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500})
    assert failed.status_code == 503
    assert sandbox.payment_json(payment_id)["payment"]["charges"] == []
    assert api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}).status_code == 201


def test_fault_delay_times_out_but_takes_effect(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant)
    sandbox.faults.inject("delay", seconds=0.6, method="POST")
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="slow-1", timeout=0.2)
    deadline = time.monotonic() + 5
    while not sandbox.payment_json(payment_id)["payment"]["charges"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sandbox.payment_json(payment_id)["payment"]["charges"]) == 1


def test_fault_drop_before_does_nothing(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant)
    sandbox.faults.inject("drop_before", path_contains="/charges")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="c-1")
    assert sandbox.payment_json(payment_id)["payment"]["charges"] == []
    assert sandbox.log[-1].status == 0


def test_fault_drop_after_commit_on_charge_then_idempotent_retry(api, sandbox, merchant):
    payment_id = sandbox.create_payment(merchant)
    sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/charges")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="order-1-charge")
    [committed] = sandbox.payment_json(payment_id)["payment"]["charges"]
    retry = api.post(f"/v1/payments/{payment_id}/charges", {"amount": 12500}, key="order-1-charge")
    assert retry.status_code == 201 and retry.json() == {"chargeId": committed["chargeId"]}
    assert len(sandbox.payment_json(payment_id)["payment"]["charges"]) == 1
    assert [entry.status for entry in sandbox.log[-2:]] == [0, 201]


def test_rate_limit_returns_429_with_empty_body(api, sandbox):
    assert sandbox.rate_limit is None
    sandbox.rate_limit = (3, 60)
    params = {"fromDate": "2024-01-01", "toDate": "2024-01-31"}
    assert [api.get("/report/v1/payouts", **params).status_code for _ in range(3)] == [200] * 3
    limited = api.get("/report/v1/payouts", **params)
    assert limited.status_code == 429 and limited.content == b""
    sandbox.clock.advance(61)
    assert api.get("/report/v1/payouts", **params).status_code == 200


# ------------------------------------------------------------------------------------------ state


def test_dump_and_load_round_trip(api, sandbox, merchant):
    charge_id = sandbox.charge(sandbox.create_payment(merchant, amount_items=[TSHIRT, COFFEE]))
    sandbox.refund(charge_id, 12500, order_items=[TSHIRT])
    payout_id = sandbox.settle_payout(merchant, date="2024-05-02")
    api.post(f"/v1/payments/{sandbox.create_payment(merchant)}/charges", {"amount": 12500}, key="k-1")

    state = json.loads(json.dumps(sandbox.dump_state()))
    copy = NetsEasySandbox()
    copy.load_state(state)
    assert copy.dump_state() == state
    assert copy.payout_json(payout_id) == sandbox.payout_json(payout_id)
    payment_id = copy._charges[charge_id]["payment"]
    assert copy.payment_json(payment_id) == sandbox.payment_json(payment_id)
    # New ids continue after the loaded ones instead of colliding with them.
    assert copy.create_payment(KEY) not in state["payments"]

    thread = ServerThread(copy).start()
    try:
        replay = Api(thread.url).post(f"/v1/payments/{list(state['payments'])[-1]}/charges",
                                      {"amount": 12500}, key="k-1")
        assert replay.status_code == 201  # the idempotency record survived the round trip
        assert len(copy.payment_json(list(state["payments"])[-1])["payment"]["charges"]) == 1
    finally:
        thread.stop()


def test_reset_forgets_everything(api, sandbox, merchant):
    sandbox.create_payment(merchant)
    sandbox.reset()
    assert sandbox.dump_state()["payments"] == {}
    assert sandbox.log == []
    response = api.get("/report/v1/payouts", fromDate="2024-01-01", toDate="2024-01-31")
    assert response.status_code == 401  # the merchant is gone too
