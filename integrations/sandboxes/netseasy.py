"""A local emulation of the Nets Easy (Nexi Checkout) Payment API and Reporting (payouts) API.

The contract is ``/work/shared/reference/netseasy-api.md``. The sandbox is a plain WSGI app (Werkzeug, no
Django) used in-process by the tests and mounted by the run command under a prefix standing for
``https://api.dibspayment.eu``. It is never friendlier than Nets: what Nets refuses, it refuses with the
same statuses and body shapes (400 ``{"errors": {field: [msg]}}``, 401/404/405/415/429 with empty bodies).

Amounts are integer minor units everywhere. Charges, refunds and deposits are stored as positive
magnitudes; the sign of REFUND payment actions in the Reporting API is applied when rendering
(``refund_amount_sign``), because it is unverified.

Choices made where the reference is unverified ([U] in the contract) are module constants below; the
behavioural ones:

- ``GET /v1/payments`` (no id) answers 405 because only POST exists on that path; Nets has no list endpoint.
- A payment created over HTTP is "new" (empty ``summary`` and ``paymentDetails``) until the consumer
  completes the hosted page (``/checkout/hostedpaymentpage/{id}``, standing for checkout.dibspayment.eu)
  or ``complete_checkout()`` runs; charging it before that is a 400. Partial charges and refunds over HTTP
  need ``orderItems``. Refunds complete at once (state ``Completed``).
- POST bodies must be ``application/json`` (else 415, empty body), as an ASP.NET API does.
- Ids are accepted case-insensitively; a malformed id is a 400 naming the path parameter.
- ``merchantNumber`` on the Reporting API (partners only) is refused with 403 unless it is the caller's own.
- Rate limiting (``rate_limit = (n, seconds)``, off by default) answers 429 with an empty body and no
  ``Retry-After``; refused requests do not count towards the window.
- A payout with nothing to settle is not created (``settle_payout`` returns None); a payout whose refunds
  exceed its charges has a negative ``amount``.
- The request log records status 0 for a connection dropped by an injected fault.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integrations.sandboxes.base import FaultInjector, LoggedRequest, SandboxClock, apply_fault_before, drop_connection

SECRET_KEY_RE = re.compile(r"^(live|test)-secret-key-[0-9a-f]{32}$")
ID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

# EU member states in ISO 3166-1 alpha-3, as Nets reports countries (swedish-bookkeeping.md §2.2).
EU_MEMBER_STATES = frozenset(
    {
        "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL",
        "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE",
    }
)

# [U] Currencies: the 2021 docs list DKK, EUR, NOK, SEK; others "added later" are unverified, so we refuse
# them (never friendlier than the documented set).
SUPPORTED_CURRENCIES = frozenset({"DKK", "EUR", "NOK", "SEK"})

# [U] Sign of `amount`, `vatAmount`, `fee`, `flexibleFee`, `fixedFee` and `transactionTaxDetails[].amount`
# on REFUND payment actions. Default -1 (money leaving the merchant's balance); +1 is the other reading.
# Payout-level totals (`refundedAmount`, `fees`) are always magnitudes. Clients must use abs() together
# with `paymentAction`.
DEFAULT_REFUND_AMOUNT_SIGN = -1

# Fees. The defaults reproduce the example payout in the contract §3.5: charge 12500 -> flexibleFee 306
# (2.45 %), fixedFee 100. [U] The flexible fee is rounded half up to whole minor units.
DEFAULT_FEE_PERCENT_BP = 245  # basis points: 245 == 2.45 %
DEFAULT_FIXED_FEE = {"SEK": 100, "DKK": 75, "NOK": 100, "EUR": 10}

# [U] Refund fees: "fixed" = a refund pays the fixed per-action fee and no percentage fee (the percentage
# fee of the original charge is not returned); "none" = refunds carry no fee. Deposits never carry a fee.
DEFAULT_REFUND_FEE_MODE = "fixed"

# [U] Unit of `transactionTaxDetails[].rate`: percent x 100, like `taxRate` on order items (2500 == 25 %).
# The payout-level list nets refunds against charges per rate (magnitudes).

# Reporting API paging: pageNumber zero-based, pageSize default 100 [V]; [U] maximum page size.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# Idempotency-Key length 1..64 [V, SDK]; [U] reusing a key for a different request is refused with 400.
IDEMPOTENCY_KEY_MAX = 64

# [U] Order-item arithmetic is validated strictly: netTotalAmount == unitPrice * quantity (rounded half
# up), grossTotalAmount == netTotalAmount + taxAmount, |taxAmount - net * taxRate / 10000| < 1, and the
# order amount (or charge/refund amount) == sum of grossTotalAmount.
TAX_TOLERANCE = Decimal(1)

DEMO_SECRET_KEY = "live-secret-key-4b6f6e746572612d64656d6f2d6b6579"
DEMO_MERCHANT_NAME = "Demo Webbshop AB"
DEMO_SEED = 20240503
DEMO_DAYS = 21
DEMO_REFUND_DAYS = (4, 8, 12, 17)
DEMO_EUR_DAY = 14

DEFAULT_IBAN = "SE4550000000058398257466"
DEFAULT_BIC = "ESSESESS"


@dataclass
class Merchant:
    secret_key: str
    name: str
    merchant_number: int
    bank_account_iban: str = DEFAULT_IBAN
    bank_account_bic: str = DEFAULT_BIC


class ApiError(Exception):
    """A 400 with Nets' validation body, raised by the shared charge/refund logic."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(json.dumps(errors))
        self.errors = errors


# --------------------------------------------------------------------------------------------------------
# Small pure helpers


def _round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _iso_offset(ts: float) -> str:
    """Payment API style: ``2024-05-03T05:06:11.3254+00:00``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 100:04d}+00:00"


def _action_timestamp(ts: float) -> str:
    """Reporting API style: ``yyyy-MM-ddTHH:mm:ss.fffZ``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_full_date(value: str | None) -> date | None:
    if value is None or not DATE_RE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    parsed = _parse_full_date(value)
    if parsed is None:
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
    return parsed


