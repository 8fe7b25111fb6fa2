"""Nets Easy card payments into Fortnox: settings, activation, sync, booking, reconciliation, reports.

The accounting, in short (the choices are explained where they are made):

- Each CHARGE: debit the reconciliation account (1580) with the gross; credit the customer region's
  sales account with the net and the output VAT account per rate with the VAT, as the order lines
  say. A REFUND is the same voucher reversed. A DEPOSIT (the merchant paid Nets): debit the
  reconciliation account, credit the bank. Per sale, or one summary voucher per day.
- Each payout: debit the bank with the payout amount, debit the fee account with the fees, credit
  the reconciliation account with the gross (charges − refunds + deposits). The reconciliation
  account therefore nets to zero for every settled payout; the residual is checked and shown.
- Fees carry no VAT: Nets reports ``feeTaxRate``/``feeTaxAmount`` as always 0 (card acquiring is a
  VAT-exempt financial service), so the fee is booked gross on 6040 with no VAT row.

Exactly once: every payout and payment action is stored once (unique by its Nets id per company)
and claimed in the same short transaction that creates its voucher (itself unique by company,
source system "netseasy" and the Nets id). A crash between two vouchers leaves the first claimed
and the second not; the next sync books only the second. Vouchers reach Fortnox through the normal
dispatcher, which posts each exactly once. No remote call happens inside a transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from bookkeeping.models import AuditEvent, Voucher, VoucherKind, VoucherRow
from bookkeeping.services.audit import Actor, actor_parts, audit_record
from bookkeeping.services.vouchers import voucher_queue
from integrations.models import Integration
from wording import Msg, set_text, update_values

from ..models import NetsPayment, NetsPaymentAction, NetsPayout, PayoutState
from .booking_rules import BANK, FEE, RECEIVABLE, Line, Planned, _netted, plan_action
from .settings import HOME_CURRENCY, SOURCE, TARGET, ZERO, NetsConfig


@dataclass
class SyncResult:
    company: str = ""
    from_date: str = ""
    to_date: str = ""
    payouts_seen: int = 0
    payouts_new: int = 0
    already_booked: int = 0  # read again, booked (or handled by hand) by an earlier sync
    actions_new: int = 0
    payments_fetched: int = 0
    vouchers_created: int = 0
    payouts_booked: int = 0
    waiting_currency: int = 0
    needs_attention: int = 0
    residual_errors: int = 0
    booking_paused: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.needs_attention and not self.residual_errors

    def as_dict(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def _create_voucher(*, company, kind: str, reference: str, day: dt.date, description: str, series: str,
                    lines: list[Line], label: str, actor: Actor) -> Voucher:
    """A voucher with its rows (must run inside the claiming transaction)."""
    user, _label = actor_parts(actor)
    debit_total = sum((line.amount for line in lines if line.amount > 0), ZERO)
    credit_total = sum((-line.amount for line in lines if line.amount < 0), ZERO)
    voucher = Voucher.objects.create(
        company=company, system=TARGET, kind=kind, source_system=SOURCE, source_reference=reference[:128],
        date=day, description=description[:200], series=series, currency=HOME_CURRENCY,
        extra={"source_label": label[:200]}, created_by=user, debit_total=debit_total, credit_total=credit_total)
    VoucherRow.objects.bulk_create([
        VoucherRow(voucher=voucher, position=position, account=line.account,
                   debit=line.amount if line.amount > 0 else ZERO, credit=-line.amount if line.amount < 0 else ZERO,
                   text=line.text[:100], **_source_fields(line))
        for position, line in enumerate(lines)
    ])
    return voucher


def _source_fields(line: Line) -> dict:
    """The mapping row the account came from, kept beside it (e.g. sales region "eu" → 3106)."""
    if line.source is None:
        return {}
    kind, key = line.source
    return {"source_kind": kind, "source_key": key, "source": {"keys": [[kind, key]], "via": "mapping"}}


def _book_group(*, integration: Integration, payout: NetsPayout, action_ids: list[int], plans: dict[int, Planned],
                kind: str, reference: str, day: dt.date, description: str, series: str, label: str,
                actor: Actor) -> Voucher | None:
    """Claim the actions and create their voucher in one transaction: booked at most once."""
    with transaction.atomic():
        claimed = list(NetsPaymentAction.objects.select_for_update()
                       .filter(pk__in=action_ids, booked_at__isnull=True).order_by("pk"))
        if not claimed:
            return None  # another run booked them
        lines = _netted([line for action in claimed for line in plans[action.pk].lines])
        voucher = None
        if lines:
            if Voucher.objects.filter(company=integration.company, source_system=SOURCE,
                                      source_reference=reference).exists():
                raise IntegrityError(f"voucher {reference} exists but its payment actions are not booked")
            voucher = _create_voucher(company=integration.company, kind=kind, reference=reference, day=day,
                                      description=description, series=series, lines=lines, label=label, actor=actor)
        now = timezone.now()
        for action in claimed:
            planned = plans[action.pk]
            action.voucher, action.booked_at = voucher, now
            action.country, action.region = planned.country, planned.region
            action.unmapped = []
            fields = set_text(action, "flag", Msg.join("\n", planned.flags)) + set_text(action, "problem", "")
            action.save(update_fields=["voucher", "booked_at", "country", "region", "unmapped",
                                       *dict.fromkeys(fields)])
        if voucher is not None:
            voucher_queue(voucher=voucher, actor=actor)
        return voucher


def payouts_book(*, integration: Integration, config: NetsConfig | None = None, actor: Actor = "worker",
                 result: SyncResult | None = None, progress=None) -> SyncResult:
    """Book every stored payout that is not booked yet (oldest first)."""
    result = result or SyncResult(company=integration.company.slug)
    config = config or NetsConfig.of(integration)
    pending = list(NetsPayout.objects.filter(integration=integration, date__gte=config.start_date).exclude(
        state__in=[PayoutState.BOOKED, PayoutState.HANDLED_MANUALLY]).order_by("date", "id"))
    for index, payout in enumerate(pending, start=1):
        if progress:
            progress(Msg("Booking payout %(n)s of %(total)s", n=index, total=len(pending)),
                     done=index - 1, total=len(pending))
        payout_book(integration=integration, payout=payout, config=config, actor=actor, result=result)
    return result


def _set_state(payout: NetsPayout, state: str, message: str = "", **fields) -> None:
    NetsPayout.objects.filter(pk=payout.pk).update(state=state, **update_values(payout, state_message=message),
                                                   **fields)
    payout.state = state
    for name, value in fields.items():
        setattr(payout, name, value)


def payout_check(payout: NetsPayout) -> list[str]:
    """Nets' own numbers must agree before anything of the payout is booked."""
    problems = []
    actions = list(payout.actions.all())
    if len(actions) != payout.number_of_actions:
        problems.append(Msg("Nets reports %(expected)s payment actions but %(got)s were received.", expected=payout.number_of_actions, got=len(actions)))
    if payout.amount != payout.gross - payout.fees:
        problems.append(Msg("The payout amount %(amount)s is not charged − refunded + deposited − fees "
                          "(%(computed)s).", amount=payout.amount, computed=payout.gross - payout.fees))
    sums = {"CHARGE": ZERO, "REFUND": ZERO, "DEPOSIT": ZERO}
    for action in actions:
        sums[action.action] = sums.get(action.action, ZERO) + action.amount
    for kind, total in (("CHARGE", payout.charged_amount), ("REFUND", payout.refunded_amount),
                        ("DEPOSIT", payout.deposited_amount)):
        if sums.get(kind, ZERO) != total:
            problems.append(Msg("The %(kind)s actions add up to %(sum)s but the payout says %(total)s.", kind=kind.lower(), sum=sums.get(kind, ZERO), total=total))
    return problems


