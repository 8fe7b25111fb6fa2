"""Reads for the Nets Easy flow: the integration of a company, and the reconciliation of a payout."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet

from bookkeeping.models import DEFAULT_KEY, Voucher, VoucherRow, VoucherState
from bookkeeping.selectors.mappings import Gap, WaitingItem, mapping_snapshot, normalise_key
from integrations.models import Integration

from .models import NetsPayout

ZERO = Decimal("0.00")


def nets_integration(company) -> Integration | None:
    return Integration.objects.filter(company=company, system="netseasy").select_related("company").first()


def nets_integrations_active() -> QuerySet[Integration]:
    return Integration.objects.filter(system="netseasy", status="active").select_related("company")


@dataclass(frozen=True)
class Reconciliation:
    """One payout, reconciled.

    ``expected``  the payout amount Nets reports (what reaches the bank);
    ``gross``     what our sales, refund and deposit vouchers put on the reconciliation account;
    ``fees``      the fees: as booked on the payout voucher, or as Nets reports them before that;
    ``booked``    gross − fees: what our books say Nets owed for this payout;
    ``residual``  expected − booked, which is the reconciliation account's balance for this payout
                  with the sign turned. It must be 0.00; anything else is an error state.
    """

    expected: Decimal
    gross: Decimal
    fees: Decimal
    booked: Decimal
    residual: Decimal
    cleared: Decimal  # what the payout voucher takes off the reconciliation account
    account_balance: Decimal  # the reconciliation account over all this payout's vouchers
    vouchers: tuple[Voucher, ...]
    posted: int
    failed: int

    @property
    def balanced(self) -> bool:
        return self.residual == ZERO


def payout_vouchers(payout: NetsPayout) -> list[Voucher]:
    ids = set(payout.actions.exclude(voucher__isnull=True).values_list("voucher_id", flat=True))
    if payout.voucher_id:
        ids.add(payout.voucher_id)
    return list(Voucher.objects.filter(pk__in=ids).order_by("date", "id"))


def _net(voucher_ids, account: int) -> Decimal:
    total = ZERO
    for debit, credit in VoucherRow.objects.filter(voucher_id__in=voucher_ids, account=account).values_list(
            "debit", "credit"):
        total += debit - credit
    return total


def payout_reconciliation(payout: NetsPayout) -> Reconciliation | None:
    """Expected vs booked for a payout Kontera booked (None before anything is booked)."""
    accounts = payout.booked_accounts or {}
    if not accounts and not payout.actions.exclude(voucher__isnull=True).exists():
        return None
    if not accounts:
        snapshot = mapping_snapshot(payout.company, "fortnox")
        accounts = {"receivable": snapshot.account_for("receivable"), "fee": snapshot.account_for("fee")}
    vouchers = payout_vouchers(payout)
    action_voucher_ids = [v.pk for v in vouchers if v.pk != payout.voucher_id]
    receivable = int(accounts["receivable"])
    gross = _net(action_voucher_ids, receivable)
    if payout.voucher_id:
        fees = _net([payout.voucher_id], int(accounts["fee"]))
        cleared = -_net([payout.voucher_id], receivable)
    else:
        fees, cleared = payout.fees, ZERO
    booked = gross - fees
    residual = payout.amount - booked
    return Reconciliation(
        expected=payout.amount, gross=gross, fees=fees, booked=booked, residual=residual, cleared=cleared,
        account_balance=gross - cleared, vouchers=tuple(vouchers),
        posted=sum(1 for v in vouchers if v.state == VoucherState.POSTED),
        failed=sum(1 for v in vouchers if v.state == VoucherState.FAILED),
    )


NEEDS_STAFF = ("waiting_currency", "needs_attention", "residual_error")


def payouts_needing_staff(company_ids=None) -> dict[int, int]:
    """Per company: payouts a person must handle — not in SEK, not bookable, or a residual ≠ 0.00."""
    payouts = NetsPayout.objects.filter(state__in=NEEDS_STAFF)
    if company_ids is not None:
        payouts = payouts.filter(company_id__in=company_ids)
    return dict(payouts.values_list("company_id").annotate(n=Count("id")).values_list("company_id", "n").order_by())


def nets_mapping_gaps(company) -> list[Gap]:
    """What of the card-payment flow waits for a mapping: payment actions whose region or VAT rate has no
    account, and payouts while the reconciliation, bank or fee account is missing."""
    gaps: dict[tuple[str, str], Gap] = {}

    def add(kind: str, key: str, payout: NetsPayout, count: int = 1) -> None:
        gap = gaps.setdefault((kind, normalise_key(key)), Gap(system="fortnox", kind=kind, key=key))
        gap.occurrences += count
        if not any(item.pk == payout.pk for item in gap.items):
            gap.items.append(WaitingItem("payout", payout.pk, str(payout), payout.get_state_display()))

    from .models import NetsPaymentAction, PayoutState

    actions = (NetsPaymentAction.objects.filter(company=company, booked_at__isnull=True).exclude(unmapped=[])
               .select_related("payout").order_by("payout__date", "id"))
    for action in actions:
        for kind, key in action.unmapped:
            add(kind, key, action.payout)
    integration = nets_integration(company)
    if integration is not None:
        snapshot = mapping_snapshot(company, "fortnox")
        missing = [kind for kind in ("receivable", "bank", "fee") if snapshot.account_for(kind) is None]
        if missing:
            for payout in NetsPayout.objects.filter(integration=integration, state=PayoutState.NEEDS_ATTENTION):
                for kind in missing:
                    add(kind, DEFAULT_KEY, payout)
    return list(gaps.values())
