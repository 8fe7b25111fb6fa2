"""Expense documents (bilag): supplier invoices and receipts, their lines, and the workflow rules
that opt documents out of the sync to Dinero."""

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

ZERO = Decimal("0.00")
NOT_SYNCED_HELP = _("Kept in Kontera only: not synced to Dinero (Dinero's API has no departments or projects).")


class DocumentType(models.TextChoices):
    INVOICE = "invoice", _("Supplier invoice")
    RECEIPT = "receipt", _("Receipt")


class ExpenseDocument(models.Model):
    """One supplier invoice (credit purchase, paid later) or receipt (cash purchase, already paid)."""

    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="expense_documents",
                                verbose_name=_("company"))
    type = models.CharField(_("type"), max_length=10, choices=DocumentType.choices, default=DocumentType.INVOICE)
    reference = models.CharField(
        _("reference"), max_length=100,
        help_text=_("Unique per company; importing the same reference again updates this document."),
    )
    supplier_name = models.CharField(_("supplier"), max_length=200)
    supplier_vat = models.CharField(_("supplier VAT/CVR number"), max_length=30, blank=True)
    document_date = models.DateField(_("document date"))
    due_date = models.DateField(_("due date"), null=True, blank=True,
                                help_text=_("Invoices: becomes the payment date of the credit purchase in Dinero."))
    description = models.CharField(_("description"), max_length=200, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="DKK")
    amount_dkk = models.DecimalField(
        _("amount drawn in DKK"), max_digits=14, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(ZERO)],
        help_text=_("Foreign currency only: the DKK amount actually drawn from the bank. Dinero books DKK; "
                    "without it the document waits instead of guessing a rate."),
    )
    payment_method = models.ForeignKey(
        "bookkeeping.PaymentMethod", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("payment method"), help_text=_("Receipts: how it was paid (its counter account)."),
    )
    attachment = models.FileField(_("attached file"), upload_to="expenses/%Y/%m/", blank=True,
                                  help_text=_("PDF or image, at most 6 MB."))
    notes = models.TextField(_("notes"), blank=True)
    department = models.CharField(_("department"), max_length=100, blank=True, help_text=NOT_SYNCED_HELP)
    project = models.CharField(_("project"), max_length=100, blank=True, help_text=NOT_SYNCED_HELP)

    voucher = models.OneToOneField("bookkeeping.Voucher", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="expense_document", verbose_name=_("voucher"), editable=False)
    opted_out_by = models.ForeignKey("expense_documents.WorkflowRule", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="opted_out_documents", verbose_name=_("opted out by rule"),
                                     editable=False)
    used_error_account = models.BooleanField(
        _("error account used"), default=False, editable=False,
        help_text=_("A line had no category and was posted to the error account: recategorise it."),
    )
    needs_sync = models.BooleanField(_("needs sync"), default=True, editable=False,
                                     help_text=_("New or changed since it was last handed to the sync."))
    synced_at = models.DateTimeField(_("last synced"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "bookkeeping_expensedocument"  # the table it had in the core (moved, not copied)
        ordering = ["-document_date", "-id"]
        verbose_name = _("expense document")
        verbose_name_plural = _("expense documents")
        permissions = [("import_expensedocument", _("Can import expense documents")),
                       ("sync_expensedocument", _("Can sync expense documents to Dinero"))]
        constraints = [models.UniqueConstraint(fields=["company", "reference"], name="expense_reference_unique")]
        indexes = [models.Index(fields=["company", "needs_sync"], name="expense_needs_sync_idx")]

    def __str__(self) -> str:
        return f"{self.reference} {self.supplier_name}"

    @property
    def is_foreign_currency(self) -> bool:
        return (self.currency or "DKK").upper() != "DKK"

    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines.all()), ZERO)


class ExpenseLine(models.Model):
    document = models.ForeignKey(ExpenseDocument, on_delete=models.CASCADE, related_name="lines",
                                 verbose_name=_("document"))
    position = models.PositiveIntegerField(_("position"), default=0)
    amount = models.DecimalField(_("amount incl. VAT"), max_digits=14, decimal_places=2,
                                 validators=[MinValueValidator(Decimal("0.01"))])
    vat_code = models.CharField(_("VAT code"), max_length=20, blank=True, help_text=_("e.g. I25; empty for no VAT."))
    category = models.CharField(
        _("category"), max_length=100, blank=True, default="",
        help_text=_("The expense tool's category, by name or id (a Dinero account number passes as itself). The "
                    "account mappings translate it into a Dinero purchase account (drift) and VAT code. Empty: the "
                    "error account is used and the document flagged."),
    )
    text = models.CharField(_("text"), max_length=200, blank=True)

    class Meta:
        db_table = "bookkeeping_expenseline"  # the table it had in the core (moved, not copied)
        ordering = ["document", "position", "id"]
        verbose_name = _("expense line")
        verbose_name_plural = _("expense lines")

    def __str__(self) -> str:
        return f"{self.amount} {self.vat_code} {self.category or '–'}"

    def save(self, *args, **kwargs):
        # A category typed or imported as a number is the same source value as its text.
        self.category = " ".join(str(self.category if self.category is not None else "").split())
        super().save(*args, **kwargs)


class WorkflowAction(models.TextChoices):
    OPT_OUT_INVOICES = "opt_out_invoices", _("Opt out of sync for invoices matching …")
    OPT_OUT_RECEIPTS = "opt_out_receipts", _("Opt out of sync for receipts matching …")
    OPT_OUT_DOCUMENTS = "opt_out_documents", _("Opt out of sync for documents matching …")


class WorkflowRule(models.Model):
    """An automatic action ('Fravælg synkronisering af …'): every condition that is set must hold."""

    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="workflow_rules",
                                verbose_name=_("company"))
    name = models.CharField(_("name"), max_length=100)
    active = models.BooleanField(_("active"), default=True)
    action = models.CharField(_("action"), max_length=30, choices=WorkflowAction.choices,
                              default=WorkflowAction.OPT_OUT_DOCUMENTS)
    supplier_contains = models.CharField(_("supplier contains"), max_length=100, blank=True,
                                         help_text=_("Case-insensitive, in the supplier's name or VAT number."))
    category = models.PositiveIntegerField(_("category (account)"), null=True, blank=True,
                                           help_text=_("Matches when any line uses this account."))
    payment_method = models.ForeignKey("bookkeeping.PaymentMethod", null=True, blank=True, on_delete=models.CASCADE,
                                       related_name="+", verbose_name=_("payment method"))
    min_amount = models.DecimalField(_("amount from"), max_digits=14, decimal_places=2, null=True, blank=True)
    max_amount = models.DecimalField(
        _("amount up to"), max_digits=14, decimal_places=2, null=True, blank=True,
        help_text=_("The document total incl. VAT, in DKK (the DKK bank amount for foreign currency)."),
    )
    position = models.PositiveIntegerField(_("order"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "bookkeeping_workflowrule"  # the table it had in the core (moved, not copied)
        ordering = ["company", "position", "id"]
        verbose_name = _("workflow rule")
        verbose_name_plural = _("workflow rules")

    def __str__(self) -> str:
        return self.name
