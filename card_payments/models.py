"""What Kontera knows of a merchant's Nets Easy payouts, and what it booked for them.

Each payout and each payment action is stored once per company (unique by its Nets id) and is
booked at most once: the voucher for it is created in the same transaction that marks it booked,
and that voucher's own unique (company, source system, source reference) stops a second one.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from bookkeeping.rules import REGION_CHOICES

ZERO = Decimal("0.00")


def _money(verbose_name):
    return models.DecimalField(verbose_name, max_digits=14, decimal_places=2, default=ZERO)


class PayoutState(models.TextChoices):
    NEW = "new", _("New – not booked yet")
    BOOKED = "booked", _("Booked")
    WAITING_CURRENCY = "waiting_currency", _("Waiting – not in SEK, book by hand")
    NEEDS_ATTENTION = "needs_attention", _("Needs attention – not booked")
    RESIDUAL_ERROR = "residual_error", _("Reconciliation error – residual not zero")
    HANDLED_MANUALLY = "handled_manually", _("Handled by hand")


class ActionKind(models.TextChoices):
    CHARGE = "CHARGE", _("Charge")
    REFUND = "REFUND", _("Refund")
    DEPOSIT = "DEPOSIT", _("Deposit")


class NetsPayout(models.Model):
    """One payout from Nets to the merchant's bank account ('utbetalning')."""

    integration = models.ForeignKey("integrations.Integration", on_delete=models.CASCADE, related_name="nets_payouts",
                                    verbose_name=_("integration"))
    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="nets_payouts",
                                verbose_name=_("company"))
    nets_id = models.CharField(_("Nets payout id"), max_length=64)
    reference = models.CharField(_("bank reference"), max_length=64, blank=True,
                                 help_text=_("The reference on the bank statement."))
    date = models.DateField(_("payout date"))
    currency = models.CharField(_("currency"), max_length=3)
    amount = _money(_("payout amount"))
    charged_amount = _money(_("charged"))
    refunded_amount = _money(_("refunded"))
    deposited_amount = _money(_("deposited"))
    fees = _money(_("fees"))
    number_of_actions = models.PositiveIntegerField(_("payment actions"), default=0)
    tax_details = models.JSONField(_("VAT per rate (Nets)"), default=dict, blank=True)

    state = models.CharField(_("state"), max_length=20, choices=PayoutState.choices, default=PayoutState.NEW)
    state_message = models.TextField(_("why"), blank=True)
    coded_texts = models.JSONField(default=dict, blank=True, editable=False)
    voucher = models.ForeignKey("bookkeeping.Voucher", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("payout voucher"))
    booked_accounts = models.JSONField(_("accounts used"), default=dict, blank=True,
                                       help_text=_("Reconciliation, bank and fee accounts when it was booked."))
    residual = models.DecimalField(_("residual"), max_digits=14, decimal_places=2, null=True, blank=True,
                                   help_text=_("Expected payout minus what is booked; must be 0.00."))
    booked_at = models.DateTimeField(_("booked at"), null=True, blank=True)
    fetched_at = models.DateTimeField(_("fetched at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "integrations_netspayout"  # the table it had in integrations (moved, not copied)
        ordering = ["-date", "-id"]
        verbose_name = _("Nets Easy payout")
        verbose_name_plural = _("Nets Easy payouts")
        permissions = [
            ("configure_netseasy", _("Can change the Nets Easy settings and secret key")),
            ("confirm_netseasy", _("Can start automatic booking of Nets Easy payouts (OK)")),
            ("sync_netseasy", _("Can sync Nets Easy payouts")),
            ("mark_payout_handled", _("Can mark payouts as booked by hand")),
        ]
        constraints = [models.UniqueConstraint(fields=["company", "nets_id"], name="nets_payout_once")]

    coded_text_fields = ("state_message",)

    def __str__(self) -> str:
        return f"{self.date} {self.amount} {self.currency} ({self.reference or self.nets_id[:8]})"

    @property
    def gross(self) -> Decimal:
        """What passes through the reconciliation account: charges − refunds + deposits."""
        return self.charged_amount - self.refunded_amount + self.deposited_amount


class NetsPaymentAction(models.Model):
    """One charge, refund or deposit inside a payout."""

    payout = models.ForeignKey(NetsPayout, on_delete=models.CASCADE, related_name="actions", verbose_name=_("payout"))
    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("company"))
    nets_id = models.CharField(_("Nets id"), max_length=64)
    payment_id = models.CharField(_("payment id"), max_length=64, blank=True)
    action = models.CharField(_("action"), max_length=10, choices=ActionKind.choices)
    amount = _money(_("amount"))
    vat_amount = _money(_("VAT"))
    fee = _money(_("fee"))
    currency = models.CharField(_("currency"), max_length=3)
    timestamp = models.DateTimeField(_("time"), null=True, blank=True)
    booking_date = models.DateField(_("booking date"))
    reference = models.CharField(_("order reference"), max_length=128, blank=True)
    payment_method = models.CharField(_("payment method"), max_length=40, blank=True)
    tax_details = models.JSONField(_("VAT per rate (Nets)"), default=dict, blank=True)

    # Filled when it is booked: what the booking was based on.
    country = models.CharField(_("customer country"), max_length=3, blank=True)
    region = models.CharField(_("sales region"), max_length=10, blank=True, choices=REGION_CHOICES)
    flag = models.TextField(_("check"), blank=True,
                            help_text=_("Booked as Nets reported it, but worth a look (e.g. VAT that does not "
                                        "match the customer's region)."))
    problem = models.TextField(_("why not booked"), blank=True)
    coded_texts = models.JSONField(default=dict, blank=True, editable=False)
    unmapped = models.JSONField(_("waits for mappings"), default=list, blank=True,
                                help_text=_("The mapping rows (kind, key) it waits for, e.g. output VAT 6."))
    voucher = models.ForeignKey("bookkeeping.Voucher", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("voucher"))
    booked_at = models.DateTimeField(_("booked at"), null=True, blank=True)

    class Meta:
        db_table = "integrations_netspaymentaction"  # the table it had in integrations (moved, not copied)
        ordering = ["payout", "timestamp", "id"]
        verbose_name = _("Nets Easy payment action")
        verbose_name_plural = _("Nets Easy payment actions")
        constraints = [models.UniqueConstraint(fields=["company", "nets_id"], name="nets_action_once")]

    coded_text_fields = ("flag", "problem")

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.amount} {self.currency} {self.reference}".strip()


