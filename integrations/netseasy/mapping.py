"""Pure functions: Nets Easy JSON -> our DTOs. No HTTP here.

Amounts arrive as integer minor units and are converted to ``Decimal`` exactly once, here. Nets'
sign on REFUND actions is unverified (the sandbox can send either), so every action amount is
taken as a magnitude (``abs``) and its direction comes from ``paymentAction``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ..base import (  # the DTOs of a payment source live in the interface
    OrderLineDTO,
    PaymentActionDTO,
    PaymentDTO,
    PayoutDTO,
    rate_key,
)

CHARGE, REFUND, DEPOSIT = "CHARGE", "REFUND", "DEPOSIT"
ACTIONS = (CHARGE, REFUND, DEPOSIT)

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {"JPY": 0, "ISK": 0, "KRW": 0, "CLP": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def money(minor, currency: str = "SEK") -> Decimal:
    """Integer minor units -> Decimal in major units (``12500`` SEK -> ``Decimal('125.00')``)."""
    if minor is None or minor == "":
        minor = 0
    if isinstance(minor, bool) or not isinstance(minor, (int, str)):
        raise ValueError(f"amount {minor!r} is not an integer number of minor units")
    exponent = _EXPONENTS.get((currency or "").upper(), 2)
    return (Decimal(int(minor)).scaleb(-exponent)).quantize(Decimal(1).scaleb(-exponent))


# --- mapping ---------------------------------------------------------------------------------


def as_date(value) -> dt.date:
    return dt.date.fromisoformat(str(value)[:10])


def as_timestamp(value) -> dt.datetime | None:
    """``2024-05-03T05:07:40.118Z`` (or with an offset) -> an aware datetime."""
    if not value:
        return None
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _tax_details(items, currency: str) -> tuple[tuple[str, Decimal], ...]:
    totals: dict[str, Decimal] = {}
    for item in items or []:
        if not isinstance(item, dict):
            continue
        key = rate_key(item.get("rate"))
        totals[key] = totals.get(key, Decimal("0")) + abs(money(item.get("amount"), currency))
    return tuple(sorted(totals.items()))


def payout_dto(data: dict) -> PayoutDTO:
    currency = str(data.get("currency") or "").upper()
    count = data.get("numberOfPaymentActions")
    return PayoutDTO(
        id=str(data["id"]).lower(),
        reference=str(data.get("reference") or ""),
        date=as_date(data["date"]),
        currency=currency,
        # The payout amount keeps its sign: it is negative when refunds exceed the charges.
        amount=money(data.get("amount"), currency),
        charged=abs(money(data.get("chargedAmount"), currency)),
        refunded=abs(money(data.get("refundedAmount"), currency)),
        deposited=abs(money(data.get("depositedAmount"), currency)),
        fees=abs(money(data.get("fees"), currency)),
        number_of_actions=count if isinstance(count, int) else None,
        tax_details=_tax_details(data.get("transactionTaxDetails"), currency),
    )


def action_dto(data: dict, *, currency: str = "") -> PaymentActionDTO:
    action = str(data.get("paymentAction") or "").upper()
    currency = str(data.get("currency") or currency or "").upper()
    return PaymentActionDTO(
        id=str(data["id"]).lower(),
        payment_id=str(data.get("paymentId") or "").lower(),
        action=action,
        amount=abs(money(data.get("amount"), currency)),
        vat=abs(money(data.get("vatAmount"), currency)),
        fee=abs(money(data.get("fee"), currency)),
        currency=currency,
        timestamp=as_timestamp(data.get("timestamp")),
        reference=str(data.get("reference") or ""),
        payment_method=str(data.get("paymentMethod") or ""),
        tax_details=_tax_details(data.get("transactionTaxDetails"), currency),
    )


def _lines(items, currency: str) -> tuple[OrderLineDTO, ...]:
    lines = []
    for item in items or []:
        if not isinstance(item, dict):
            continue
        lines.append(OrderLineDTO(
            rate=rate_key(item.get("taxRate")),
            net=money(item.get("netTotalAmount"), currency),
            vat=money(item.get("taxAmount"), currency),
            gross=money(item.get("grossTotalAmount"), currency),
        ))
    return tuple(lines)


def payment_dto(body: dict) -> PaymentDTO:
    payment = body.get("payment", body)
    order = payment.get("orderDetails") or {}
    currency = str(order.get("currency") or "").upper()
    consumer = payment.get("consumer") or {}
    country = ""
    for address in ("shippingAddress", "billingAddress"):
        country = str((consumer.get(address) or {}).get("country") or "").strip().upper()
        if country:
            break
    company = consumer.get("company") or {}
    is_company = bool(company.get("name") or company.get("registrationNumber"))
    return PaymentDTO(
        id=str(payment.get("paymentId") or "").lower(),
        country=country,
        is_company=is_company,
        currency=currency,
        reference=str(order.get("reference") or ""),
        charges={str(c.get("chargeId") or "").lower(): _lines(c.get("orderItems"), currency)
                 for c in payment.get("charges") or [] if isinstance(c, dict)},
        refunds={str(r.get("refundId") or "").lower(): _lines(r.get("orderItems"), currency)
                 for r in payment.get("refunds") or [] if isinstance(r, dict)},
    )
