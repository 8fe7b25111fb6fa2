"""What a source key means in the books, and the payment methods receipts are paid with.

A mapping row says what one value of a source system (a category name, an add-on code, the
source's own account number, a property, an owner, a sales region …) means in one target
system's books: an account, and optionally a cost centre, project, VAT code or voucher series.
How rows are chosen (a specific key over the kind's default ``*`` …) is written down once, in
``bookkeeping.selectors.mappings``.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from integrations.registry import TARGET_CHOICES

# The key of a kind's default row: used for a source value that has no row of its own.
DEFAULT_KEY = "*"


class MappingKind(models.TextChoices):
    # Expense documents → Dinero: the expense tool's category (name or id) → purchase account and VAT code.
    EXPENSE_CATEGORY = "expense_category", _("Expense category")
    # Property-ledger journals → Fortnox (the guide's checklist: Kategorier, Tilläggs-koder,
    # Bokföringskonton, Kostnadsställen, Bokföringsserier per ägare).
    LEDGER_CATEGORY = "ledger_category", _("Ledger category")
    ADDON_CODE = "addon_code", _("Add-on code")
    LEDGER_ACCOUNT = "ledger_account", _("Source account")
    PROPERTY = "property", _("Property → cost centre")
    OWNER = "owner", _("Owner → voucher series")
    # Card payments (Nets Easy) → Fortnox: the settings page edits exactly these rows.
    SALES_REGION = "sales_region", _("Sales region")
    OUTPUT_VAT = "output_vat", _("Output VAT")
    FEE = "fee", _("Fee")
    RECEIVABLE = "receivable", _("Receivable / reconciliation")
    BANK = "bank", _("Bank")
    OTHER = "other", _("Other")


# What a row of each kind must give: an account, except a property (a cost centre) and an owner (a series).
KINDS_WITHOUT_ACCOUNT = frozenset({MappingKind.PROPERTY, MappingKind.OWNER})


class AccountMapping(models.Model):
    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="account_mappings",
                                verbose_name=_("company"))
    system = models.CharField(_("target system"), max_length=20, choices=TARGET_CHOICES)
    kind = models.CharField(_("kind"), max_length=30, choices=MappingKind.choices)
    key = models.CharField(_("source key"), max_length=100, help_text=_("The value as the source system names it."))
    account_number = models.PositiveIntegerField(
        _("account number"), null=True, blank=True,
        help_text=_("The target account. Empty only for a property (it gives a cost centre) or an owner (a series)."),
    )
    cost_centre = models.CharField(_("cost centre"), max_length=6, blank=True)
    project = models.CharField(_("project"), max_length=20, blank=True)
    vat_code = models.CharField(_("VAT code"), max_length=20, blank=True)
    series = models.CharField(_("voucher series"), max_length=10, blank=True,
                              help_text=_("Owners only: the Fortnox voucher series their journals go to."))
    note = models.CharField(_("note"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["company", "system", "kind", "key"]
        verbose_name = _("account mapping")
        verbose_name_plural = _("account mappings")
        permissions = [("import_accountmapping", _("Can import account mappings"))]
        constraints = [
            models.UniqueConstraint(fields=["company", "system", "kind", "key"], name="mapping_key_unique"),
        ]

    def __str__(self) -> str:
        target = self.account_number or self.cost_centre or self.series or "–"
        return f"{self.get_kind_display()} {self.key} → {target}"


class PaymentMethodList(models.Model):
    """A named list of payment methods receipts can be paid with ('Kontant', 'Firmakort' …)."""

    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="payment_method_lists",
                                verbose_name=_("company"))
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["company", "name"]
        verbose_name = _("payment-method list")
        verbose_name_plural = _("payment-method lists")
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="payment_method_list_unique")]

    def __str__(self) -> str:
        return self.name


class PaymentMethod(models.Model):
    payment_list = models.ForeignKey(PaymentMethodList, on_delete=models.CASCADE, related_name="methods",
                                     verbose_name=_("list"))
    name = models.CharField(_("name"), max_length=100)
    account_number = models.PositiveIntegerField(
        _("counter account"), help_text=_("The account the payment is drawn from (Dinero: a deposit account).")
    )

    class Meta:
        ordering = ["payment_list", "name"]
        verbose_name = _("payment method")
        verbose_name_plural = _("payment methods")
        permissions = [("import_paymentmethod", _("Can import payment methods"))]
        constraints = [models.UniqueConstraint(fields=["payment_list", "name"], name="payment_method_unique_in_list")]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_number})"