def _vat_by_rate(items: Iterable[dict]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for item in items:
        rate = int(item.get("taxRate", 0))
        totals[rate] = totals.get(rate, 0) + int(item.get("taxAmount", 0))
    return totals


def build_order_item(spec: dict, index: int = 0) -> dict:
    """A complete, consistent Nets order item from a partial spec (§1.3 arithmetic).

    ``spec`` needs ``unitPrice`` (excl. VAT); ``quantity`` defaults to 1, ``taxRate`` (percent x 100) to 0,
    ``reference``/``name``/``unit`` to placeholders. Supplied computed fields must agree.
    """
    if "unitPrice" not in spec or not _is_int(spec["unitPrice"]):
        raise ValueError("order item needs an integer unitPrice (minor units, excl. VAT)")
    quantity = spec.get("quantity", 1)
    rate = spec.get("taxRate", 0)
    if not _is_number(quantity) or quantity < 0 or not _is_int(rate):
        raise ValueError("order item quantity must be a number >= 0 and taxRate an integer")
    exact_net = Decimal(spec["unitPrice"]) * Decimal(str(quantity))
    net = _round_half_up(exact_net)
    tax = _round_half_up(exact_net * rate / 10000)
    item = {
        "reference": spec.get("reference", f"ITEM-{index + 1}"),
        "name": spec.get("name", spec.get("reference", f"Item {index + 1}")),
        "quantity": float(quantity),
        "unit": spec.get("unit", "pcs"),
        "unitPrice": spec["unitPrice"],
        "taxRate": rate,
        "taxAmount": tax,
        "grossTotalAmount": net + tax,
        "netTotalAmount": net,
    }
    for key in ("taxAmount", "grossTotalAmount", "netTotalAmount"):
        if key in spec and spec[key] != item[key]:
            raise ValueError(f"order item {key} is {spec[key]}, expected {item[key]}")
    return item


def _synthetic_item(amount: int, rate: int, reference: str) -> dict:
    """One order line grossing exactly ``amount`` at VAT ``rate`` (net rounded half up, tax = the rest)."""
    net = _round_half_up(Decimal(amount) * 10000 / (10000 + rate))
    return {"reference": reference, "name": reference.replace("-", " ").capitalize(), "quantity": 1.0,
            "unit": "pcs", "unitPrice": net, "taxRate": rate, "taxAmount": amount - net,
            "grossTotalAmount": amount, "netTotalAmount": net}


def validate_order_items(raw: Any, prefix: str) -> tuple[list[dict], dict[str, list[str]]]:
    """Validate order items as Nets would; returns (items, errors)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, list) or not raw:
        return [], {prefix: [f"The {prefix} field is required and must contain at least one item."]}
    items: list[dict] = []
    for index, entry in enumerate(raw):
        where = f"{prefix}[{index}]"
        if not isinstance(entry, dict):
            errors[where] = ["The order item is not valid."]
            continue
        item_errors: dict[str, list[str]] = {}
        for key in ("reference", "name", "unit"):
            value = entry.get(key)
            if not isinstance(value, str) or not value or len(value) > 128:
                item_errors[f"{where}.{key}"] = [f"The {key} field is required (1-128 characters)."]
        if not _is_number(entry.get("quantity")) or entry["quantity"] < 0:
            item_errors[f"{where}.quantity"] = ["The quantity field is required and must be >= 0."]
        for key in ("unitPrice", "grossTotalAmount", "netTotalAmount"):
            if not _is_int(entry.get(key)):
                item_errors[f"{where}.{key}"] = [f"The {key} field is required and must be an integer."]
        for key in ("taxRate", "taxAmount"):
            if key in entry and entry[key] is not None and not _is_int(entry[key]):
                item_errors[f"{where}.{key}"] = [f"The {key} field must be an integer."]
        if item_errors:
            errors.update(item_errors)
            continue
        rate = entry.get("taxRate") or 0
        tax = entry.get("taxAmount") or 0
        exact_net = Decimal(entry["unitPrice"]) * Decimal(str(entry["quantity"]))
        if entry["netTotalAmount"] != _round_half_up(exact_net):
            errors[f"{where}.netTotalAmount"] = ["netTotalAmount must equal unitPrice * quantity."]
        elif abs(Decimal(tax) - exact_net * rate / 10000) >= TAX_TOLERANCE:
            errors[f"{where}.taxAmount"] = ["taxAmount must equal unitPrice * quantity * taxRate / 10000."]
        elif entry["grossTotalAmount"] != entry["netTotalAmount"] + tax:
            errors[f"{where}.grossTotalAmount"] = ["grossTotalAmount must equal netTotalAmount + taxAmount."]
        items.append(
            {
                "reference": entry["reference"],
                "name": entry["name"],
                "quantity": float(entry["quantity"]),
                "unit": entry["unit"],
                "unitPrice": entry["unitPrice"],
                "taxRate": rate,
                "taxAmount": tax,
                "grossTotalAmount": entry["grossTotalAmount"],
                "netTotalAmount": entry["netTotalAmount"],
            }
        )
    return items, errors


# --------------------------------------------------------------------------------------------------------
# Demo catalogue: (reference, name, unit price excl. VAT in öre, Swedish VAT rate x 100)

_CATALOGUE = (
    ("TS-100", "T-shirt ekologisk bomull", 19920, 2500),
    ("HD-200", "Hoodie", 47920, 2500),
    ("MG-300", "Mugg keramik", 11920, 2500),
    ("KF-400", "Kaffebönor 500 g", 10625, 1200),
    ("TE-410", "Te löst 100 g", 7054, 1200),
    ("BK-500", "Bok: Svensk design", 28208, 600),
)
_SHIPPING = ("FR-900", "Frakt", 3920, 2500)

# country -> (phone prefix, addresses (street, postal code, city), first names, last names)
_PEOPLE = {
    "SWE": ("+46", [("Storgatan 12", "11122", "STOCKHOLM"), ("Kungsgatan 5", "41119", "GÖTEBORG"),
                    ("Södergatan 3", "21134", "MALMÖ"), ("Drottninggatan 8", "75310", "UPPSALA")],
            ["Anna", "Erik", "Maria", "Lars", "Karin", "Johan"], ["Andersson", "Johansson", "Nilsson"]),
    "DEU": ("+49", [("Hauptstraße 1", "10115", "BERLIN"), ("Marienplatz 2", "80331", "MÜNCHEN")],
            ["Lukas", "Sophie", "Jonas"], ["Müller", "Schmidt", "Weber"]),
    "FIN": ("+358", [("Mannerheimintie 10", "00100", "HELSINKI")], ["Aino", "Mikko"],
            ["Virtanen", "Korhonen"]),
    "DNK": ("+45", [("Strøget 20", "1160", "KØBENHAVN K")], ["Mette", "Søren"], ["Jensen", "Nielsen"]),
    "FRA": ("+33", [("Rue de Rivoli 50", "75001", "PARIS")], ["Camille", "Louis"], ["Martin", "Bernard"]),
    "NLD": ("+31", [("Damrak 1", "1012 LG", "AMSTERDAM")], ["Daan", "Emma"], ["de Jong", "Jansen"]),
    "NOR": ("+47", [("Karl Johans gate 7", "0154", "OSLO")], ["Ola", "Kari"], ["Hansen", "Olsen"]),
    "USA": ("+1", [("350 Fifth Avenue", "10118", "NEW YORK")], ["John", "Emily"], ["Smith", "Brown"]),
    "GBR": ("+44", [("221B Baker Street", "NW1 6XE", "LONDON")], ["Oliver", "Amelia"], ["Taylor", "Wilson"]),
    "CHE": ("+41", [("Bahnhofstrasse 1", "8001", "ZÜRICH")], ["Luca", "Mia"], ["Meier", "Keller"]),
}
_DEMO_SEK_COUNTRIES = (
    ("SWE", 11), ("DEU", 2), ("FIN", 2), ("DNK", 2), ("FRA", 1), ("NLD", 1),
    ("NOR", 2), ("USA", 1), ("GBR", 1), ("CHE", 1),
)
_DEMO_EUR_COUNTRIES = ("DEU", "FIN", "FRA", "NLD")
_CARDS = {"Visa": "492500", "MasterCard": "544300"}


# --------------------------------------------------------------------------------------------------------


class NetsEasySandbox:
    """WSGI emulation of ``https://api.dibspayment.eu`` (Payment API v1 + Reporting API v1).

    Thread-safe: every read and write of the state happens under ``self._lock``.
    """

    def __init__(
        self,
        *,
        refund_amount_sign: int = DEFAULT_REFUND_AMOUNT_SIGN,
        refund_fee_mode: str = DEFAULT_REFUND_FEE_MODE,
        environment: str | None = None,
        seed: str = "netseasy",
    ) -> None:
        if refund_amount_sign not in (-1, 1):
            raise ValueError("refund_amount_sign must be -1 or +1")
        if refund_fee_mode not in ("fixed", "none"):
            raise ValueError("refund_fee_mode must be 'fixed' or 'none'")
        if environment not in (None, "live", "test"):
            raise ValueError("environment must be None, 'live' or 'test'")
        self.clock = SandboxClock()
        self.faults = FaultInjector()
        self.log: list[LoggedRequest] = []
        self.refund_amount_sign = refund_amount_sign
        self.refund_fee_mode = refund_fee_mode
        # "live"/"test" accepts only keys of that environment (the hosts are separate); None accepts both.
        self.environment = environment
        self.fee_percent_bp = DEFAULT_FEE_PERCENT_BP
        self.fixed_fee = dict(DEFAULT_FIXED_FEE)
        # Optional per-merchant limit (requests, seconds) -> 429 with an empty body; off by default
        # because Nets documents no limit [U].
        self.rate_limit: tuple[int, float] | None = None
        self._seed = seed
        self._lock = threading.RLock()
        self._url_map = Map(
            [
                Rule("/v1/payments", methods=["POST"], endpoint="create_payment"),
                Rule("/v1/payments/<payment_id>", methods=["GET"], endpoint="get_payment"),
                Rule("/v1/payments/<payment_id>/charges", methods=["POST"], endpoint="charge"),
                Rule("/v1/charges/<charge_id>/refunds", methods=["POST"], endpoint="refund"),
                Rule("/report/v1/payouts", methods=["GET"], endpoint="list_payouts"),
                Rule("/report/v1/payouts/<payout_id>", methods=["GET"], endpoint="get_payout"),
                # Stands for the hosted payment page on checkout.dibspayment.eu (the consumer's side).
                Rule("/checkout/hostedpaymentpage/<payment_id>", methods=["GET", "POST"], endpoint="hpp"),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )
        self._init_state()

    # ---------------------------------------------------------------------------------------- state

    def _init_state(self) -> None:
        self._merchants: dict[str, Merchant] = {}
        self._payments: dict[str, dict] = {}
        self._charges: dict[str, dict] = {}
        self._refunds: dict[str, dict] = {}
        self._deposits: dict[str, dict] = {}
        self._payouts: dict[str, dict] = {}
        self._idempotency: dict[str, dict] = {}  # "<merchant key>|<Idempotency-Key>" -> stored answer
        self._counters: dict[str, int] = {}
        self._windows: dict[str, deque] = {}

    def reset(self) -> None:
        """Forget all merchants and data, the request log, injected faults and the clock offset."""
        with self._lock:
            self._init_state()
            self.log.clear()
        self.faults.clear()
        self.clock.reset()

    def dump_state(self) -> dict:
        with self._lock:
            return json.loads(
                json.dumps(
                    {
                        "version": 1,
                        "seed": self._seed,
                        "counters": self._counters,
                        "merchants": [asdict(m) for m in self._merchants.values()],
                        "payments": self._payments,
                        "charges": self._charges,
                        "refunds": self._refunds,
                        "deposits": self._deposits,
                        "payouts": self._payouts,
                        "idempotency": self._idempotency,
                    }
                )
            )

    def load_state(self, state: dict) -> None:
        if state.get("version") != 1:
            raise ValueError("unknown sandbox state version")
        state = json.loads(json.dumps(state))
        with self._lock:
            self._init_state()
            self._seed = state["seed"]
            self._counters = state["counters"]
            self._merchants = {m["secret_key"]: Merchant(**m) for m in state["merchants"]}
            self._payments = state["payments"]
            self._charges = state["charges"]
            self._refunds = state["refunds"]
            self._deposits = state["deposits"]
            self._payouts = state["payouts"]
            self._idempotency = state["idempotency"]

    def _new_id(self, kind: str) -> str:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        digest = hashlib.sha256(f"{self._seed}:{kind}:{self._counters[kind]}".encode()).hexdigest()
        return digest[:32]

    def _merchant(self, merchant: Merchant | str) -> Merchant:
        key = merchant.secret_key if isinstance(merchant, Merchant) else merchant
        try:
            return self._merchants[key]
        except KeyError:
            raise KeyError("unknown merchant") from None

    def _epoch(self, value: datetime | date | float | None) -> float:
        if value is None:
            return self.clock.now()
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        if isinstance(value, date):
            return datetime.combine(value, time(12, 0), UTC).timestamp()
        return float(value)

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock.now(), UTC).date()

    # ------------------------------------------------------------------------------ programmatic API

    def add_merchant(
        self,
        secret_key: str,
        name: str,
        *,
        bank_account_iban: str = DEFAULT_IBAN,
        bank_account_bic: str = DEFAULT_BIC,
    ) -> Merchant:
        if not SECRET_KEY_RE.match(secret_key):
            raise ValueError("secret key must look like live-secret-key-<32 hex> or test-secret-key-<32 hex>")
        if self.environment and not secret_key.startswith(f"{self.environment}-"):
            raise ValueError(f"this sandbox stands for the {self.environment} host")
        with self._lock:
            if secret_key in self._merchants:
                raise ValueError("merchant already registered")
            number = 100017120 + len(self._merchants)
            merchant = Merchant(secret_key, name, number, bank_account_iban, bank_account_bic)
            self._merchants[secret_key] = merchant
            return merchant

    def create_payment(
        self,
        merchant: Merchant | str,
        *,
        amount_items: list[dict] | None = None,
        currency: str = "SEK",
        country: str = "SWE",
        reference: str = "ORDER-1",
        company: bool = False,
        created: datetime | date | float | None = None,
        payment_method: str | None = None,
        charge_on_checkout: bool = False,
    ) -> str:
        """A payment whose checkout is completed (reserved); returns its paymentId.

        ``amount_items`` are order-item specs (see ``build_order_item``); the order amount is their gross sum.
        """
        if currency not in SUPPORTED_CURRENCIES:
            raise ValueError(f"unsupported currency {currency}")
        specs = amount_items or [{"reference": "ITEM-1", "name": "Item", "unitPrice": 10000, "taxRate": 2500}]
        items = [build_order_item(spec, i) for i, spec in enumerate(specs)]
        amount = sum(item["grossTotalAmount"] for item in items)
        if amount <= 0:
            raise ValueError("order amount must be > 0")
        with self._lock:
            owner = self._merchant(merchant)
            payment_id = self._insert_payment(
                owner, items=items, amount=amount, currency=currency, reference=reference,
                created=self._epoch(created), checkout={"url": "https://shop.example/checkout",
                                                        "cancelUrl": None, "charge": charge_on_checkout},
            )
            self.complete_checkout(
                payment_id, country=country, company=company, payment_method=payment_method
            )
            return payment_id

    def complete_checkout(
        self,
        payment_id: str,
        *,
        country: str = "SWE",
        company: bool = False,
        payment_method: str | None = None,
    ) -> None:
        """Simulate the consumer finishing the checkout: consumer data, card, reservation."""
        with self._lock:
            payment = self._payments[payment_id]
            if payment["reserved"]:
                raise ValueError("checkout already completed")
            rng = random.Random(f"{self._seed}:consumer:{payment_id}")
            payment["consumer"] = self._make_consumer(rng, country, company)
            method = payment_method or rng.choice(sorted(_CARDS))
            if method not in _CARDS:
                raise ValueError(f"unknown card brand {method}")
            payment["method"] = method
            payment["maskedPan"] = f"{_CARDS[method]}******{rng.randint(0, 9999):04d}"
            payment["expiryDate"] = f"{rng.randint(1, 12):02d}{rng.randint(27, 31)}"
            payment["reserved"] = payment["amount"]
            if payment["checkout"].get("charge"):
                self.charge(payment_id, at=payment["created"])

    def charge(
        self,
        payment_id: str,
        amount: int | None = None,
        *,
        order_items: list[dict] | None = None,
        at: datetime | date | float | None = None,
    ) -> str:
        """Charge a reserved payment; ``amount=None`` charges what is left of the reservation.

        Over HTTP a partial charge needs orderItems (as at Nets); here, for convenience when setting up
        data, a partial charge without ``order_items`` gets one synthetic line at the order's first VAT rate.
        """
        with self._lock:
            payment = self._payments[payment_id]
            items = [build_order_item(s, i) for i, s in enumerate(order_items)] if order_items else None
            if amount is None:
                amount = sum(i["grossTotalAmount"] for i in items) if items else (
                    payment["reserved"] - self._charged(payment))
            if items is None and (payment["charges"] or amount != payment["amount"]):
                items = [_synthetic_item(amount, payment["items"][0]["taxRate"], "PARTIAL-CHARGE")]
            try:
                return self._do_charge(payment, amount, items, self._epoch(at))
            except ApiError as exc:
                raise ValueError(exc.errors) from None

    def refund(
        self,
        charge_id: str,
        amount: int | None = None,
        *,
        order_items: list[dict] | None = None,
        at: datetime | date | float | None = None,
    ) -> str:
        """Refund (part of) a charge, state Completed; ``amount=None`` refunds what is left of the charge.

        Like ``charge``: without ``order_items`` a partial refund gets one synthetic line (HTTP refuses that).
        """
        with self._lock:
            charge = self._charges[charge_id]
            items = [build_order_item(s, i) for i, s in enumerate(order_items)] if order_items else None
            if amount is None:
                amount = sum(i["grossTotalAmount"] for i in items) if items else self._refundable(charge)
            if items is None and (charge["refunds"] or amount != charge["amount"]):
                items = [_synthetic_item(amount, charge["items"][0]["taxRate"], "PARTIAL-REFUND")]
            try:
                return self._do_refund(charge, amount, items, self._epoch(at))
            except ApiError as exc:
                raise ValueError(exc.errors) from None

    def deposit(
        self, merchant: Merchant | str, amount: int, currency: str = "SEK", *, at: float | None = None
    ) -> str:
        """A deposit from the merchant to Nets (adjusts the balance); settled in the next payout."""
        if not _is_int(amount) or amount <= 0:
            raise ValueError("deposit amount must be a positive integer")
        with self._lock:
            owner = self._merchant(merchant)
            deposit_id = self._new_id("deposit")
            self._deposits[deposit_id] = {
                "id": deposit_id, "merchant": owner.secret_key, "amount": amount, "currency": currency,
                "created": self._epoch(at), "payout": None,
            }
            return deposit_id

    def settle_payout(
        self,
        merchant: Merchant | str,
        *,
        date: date | str,
        currency: str = "SEK",
        fee_percent_bp: int | None = None,
        fixed_fee: int | None = None,
    ) -> str | None:
        """Gather every unsettled charge, refund and deposit in ``currency`` into one payout.

        Returns the payout id, or None when there is nothing to settle (Nets makes no empty payouts).
        Invariant: ``amount == chargedAmount - refundedAmount + depositedAmount - fees`` (magnitudes); the
        amount may be negative when refunds exceed charges [U].
        """
        payout_date = _as_date(date)
        percent = self.fee_percent_bp if fee_percent_bp is None else fee_percent_bp
        with self._lock:
            owner = self._merchant(merchant)
            fixed = self.fixed_fee.get(currency, 0) if fixed_fee is None else fixed_fee
            entries: list[tuple[float, str, dict]] = []
            for kind, records in (("CHARGE", self._charges), ("REFUND", self._refunds),
                                  ("DEPOSIT", self._deposits)):
                for record in records.values():
                    if record["payout"] is not None or record["merchant"] != owner.secret_key:
                        continue
                    if self._record_currency(record) == currency:
                        entries.append((record["created"], kind, record))
            if not entries:
                return None
            entries.sort(key=lambda e: (e[0], e[2]["id"]))
            payout_id = self._new_id("payout")
            actions = []
            totals = {"CHARGE": [0, 0], "REFUND": [0, 0], "DEPOSIT": [0, 0]}
            fees = 0
            tax: dict[int, int] = {}
            for _, kind, record in entries:
                if kind == "CHARGE":
                    flexible = _round_half_up(Decimal(record["amount"] * percent) / 10000)
                    fixed_part = fixed
                elif kind == "REFUND":
                    flexible = 0
                    fixed_part = fixed if self.refund_fee_mode == "fixed" else 0
                else:
                    flexible = fixed_part = 0
                record["payout"] = payout_id
                actions.append(
                    {"type": kind, "id": record["id"], "flexibleFee": flexible, "fixedFee": fixed_part}
                )
                totals[kind][0] += record["amount"]
                totals[kind][1] += 1
                fees += flexible + fixed_part
                factor = {"CHARGE": 1, "REFUND": -1, "DEPOSIT": 0}[kind]
                for rate, vat in _vat_by_rate(record.get("items", [])).items():
                    tax[rate] = tax.get(rate, 0) + factor * vat
            charged, refunded, deposited = totals["CHARGE"][0], totals["REFUND"][0], totals["DEPOSIT"][0]
            number = int(hashlib.sha256(f"{self._seed}:ref:{payout_id}".encode()).hexdigest(), 16) % 10**10
            self._payouts[payout_id] = {
                "id": payout_id,
                "merchant": owner.secret_key,
                "seq": self._counters["payout"],
                "reference": f"{number:010d}",
                "date": payout_date.isoformat(),
                "bankAccountIban": owner.bank_account_iban,
                "bankAccountBic": owner.bank_account_bic,
                "currency": currency,
                "amount": charged - refunded + deposited - fees,
                "chargedAmount": charged,
                "numberOfCharges": totals["CHARGE"][1],
                "refundedAmount": refunded,
                "numberOfRefunds": totals["REFUND"][1],
                "depositedAmount": deposited,
                "numberOfDeposits": totals["DEPOSIT"][1],
                "fees": fees,
                "tax": sorted([rate, amount] for rate, amount in tax.items()),
                "actions": actions,
            }
            return payout_id

    def payment_json(self, payment_id: str) -> dict:
        """What ``GET /v1/payments/{id}`` returns (without HTTP)."""
        with self._lock:
            return {"payment": self._render_payment(self._payments[payment_id])}

    def payout_json(self, payout_id: str) -> dict:
        """What ``GET /report/v1/payouts/{id}`` returns with all payment actions on one page."""
        with self._lock:
            payout = self._payouts[payout_id]
            return self._render_payout_details(payout, 0, max(1, len(payout["actions"])))

    def payouts_of(self, merchant: Merchant | str, currency: str | None = None) -> list[str]:
        with self._lock:
            owner = self._merchant(merchant)
            payouts = [p for p in self._payouts.values() if p["merchant"] == owner.secret_key]
            if currency:
                payouts = [p for p in payouts if p["currency"] == currency]
            return [p["id"] for p in sorted(payouts, key=lambda p: (p["date"], p["seq"]))]

    # ----------------------------------------------------------------------------- core operations

    def _insert_payment(self, owner: Merchant, *, items: list[dict], amount: int, currency: str,
                        reference: str | None, created: float, checkout: dict) -> str:
        payment_id = self._new_id("payment")
        self._payments[payment_id] = {
            "id": payment_id,
            "merchant": owner.secret_key,
            "amount": amount,
            "currency": currency,
            "reference": reference,
            "items": items,
            "created": created,
            "checkout": checkout,
            "reserved": 0,
            "consumer": None,
            "method": None,
            "maskedPan": None,
            "expiryDate": None,
            "charges": [],
            "refunds": [],
        }
        return payment_id

    def _record_currency(self, record: dict) -> str:
        if "payment" in record:
            return self._payments[record["payment"]]["currency"]
        return record["currency"]

    def _charged(self, payment: dict) -> int:
        return sum(self._charges[c]["amount"] for c in payment["charges"])

    def _refundable(self, charge: dict) -> int:
        return charge["amount"] - sum(self._refunds[r]["amount"] for r in charge["refunds"])

    def _do_charge(self, payment: dict, amount: Any, items: list[dict] | None, at: float) -> str:
        if not _is_int(amount) or amount <= 0:
            raise ApiError({"amount": ["The amount field is required and must be greater than 0."]})
        remaining = payment["reserved"] - self._charged(payment)
        if not payment["reserved"]:
            raise ApiError({"amount": ["The payment has no reservation to charge."]})
        if amount > remaining:
            raise ApiError(
                {"amount": [f"Amount {amount} exceeds the remaining reserved amount {remaining}."]}
            )
        if items is None:
            # orderItems may only be left out when the whole order is charged at once [V: client docs].
            if payment["charges"] or amount != payment["amount"]:
                raise ApiError({"orderItems": ["Order items are required for a partial charge."]})
            items = [dict(item) for item in payment["items"]]
        elif sum(item["grossTotalAmount"] for item in items) != amount:
            raise ApiError({"amount": ["The amount does not match the sum of the order items."]})
        charge_id = self._new_id("charge")
        self._charges[charge_id] = {
            "id": charge_id, "payment": payment["id"], "merchant": payment["merchant"], "amount": amount,
            "items": items, "created": at, "refunds": [], "payout": None,
        }
        payment["charges"].append(charge_id)
        return charge_id

    def _do_refund(self, charge: dict, amount: Any, items: list[dict] | None, at: float) -> str:
        if not _is_int(amount) or amount <= 0:
            raise ApiError({"amount": ["The amount field is required and must be greater than 0."]})
        refundable = self._refundable(charge)
        if amount > refundable:
            raise ApiError({"amount": [f"Amount {amount} exceeds the refundable amount {refundable}."]})
        if items is None:
            if charge["refunds"] or amount != charge["amount"]:
                raise ApiError({"orderItems": ["Order items are required for a partial refund."]})
            items = [dict(item) for item in charge["items"]]
        elif sum(item["grossTotalAmount"] for item in items) != amount:
            raise ApiError({"amount": ["The amount does not match the sum of the order items."]})
        refund_id = self._new_id("refund")
        self._refunds[refund_id] = {
            "id": refund_id, "charge": charge["id"], "payment": charge["payment"],
            "merchant": charge["merchant"], "amount": amount, "items": items, "created": at,
            "state": "Completed", "payout": None,
        }
        charge["refunds"].append(refund_id)
        self._payments[charge["payment"]]["refunds"].append(refund_id)
        return refund_id

    def _make_consumer(self, rng: random.Random, country: str, company: bool) -> dict:
        prefix, addresses, firsts, lasts = _PEOPLE.get(country, ("+00", [("Main Street 1", "1000", "CITY")],
                                                                 ["Alex"], ["Doe"]))
        street, postal, city = rng.choice(addresses)
        first, last = rng.choice(firsts), rng.choice(lasts)
        email = f"{first}.{last}".lower().replace(" ", "") + "@example.com"
        phone = {"prefix": prefix, "number": f"{rng.randint(10_000_000, 99_999_999)}"}
        consumer = {"country": country, "street": street, "postalCode": postal, "city": city,
                    "firstName": first, "lastName": last, "email": email, "phone": phone, "company": None}
        if company:
            consumer["company"] = {
                "name": f"{last} {'AB' if country == 'SWE' else 'GmbH' if country == 'DEU' else 'Ltd'}",
                "registrationNumber": f"{rng.randint(100000, 999999)}-{rng.randint(1000, 9999)}",
            }
        return consumer

    # --------------------------------------------------------------------------------- rendering

    def _render_payment(self, payment: dict) -> dict:
        charged = self._charged(payment)
        refunded = sum(self._refunds[r]["amount"] for r in payment["refunds"]
                       if self._refunds[r]["state"] == "Completed")
        summary = {
            "reservedAmount": payment["reserved"], "chargedAmount": charged, "refundedAmount": refunded,
        }
        consumer_data = payment["consumer"]
        if consumer_data is None:
            consumer = {"shippingAddress": {}, "billingAddress": {}, "privatePerson": {}, "company": {}}
            details: dict = {}
        else:
            address = {
                "addressLine1": consumer_data["street"], "addressLine2": "",
                "receiverLine": f"{consumer_data['firstName']} {consumer_data['lastName']}",
                "postalCode": consumer_data["postalCode"], "city": consumer_data["city"],
                "country": consumer_data["country"],
            }
            contact = {"firstName": consumer_data["firstName"], "lastName": consumer_data["lastName"],
                       "email": consumer_data["email"], "phoneNumber": dict(consumer_data["phone"])}
            consumer = {"shippingAddress": address, "billingAddress": dict(address)}
            if consumer_data["company"]:
                consumer["company"] = {"merchantReference": None, "name": consumer_data["company"]["name"],
                                       "registrationNumber": consumer_data["company"]["registrationNumber"],
                                       "contactDetails": contact}
                consumer["privatePerson"] = {}
            else:
                consumer["company"] = {}
                consumer["privatePerson"] = {"merchantReference": None, "dateOfBirth": None, **contact}
            card = {"maskedPan": payment["maskedPan"], "expiryDate": payment["expiryDate"]}
            details = {"paymentType": "CARD", "paymentMethod": payment["method"], "invoiceDetails": {},
                       "cardDetails": card}
        order = {"amount": payment["amount"], "currency": payment["currency"]}
        if payment["reference"] is not None:
            order["reference"] = payment["reference"]
        checkout = payment["checkout"]
        return {
            "paymentId": payment["id"],
            "summary": {key: value for key, value in summary.items() if value},
            "consumer": consumer,
            "paymentDetails": details,
            "orderDetails": order,
            "checkout": {"url": checkout.get("url") or checkout.get("returnUrl"),
                         "cancelUrl": checkout.get("cancelUrl")},
            "created": _iso_offset(payment["created"]),
            "refunds": [
                {"refundId": r["id"], "amount": r["amount"], "state": r["state"],
                 "lastUpdated": _iso_offset(r["created"]), "orderItems": [dict(i) for i in r["items"]]}
                for r in (self._refunds[rid] for rid in payment["refunds"])
            ],
            "charges": [
                {"chargeId": c["id"], "amount": c["amount"], "created": _iso_offset(c["created"]),
                 "orderItems": [dict(i) for i in c["items"]]}
                for c in (self._charges[cid] for cid in payment["charges"])
            ],
        }

    def _render_payout(self, payout: dict) -> dict:
        keys = ("id", "reference", "date", "bankAccountIban", "bankAccountBic", "currency", "amount",
                "chargedAmount", "numberOfCharges", "refundedAmount", "numberOfRefunds", "depositedAmount",
                "numberOfDeposits", "fees")
        rendered = {key: payout[key] for key in keys}
        rendered.update({"feeVATpercent": 0, "feeTaxRate": 0, "feeTaxAmount": 0})
        rendered["transactionTaxDetails"] = [
            {"rate": rate, "amount": amount} for rate, amount in payout["tax"]
        ]
        return rendered

    def _render_action(self, entry: dict, currency: str) -> dict:
        kind = entry["type"]
        sign = self.refund_amount_sign if kind == "REFUND" else 1
        if kind == "DEPOSIT":
            record, payment = self._deposits[entry["id"]], None
        else:
            record = (self._charges if kind == "CHARGE" else self._refunds)[entry["id"]]
            payment = self._payments[record["payment"]]
        vat = _vat_by_rate(record.get("items", []))
        flexible, fixed = entry["flexibleFee"], entry["fixedFee"]
        return {
            "id": record["id"],
            "paymentId": payment["id"] if payment else None,
            "paymentAction": kind,
            "paymentMethod": payment["method"] if payment else None,
            "paymentType": "CARD" if payment else None,
            "timestamp": _action_timestamp(record["created"]),
            "reference": payment["reference"] if payment else None,
            "invoiceNumber": None,
            "amount": sign * record["amount"],
            "vatAmount": sign * sum(vat.values()),
            "currency": currency,
            "fee": sign * (flexible + fixed),
            "flexibleFee": sign * flexible,
            "fixedFee": sign * fixed,
            "feeVATpercent": 0,
            "feeTaxRate": 0,
            "feeTaxAmount": 0,
            "transactionTaxDetails": [
                {"rate": rate, "amount": sign * amount} for rate, amount in sorted(vat.items())
            ],
            "subscriptionId": None,
        }

    def _render_payout_details(self, payout: dict, page: int, size: int) -> dict:
        rendered = self._render_payout(payout)
        actions = payout["actions"]
        rendered["numberOfPaymentActions"] = len(actions)
        rendered["paymentActions"] = [
            self._render_action(entry, payout["currency"]) for entry in actions[page * size:(page + 1) * size]
        ]
        return rendered

    # ------------------------------------------------------------------------------------- WSGI

    def __call__(self, environ: dict, start_response):
        request = Request(environ)
        fault = self.faults.take(request.method, request.path)
        if fault is not None and fault.kind == "drop_before":
            # Log first: once the socket is shut the client may already be looking at the log.
            self._record(request, 0)
        response = apply_fault_before(fault, environ)
        if response is None:
            response = self._dispatch(request)
            if fault is not None and fault.kind == "drop_after_commit":
                self._record(request, 0)
                drop_connection(environ)
        self._record(request, response.status_code)
        return response(environ, start_response)

    def _record(self, request: Request, status: int) -> None:
        """Log one request; status 0 means the connection was dropped without an answer."""
        entry = LoggedRequest(method=request.method, path=request.path, status=status, at=self.clock.now(),
                              query=request.query_string.decode("latin-1"))
        with self._lock:
            self.log.append(entry)

    def _dispatch(self, request: Request) -> Response:
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed as exc:
            response = _empty(405)
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or []))
            return response
        except HTTPException:
            return _empty(404)
        if endpoint == "hpp":
            with self._lock:
                return self._http_hpp(request, **args)
        with self._lock:
            merchant = self._merchants.get(request.headers.get("Authorization", ""))
            if merchant is None:
                return _empty(401)
            if self._rate_limited(merchant.secret_key):
                return _empty(429)
            return getattr(self, f"_http_{endpoint}")(request, merchant, **args)

    def _rate_limited(self, key: str) -> bool:
        if not self.rate_limit:
            return False
        limit, seconds = self.rate_limit
        now = self.clock.now()
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - seconds:
            window.popleft()
        if len(window) >= limit:
            return True  # refused requests do not count towards the window
        window.append(now)
        return False

    # ----------------------------------------------------------------------------- Payment API

    def _http_get_payment(self, request: Request, merchant: Merchant, payment_id: str) -> Response:
        if not ID_RE.match(payment_id):
            return _errors({"paymentId": [f"The value '{payment_id}' is not valid."]})
        payment = self._payments.get(payment_id.lower())
        if payment is None or payment["merchant"] != merchant.secret_key:
            return _empty(404)
        return _json(200, {"payment": self._render_payment(payment)})

    def _http_create_payment(self, request: Request, merchant: Merchant) -> Response:
        body, problem = _read_json(request)
        if problem is not None:
            return problem
        errors: dict[str, list[str]] = {}
        order = body.get("order")
        items: list[dict] = []
        if not isinstance(order, dict):
            errors["order"] = ["The order field is required."]
        else:
            items, item_errors = validate_order_items(order.get("items"), "order.items")
            errors.update(item_errors)
            amount = order.get("amount")
            if not _is_int(amount) or amount <= 0:
                errors["order.amount"] = ["The amount field is required and must be greater than 0."]
            elif not item_errors and sum(i["grossTotalAmount"] for i in items) != amount:
                errors["order.amount"] = ["The amount does not match the sum of the order items."]
            if order.get("currency") not in SUPPORTED_CURRENCIES:
                errors["order.currency"] = [
                    "The currency field is required and must be a supported currency."
                ]
            if order.get("reference") is not None and (
                    not isinstance(order["reference"], str) or len(order["reference"]) > 128):
                errors["order.reference"] = ["The reference must be a string of at most 128 characters."]
        checkout = body.get("checkout")
        if not isinstance(checkout, dict):
            errors["checkout"] = ["The checkout field is required."]
        else:
            integration = checkout.get("integrationType", "EmbeddedCheckout")
            if integration not in ("EmbeddedCheckout", "HostedPaymentPage"):
                errors["checkout.integrationType"] = ["Must be 'EmbeddedCheckout' or 'HostedPaymentPage'."]
            if not checkout.get("termsUrl"):
                errors["checkout.termsUrl"] = ["The termsUrl field is required."]
            if integration == "EmbeddedCheckout" and not checkout.get("url"):
                errors["checkout.url"] = ["The url field is required for an embedded checkout."]
            if integration == "HostedPaymentPage" and not checkout.get("returnUrl"):
                errors["checkout.returnUrl"] = ["The returnUrl field is required for a hosted payment page."]
        if errors:
            return _errors(errors)
        payment_id = self._insert_payment(
            merchant, items=items, amount=order["amount"], currency=order["currency"],
            reference=order.get("reference"), created=self.clock.now(),
            checkout={key: checkout.get(key) for key in ("url", "returnUrl", "cancelUrl", "termsUrl")}
            | {"charge": bool(checkout.get("charge"))},
        )
        hpp = f"{request.root_url.rstrip('/')}/checkout/hostedpaymentpage/{payment_id}"
        return _json(201, {"paymentId": payment_id, "hostedPaymentPageUrl": hpp})

    def _http_charge(self, request: Request, merchant: Merchant, payment_id: str) -> Response:
        if not ID_RE.match(payment_id):
            return _errors({"paymentId": [f"The value '{payment_id}' is not valid."]})
        payment = self._payments.get(payment_id.lower())
        if payment is None or payment["merchant"] != merchant.secret_key:
            return _empty(404)

        def act(body: dict) -> Response:
            items = None
            if body.get("orderItems") is not None:
                items, item_errors = validate_order_items(body["orderItems"], "orderItems")
                if item_errors:
                    return _errors(item_errors)
            charge_id = self._do_charge(payment, body.get("amount"), items, self.clock.now())
            return _json(201, {"chargeId": charge_id})

        return self._idempotent(request, merchant, act)

    def _http_refund(self, request: Request, merchant: Merchant, charge_id: str) -> Response:
        if not ID_RE.match(charge_id):
            return _errors({"chargeId": [f"The value '{charge_id}' is not valid."]})
        charge = self._charges.get(charge_id.lower())
        if charge is None or charge["merchant"] != merchant.secret_key:
            return _empty(404)

        def act(body: dict) -> Response:
            items = None
            if body.get("orderItems") is not None:
                items, item_errors = validate_order_items(body["orderItems"], "orderItems")
                if item_errors:
                    return _errors(item_errors)
            refund_id = self._do_refund(charge, body.get("amount"), items, self.clock.now())
            return _json(201, {"refundId": refund_id})

        return self._idempotent(request, merchant, act)

    def _idempotent(self, request: Request, merchant: Merchant, act) -> Response:
        """Run ``act(body)`` once per Idempotency-Key; a repeat with the same request replays the answer."""
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
            message = f"The Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} characters."
            return _errors({"Idempotency-Key": [message]})
        body, problem = _read_json(request)
        if problem is not None:
            return problem
        fingerprint = hashlib.sha256(
            (request.path + json.dumps(body, sort_keys=True)).encode()).hexdigest()
        slot = f"{merchant.secret_key}|{key}"
        if key is not None and slot in self._idempotency:
            stored = self._idempotency[slot]
            if stored["fingerprint"] != fingerprint:
                return _errors({"Idempotency-Key": ["The Idempotency-Key was used for a different request."]})
            return _json(stored["status"], stored["body"])
        try:
            response = act(body)
        except ApiError as exc:
            return _errors(exc.errors)
        if key is not None and response.status_code == 201:
            self._idempotency[slot] = {
                "fingerprint": fingerprint, "status": 201, "body": json.loads(response.data),
            }
        return response

    # ---------------------------------------------------------------------------- Reporting API

    def _http_list_payouts(self, request: Request, merchant: Merchant) -> Response:
        args = request.args
        errors: dict[str, list[str]] = {}
        bounds = {}
        for name in ("fromDate", "toDate"):
            value = args.get(name)
            if not value:
                errors[name] = [f"The {name} field is required."]
                continue
            parsed = _parse_full_date(value)
            if parsed is None:
                errors[name] = [f"The value '{value}' is not valid for {name} (expected YYYY-MM-DD)."]
            bounds[name] = parsed
        currency = args.get("currency")
        if currency is not None and not CURRENCY_RE.match(currency):
            errors["currency"] = [f"The value '{currency}' is not a valid ISO 4217 currency code."]
        page, size = _paging(args, errors)
        if not errors and bounds["fromDate"] > bounds["toDate"]:
            errors["toDate"] = ["toDate must not be before fromDate."]
        if errors:
            return _errors(errors)
        refused = _check_merchant_number(args, merchant)
        if refused is not None:
            return refused
        start, end = bounds["fromDate"].isoformat(), bounds["toDate"].isoformat()
        matching = sorted(
            (p for p in self._payouts.values()
             if p["merchant"] == merchant.secret_key and start <= p["date"] <= end
             and (currency is None or p["currency"] == currency)),
            key=lambda p: (p["date"], p["seq"]),
        )
        return _json(200, {
            "numberOfPayouts": len(matching),
            "payouts": [self._render_payout(p) for p in matching[page * size:(page + 1) * size]],
        })

    def _http_get_payout(self, request: Request, merchant: Merchant, payout_id: str) -> Response:
        errors: dict[str, list[str]] = {}
        if not ID_RE.match(payout_id):
            errors["id"] = [f"The value '{payout_id}' is not valid."]
        page, size = _paging(request.args, errors)
        if errors:
            return _errors(errors)
        refused = _check_merchant_number(request.args, merchant)
        if refused is not None:
            return refused
        payout = self._payouts.get(payout_id.lower())
        if payout is None or payout["merchant"] != merchant.secret_key:
            return _empty(404)
        return _json(200, self._render_payout_details(payout, page, size))

    # ------------------------------------------------------------------- hosted payment page

    def _http_hpp(self, request: Request, payment_id: str) -> Response:
        payment = self._payments.get(payment_id.lower()) if ID_RE.match(payment_id) else None
        if payment is None:
            return _html(404, "<p>Betalningen finns inte.</p>")
        if request.method == "GET":
            options = "".join(f'<option value="{c}">{c}</option>' for c in sorted(_PEOPLE))
            amount = f"{payment['amount'] / 100:.2f} {payment['currency']}"
            return _html(200, (
                f"<h1>Nets Easy sandbox checkout</h1><p>Belopp: {html.escape(amount)}</p>"
                f'<form method="post"><label>Land <select name="country">{options}</select></label> '
                '<label>Kort <select name="paymentMethod"><option>Visa</option><option>MasterCard</option>'
                '</select></label> <label><input type="checkbox" name="company" value="1"> Företag</label> '
                '<button type="submit">Betala</button></form>'))
        if payment["reserved"]:
            return _html(400, "<p>Betalningen är redan genomförd.</p>")
        form = request.form
        country = form.get("country", "SWE")
        method = form.get("paymentMethod", "Visa")
        if country not in _PEOPLE or method not in _CARDS:
            return _html(400, "<p>Ogiltigt land eller kort.</p>")
        self.complete_checkout(payment["id"], country=country, company=bool(form.get("company")),
                               payment_method=method)
        return_url = payment["checkout"].get("returnUrl")
        if return_url:
            separator = "&" if "?" in return_url else "?"
            response = Response(status=302)
            response.headers["Location"] = f"{return_url}{separator}{urlencode({'paymentid': payment['id']})}"
            return response
        return _html(200, "<p>Betalningen är genomförd.</p>")

    # ------------------------------------------------------------------------------------- demo

    def seed_demo(self) -> dict:
        """Register the demo merchant and ~3 weeks of card sales and daily payouts ending today.

        Deterministic for a given date (seeded random). SEK sales to Sweden, other EU states and outside
        the EU (0 % VAT), a few refunds, one EUR payout, and today's sales still unsettled.
        """
        with self._lock:
            merchant = self.add_merchant(DEMO_SECRET_KEY, DEMO_MERCHANT_NAME)
            rng = random.Random(DEMO_SEED)
            today = self.today()
            first_day = today - timedelta(days=DEMO_DAYS)
            order_number = [1000]
            sek_charges: list[tuple[date, str]] = []
            payout_ids: list[str] = []
            eur_payout_id = None
            countries = [c for c, _ in _DEMO_SEK_COUNTRIES]
            weights = [w for _, w in _DEMO_SEK_COUNTRIES]
            refunds = 0

            def sale(day: date, currency: str, country: str, ts: float | None = None) -> str:
                order_number[0] += 1
                company = rng.random() < 0.15
                specs = self._demo_items(rng, currency, country, company)
                if ts is None:
                    clock_time = time(rng.randint(7, 21), rng.randint(0, 59), rng.randint(0, 59),
                                      rng.randint(0, 999999))
                    ts = datetime.combine(day, clock_time, UTC).timestamp()
                moment = ts
                payment_id = self.create_payment(
                    merchant, amount_items=specs, currency=currency, country=country,
                    reference=f"ORDER-{order_number[0]}", company=company, created=moment)
                return self.charge(payment_id, at=moment + rng.randint(60, 1800))

            for offset in range(DEMO_DAYS):
                day = first_day + timedelta(days=offset)
                for _ in range(rng.randint(3, 6)):
                    country = rng.choices(countries, weights)[0]
                    sek_charges.append((day, sale(day, "SEK", country)))
                if offset in DEMO_REFUND_DAYS:
                    candidates = [
                        cid for d, cid in sek_charges if d < day and not self._charges[cid]["refunds"]
                    ]
                    charge = self._charges[rng.choice(candidates)]
                    at = datetime.combine(day, time(10, rng.randint(0, 59)), UTC).timestamp()
                    if len(charge["items"]) > 1 and offset % 2 == 0:
                        line = charge["items"][0]  # the customer returned one line of the order
                        self.refund(charge["id"], line["grossTotalAmount"], order_items=[line], at=at)
                    else:
                        self.refund(charge["id"], at=at)
                    refunds += 1
                if offset == DEMO_EUR_DAY:
                    for country in _DEMO_EUR_COUNTRIES:
                        sale(day, "EUR", country)
                payout_day = day + timedelta(days=1)
                payout_ids.append(self.settle_payout(merchant, date=payout_day, currency="SEK"))
                if offset == DEMO_EUR_DAY:
                    eur_payout_id = self.settle_payout(merchant, date=payout_day, currency="EUR")
            now = self.clock.now()
            for hours_ago, country in ((3, "SWE"), (1, "NOR")):
                sale(today, "SEK", country, ts=now - hours_ago * 3600 - 1800)
            return {
                "secret_key": DEMO_SECRET_KEY,
                "merchant_name": DEMO_MERCHANT_NAME,
                "merchant_number": merchant.merchant_number,
                "from_date": (first_day + timedelta(days=1)).isoformat(),
                "to_date": today.isoformat(),
                "payout_ids": [p for p in payout_ids if p],
                "eur_payout_id": eur_payout_id,
                "payments": order_number[0] - 1000,
                "refunds": refunds,
            }

    @staticmethod
    def _demo_items(rng: random.Random, currency: str, country: str, company: bool) -> list[dict]:
        # Exports outside the EU and intra-EU B2B supplies carry 0 %; everything else Swedish VAT (below
        # the EU distance-selling threshold).
        zero = country not in EU_MEMBER_STATES or (company and country != "SWE")
        divisor = 10 if currency == "EUR" else 1
        specs = []
        for reference, name, price, rate in rng.sample(_CATALOGUE, rng.randint(1, 3)) + [_SHIPPING]:
            specs.append({
                "reference": reference, "name": name, "unit": "pcs",
                "quantity": 1 if reference == _SHIPPING[0] else rng.randint(1, 2),
                "unitPrice": price // divisor, "taxRate": 0 if zero else rate,
            })
        return specs


# ------------------------------------------------------------------------------------------ responses


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status,
                    content_type="application/json; charset=utf-8")


def _errors(errors: dict[str, list[str]]) -> Response:
    return _json(400, {"errors": errors})


def _empty(status: int) -> Response:
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    return response


def _html(status: int, body: str) -> Response:
    head = '<!doctype html><html lang="sv"><meta charset="utf-8"><title>Nets Easy sandbox</title>'
    page = f"{head}{body}</html>"
    return Response(page, status=status, content_type="text/html; charset=utf-8")


def _read_json(request: Request) -> tuple[dict, Response | None]:
    """The JSON object body of a POST, or the refusal Nets would send (415 wrong type, 400 bad JSON)."""
    if request.mimetype != "application/json":
        return {}, _empty(415)
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        return {}, _errors({"body": ["The request body is not valid JSON."]})
    if not isinstance(body, dict):
        return {}, _errors({"body": ["The request body must be a JSON object."]})
    return body, None


def _paging(args, errors: dict[str, list[str]]) -> tuple[int, int]:
    values = {}
    limits = (("pageNumber", 0, 0, None), ("pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE))
    for name, default, low, high in limits:
        raw = args.get(name)
        if raw is None:
            values[name] = default
            continue
        if not re.fullmatch(r"\d+", raw) or int(raw) < low or (high is not None and int(raw) > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            errors[name] = [f"The value '{raw}' is not valid for {name} (an integer {bound})."]
            values[name] = default
        else:
            values[name] = int(raw)
    return values["pageNumber"], values["pageSize"]


def _check_merchant_number(args, merchant: Merchant) -> Response | None:
    """``merchantNumber`` is for partners; a merchant key asking for another merchant is refused [U]."""
    number = args.get("merchantNumber")
    if number is not None and number != str(merchant.merchant_number):
        return _empty(403)
    return None