def payout_book(*, integration: Integration, payout: NetsPayout, config: NetsConfig, actor: Actor = "worker",
                result: SyncResult | None = None) -> str:
    """Book one payout: its actions' vouchers, then the payout voucher. Returns the payout's new state."""
    result = result or SyncResult()
    company = integration.company
    if payout.currency != HOME_CURRENCY:
        if payout.state != PayoutState.WAITING_CURRENCY:
            _set_state(payout, PayoutState.WAITING_CURRENCY, Msg("This payout is in %(currency)s. Kontera books SEK payouts only: book it by hand at the day's rate "
                "(bank amount in SEK), then mark it “handled by hand”.", currency=payout.currency))
        return payout.state
    missing = config.missing()
    if missing:
        _set_state(payout, PayoutState.NEEDS_ATTENTION, Msg("Not booked: the Nets Easy settings have no %(accounts)s account. Save the settings (or map it) and "
            "the payout is booked by itself.", accounts=", ".join(kind for kind, _key in missing)))
        return payout.state
    problems = payout_check(payout)
    if problems:
        _set_state(payout, PayoutState.RESIDUAL_ERROR,
                   Msg("Nothing of this payout was booked: %(problems)s", problems=Msg.join(" ", problems)))
        return payout.state

    unbooked = list(payout.actions.filter(booked_at__isnull=True).order_by("timestamp", "id"))
    payments = {p.payment_id: p for p in NetsPayment.objects.filter(
        company=company, payment_id__in=[a.payment_id for a in unbooked if a.payment_id])}
    plans = {a.pk: plan_action(a, payments.get(a.payment_id), config) for a in unbooked}
    blocked = [(a, plans[a.pk].problem) for a in unbooked if plans[a.pk].problem]
    if blocked:
        for action, problem in blocked:
            NetsPaymentAction.objects.filter(pk=action.pk).update(
                **update_values(action, problem=problem), unmapped=[list(pair) for pair in plans[action.pk].unmapped])
        _set_state(payout, PayoutState.NEEDS_ATTENTION,
                   Msg("Not booked (the whole payout waits, so the reconciliation stays whole): %(problems)s",
                       problems=Msg.join(" ", list(dict.fromkeys(problem for _a, problem in blocked)))))
        return payout.state

    label = f"Nets Easy utbetalning {payout.reference or payout.nets_id}"
    for action in [a for a in unbooked if a.action == "DEPOSIT"]:
        voucher = _book_group(
            integration=integration, payout=payout, action_ids=[action.pk], plans=plans, kind=VoucherKind.PAYOUT,
            reference=action.nets_id, day=action.booking_date, series=config.payout_series, actor=actor,
            description=f"Nets Easy insättning {action.booking_date} (utbetalning {payout.reference})",
            label=f"Nets Easy {action.nets_id}")
        result.vouchers_created += voucher is not None
    sales = [a for a in unbooked if a.action != "DEPOSIT"]
    if config.mode == "per_day":
        by_day: OrderedDict[dt.date, list[NetsPaymentAction]] = OrderedDict()
        for action in sorted(sales, key=lambda a: (a.booking_date, a.pk)):
            by_day.setdefault(action.booking_date, []).append(action)
        for day, actions in by_day.items():
            charges = sum(1 for a in actions if a.action == "CHARGE")
            voucher = _book_group(
                integration=integration, payout=payout, action_ids=[a.pk for a in actions], plans=plans,
                kind=VoucherKind.SALE, reference=f"{payout.nets_id}:{day.isoformat()}", day=day,
                series=config.sales_series, actor=actor, label=label,
                description=f"Nets Easy försäljning {day} ({charges} köp, {len(actions) - charges} returer; "
                            f"utbetalning {payout.reference})")
            result.vouchers_created += voucher is not None
    else:
        for action in sales:
            what = "försäljning" if action.action == "CHARGE" else "återbetalning"
            payment = payments.get(action.payment_id)
            voucher = _book_group(
                integration=integration, payout=payout, action_ids=[action.pk], plans=plans, kind=VoucherKind.SALE,
                reference=action.nets_id, day=action.booking_date, series=config.sales_series, actor=actor,
                description=f"Nets Easy {what} {action.reference or action.payment_id} "
                            f"({payment.country if payment else ''})",
                label=f"Nets Easy {action.nets_id}")
            result.vouchers_created += voucher is not None

    state = _book_payout_voucher(integration=integration, payout=payout, config=config, actor=actor, result=result)
    return state


