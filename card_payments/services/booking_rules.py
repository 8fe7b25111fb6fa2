"""The booking rules of one payment action: which accounts a charge, refund or deposit moves (pure)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

from bookkeeping import rules
from integrations.base import lines_from_json
from wording import Msg

from ..models import NetsPayment, NetsPaymentAction
from .settings import ZERO, NetsConfig


@dataclass
class Line:
    account: int
    amount: Decimal  # + debit, − credit
    text: str = ""
    source: tuple[str, str] | None = None  # the mapping row (kind, key) the account came from


@dataclass
class Planned:
    """What one payment action books: its lines, or why it cannot be booked."""

    lines: list[Line] = field(default_factory=list)
    country: str = ""
    region: str = ""
    flags: list[str] = field(default_factory=list)
    problem: str = ""
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # mapping rows it waits for


RECEIVABLE = ("receivable", "*")
BANK = ("bank", "*")
FEE = ("fee", "*")


def _vat_from_lines(lines) -> dict[str, Decimal]:
    vat: dict[str, Decimal] = {}
    for line in lines:
        if line.vat:
            vat[line.rate] = vat.get(line.rate, ZERO) + abs(line.vat)
    return vat


def plan_action(action: NetsPaymentAction, payment: NetsPayment | None, config: NetsConfig) -> Planned:
    """The lines for one charge, refund or deposit. Pure: reads only what it is given."""
    planned = Planned()
    if action.action == "DEPOSIT":
        planned.lines = [Line(config.receivable_account, action.amount, "Insättning till Nets", RECEIVABLE),
                         Line(config.bank_account, -action.amount, "Insättning till Nets", BANK)]
        return planned
    if payment is None:
        planned.problem = action.problem or Msg("The payment %(id)s could not be read from Nets Easy.", id=action.payment_id)
        return planned
    planned.country = payment.country
    region = rules.sales_region(payment.country)
    if region is None:
        planned.problem = Msg("The customer's country is unknown for payment %(id)s, so the sales account cannot be "
                            "chosen.", id=action.payment_id)
        return planned
    planned.region = region
    store = payment.charges if action.action == "CHARGE" else payment.refunds
    lines = lines_from_json(store.get(action.nets_id))
    vat = _vat_from_lines(lines)
    if lines and sum((line.gross for line in lines), ZERO) != action.amount:
        planned.flags.append(Msg("The order lines add up to %(lines)s but Nets paid %(amount)s; VAT taken from the "
                               "payout report.", lines=sum((line.gross for line in lines), ZERO), amount=action.amount))
        lines = ()
    if not lines:
        vat = {rate: Decimal(amount) for rate, amount in (action.tax_details or {}).items() if Decimal(amount)}
        if not vat and action.vat_amount:
            planned.problem = Msg("Nets reports %(vat)s VAT on %(ref)s without its rate; book it by hand.", vat=action.vat_amount, ref=action.reference or action.nets_id)
            return planned
    total_vat = sum(vat.values(), ZERO)
    if total_vat != action.vat_amount:
        planned.flags.append(Msg("The order lines carry %(lines)s VAT, the payout report %(report)s; the order lines "
                               "were booked.", lines=total_vat, report=action.vat_amount))
    missing = sorted(rate for rate in vat if rate not in config.vat_accounts)
    if missing:
        planned.problem = Msg("No output VAT account is set for %(rates)s %% VAT (%(ref)s). Add it in the Nets Easy "
                            "settings.", rates=", ".join(missing), ref=action.reference or action.nets_id)
        planned.unmapped = [("output_vat", rate) for rate in missing]
        return planned

    # The region rule, checked against the VAT the web shop charged. We book what was charged (VAT
    # shown to a customer is owed even when wrong) and flag the mismatch for staff.
    if region == rules.REGION_WORLD and total_vat:
        planned.flags.append(Msg("%(vat)s VAT was charged to a customer outside the EU (%(country)s); exports carry "
                               "no Swedish VAT.", vat=total_vat, country=payment.country))
    elif region == rules.REGION_SWEDEN and not total_vat:
        planned.flags.append(Msg("No VAT on a sale to a customer in Sweden."))
    elif region == rules.REGION_EU and not total_vat and not payment.is_company:
        planned.flags.append(Msg("No VAT on a sale to a consumer in another EU country (%(country)s).", country=payment.country))

    sales_key = region
    if region == rules.REGION_EU and payment.is_company and not total_vat and config.sales_account_eu_b2b:
        sales_key = "eu_b2b"  # intra-EU supply to a business: 3108, ruta 35
    sales_account = config.sales_account_eu_b2b if sales_key == "eu_b2b" else config.sales_accounts.get(region)
    if sales_account is None:
        planned.problem = Msg("No sales account is set for the region %(region)s (%(ref)s). Add it in the Nets Easy "
                            "settings.", region=rules.REGION_LABELS.get(region, region), ref=action.reference or action.nets_id)
        planned.unmapped = [("sales_region", region)]
        return planned
    sign = Decimal(1) if action.action == "CHARGE" else Decimal(-1)
    text = f"{action.reference or action.nets_id[:12]} {payment.country}".strip()[:100]
    net = action.amount - total_vat
    planned.lines = [Line(config.receivable_account, sign * action.amount, text, RECEIVABLE)]
    if net:
        planned.lines.append(Line(sales_account, -sign * net, text, ("sales_region", sales_key)))
    for rate in sorted(vat, key=lambda r: -Decimal(r)):
        planned.lines.append(Line(config.vat_accounts[rate], -sign * vat[rate], f"Moms {rate} % {text}"[:100],
                                  ("output_vat", rate)))
    return planned


def _netted(lines: list[Line]) -> list[Line]:
    """One row per account (first text kept), zero rows dropped."""
    by_account: OrderedDict[int, Line] = OrderedDict()
    for line in lines:
        if line.account in by_account:
            by_account[line.account].amount += line.amount
        else:
            by_account[line.account] = Line(line.account, line.amount, line.text, line.source)
    return [line for line in by_account.values() if line.amount]