class NetsPayment(models.Model):
    """A cached ``GET /v1/payments/{id}``: only what booking needs (country, company flag, order lines)."""

    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("company"))
    payment_id = models.CharField(_("payment id"), max_length=64)
    country = models.CharField(_("customer country"), max_length=3, blank=True)
    is_company = models.BooleanField(_("company customer"), default=False)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    reference = models.CharField(_("order reference"), max_length=128, blank=True)
    charges = models.JSONField(_("order lines per charge"), default=dict, blank=True)
    refunds = models.JSONField(_("order lines per refund"), default=dict, blank=True)
    fetched_at = models.DateTimeField(_("fetched at"), auto_now=True)

    class Meta:
        db_table = "integrations_netspayment"  # the table it had in integrations (moved, not copied)
        verbose_name = _("Nets Easy payment")
        verbose_name_plural = _("Nets Easy payments")
        constraints = [models.UniqueConstraint(fields=["company", "payment_id"], name="nets_payment_cached_once")]

    def __str__(self) -> str:
        return f"{self.payment_id} {self.country}"


class ProblemReport(models.Model):
    """'Vill du felanmäla något?': what staff wrote, with diagnostics that never hold a secret."""

    integration = models.ForeignKey("integrations.Integration", on_delete=models.CASCADE,
                                    related_name="problem_reports", verbose_name=_("integration"))
    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("company"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", verbose_name=_("reported by"))
    text = models.TextField(_("what happened"))
    diagnostics = models.JSONField(_("diagnostics"), default=dict, blank=True)
    emailed_to = models.CharField(_("e-mailed to"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("reported at"), auto_now_add=True)

    class Meta:
        db_table = "integrations_problemreport"  # the table it had in integrations (moved, not copied)
        ordering = ["-created_at", "-id"]
        verbose_name = _("problem report")
        verbose_name_plural = _("problem reports")
        permissions = [("report_problem", _("Can report a problem to support"))]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.text[:40]}"