def _book_payout_voucher(*, integration: Integration, payout: NetsPayout, config: NetsConfig, actor: Actor,
                         result: SyncResult) -> str:
    from ..selectors import payout_reconciliation

    with transaction.atomic():
        locked = NetsPayout.objects.select_for_update().get(pk=payout.pk)
        if locked.voucher_id or locked.state in (PayoutState.BOOKED, PayoutState.HANDLED_MANUALLY):
            payout.refresh_from_db()
            return payout.state
        if locked.actions.filter(booked_at__isnull=True).exists():
            return locked.state  # an action is still unbooked (another run is at it)
        lines = [Line(config.bank_account, locked.amount, f"Utbetalning {locked.reference}"[:100], BANK),
                 Line(config.fee_account, locked.fees, "Nets Easy avgifter", FEE),
                 Line(config.receivable_account, -locked.gross, f"Utbetalning {locked.reference}"[:100], RECEIVABLE)]
        lines = _netted(lines)
        voucher = None
        if lines:
            voucher = _create_voucher(
                company=integration.company, kind=VoucherKind.PAYOUT, reference=locked.nets_id, day=locked.date,
                description=f"Nets Easy utbetalning {locked.date} ref {locked.reference}", series=config.payout_series,
                lines=lines, label=f"Nets Easy utbetalning {locked.nets_id}", actor=actor)
            result.vouchers_created += 1
        locked.voucher = voucher
        locked.booked_at = timezone.now()
        locked.booked_accounts = {"receivable": config.receivable_account, "bank": config.bank_account,
                                  "fee": config.fee_account}
        locked.state = PayoutState.BOOKED
        set_text(locked, "state_message", "")
        locked.save()
        reconciliation = payout_reconciliation(locked)
        locked.residual = reconciliation.residual
        if reconciliation.residual != ZERO:
            locked.state = PayoutState.RESIDUAL_ERROR
            set_text(locked, "state_message", Msg(
                "The reconciliation account does not net to zero for this payout: residual %(residual)s. Check the "
                "vouchers listed below.", residual=reconciliation.residual))
        locked.save(update_fields=["residual", "state", "state_message", "coded_texts", "updated_at"])
        flagged = locked.actions.exclude(flag="").count()
        if flagged and locked.state == PayoutState.BOOKED:
            fields = set_text(locked, "state_message", Msg(
                "%(n)s payment action(s) were booked as Nets reported them but are worth a look (see “check”).",
                n=flagged))
            locked.save(update_fields=[*fields, "updated_at"])
        if voucher is not None:
            voucher_queue(voucher=voucher, actor=actor)
        result.payouts_booked += 1
        audit_record(action="netseasy:payout_booked", integration=integration, actor=actor,
                     outcome=AuditEvent.Outcome.OK if locked.state == PayoutState.BOOKED else AuditEvent.Outcome.ERROR,
                     message=Msg("Payout %(ref)s of %(date)s booked: %(amount)s SEK, fees %(fees)s, residual "
                               "%(residual)s.", ref=locked.reference, date=locked.date, amount=locked.amount, fees=locked.fees, residual=locked.residual))
    payout.refresh_from_db()
    return payout.state


def payout_mark_handled(*, payout: NetsPayout, actor: Actor = None) -> bool:
    """Staff booked a payout (e.g. in EUR) by hand: Kontera stops waiting for it."""
    with transaction.atomic():
        locked = NetsPayout.objects.select_for_update().get(pk=payout.pk)
        if locked.state not in (PayoutState.WAITING_CURRENCY, PayoutState.NEEDS_ATTENTION):
            return False
        if locked.actions.filter(booked_at__isnull=False).exists():
            return False  # partly booked by Kontera: handled through the vouchers instead
        label = actor_parts(actor)[1]
        locked.state = PayoutState.HANDLED_MANUALLY
        message = Msg("Marked as booked by hand by %(who)s on %(when)s.", who=label, when=timezone.localdate())
        fields = set_text(locked, "state_message", message)
        locked.save(update_fields=["state", *fields, "updated_at"])
        audit_record(action="netseasy:payout_handled_by_hand", integration=locked.integration, actor=actor,
                     message=message)
    return True
