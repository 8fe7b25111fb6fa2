"""The voucher: the queued unit of work, with its rows, state and where it landed in the target."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from integrations.registry import TARGET_CHOICES

ZERO = Decimal("0.00")


class TargetSystem(models.TextChoices):
    FORTNOX = "fortnox", "Fortnox"
    DINERO = "dinero", "Dinero"


class VoucherKind(models.TextChoices):
    SUPPLIER_INVOICE = "supplier_invoice", _("Supplier invoice")
    RECEIPT = "receipt", _("Receipt")
    JOURNAL = "journal", _("Journal")
    SALE = "sale", _("Sale")
    PAYOUT = "payout", _("Payout")
    TEST = "test", _("Test voucher")


class VoucherState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    POSTED = "posted", _("Posted")
    FAILED = "failed", _("Failed")
    NEEDS_UPDATE = "needs_update", _("Needs update")
    OPTED_OUT = "opted_out", _("Opted out")
    AWAITING_AUTHORISATION = "awaiting_authorisation", _("Awaiting authorisation")
    HANDLED_OUTSIDE = "handled_outside", _("Handled outside Kontera")
    # Staff asked to send it, but a source value has no mapping yet: it goes on by itself once mapped.
    AWAITING_MAPPING = "awaiting_mapping", _("Waiting for a mapping")


class Voucher(models.Model):
    company = models.ForeignKey("bookkeeping.Company", on_delete=models.PROTECT, related_name="vouchers",
                                verbose_name=_("company"))
    system = models.CharField(_("target system"), max_length=20, choices=TARGET_CHOICES)
    kind = models.CharField(_("kind"), max_length=20, choices=VoucherKind.choices)
    source_system = models.CharField(_("source system"), max_length=30)
    source_reference = models.CharField(
        _("source reference"), max_length=128,
        help_text=_("Unique per company and source: what makes sending idempotent."),
    )
    date = models.DateField(_("date"))
    description = models.CharField(_("description"), max_length=200)
    series = models.CharField(_("series"), max_length=10, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="SEK")
    extra = models.JSONField(
        _("target details"), default=dict, blank=True,
        help_text=_("What only one target needs (Dinero: purchase type, supplier, payment account, attachment)."),
    )

    state = models.CharField(_("state"), max_length=30, choices=VoucherState.choices, default=VoucherState.DRAFT,
                             editable=False)
    attempts = models.PositiveIntegerField(_("attempts"), default=0, editable=False)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    last_error_code = models.CharField(_("last error code"), max_length=40, blank=True, editable=False)
    # Set when a send starts and cleared when its outcome is recorded: if it is still set at the
    # next attempt, the previous one may have landed, so we look it up before posting again.
    pending_since = models.DateTimeField(_("send started"), null=True, blank=True, editable=False)

    remote_id = models.CharField(_("remote id"), max_length=100, blank=True, editable=False)
    remote_series = models.CharField(_("remote series"), max_length=10, blank=True, editable=False)
    remote_number = models.CharField(_("remote number"), max_length=20, blank=True, editable=False)
    remote_year = models.CharField(_("remote financial year"), max_length=20, blank=True, editable=False)
    remote_timestamp = models.CharField(_("remote timestamp"), max_length=40, blank=True, editable=False)
    remote_status = models.CharField(_("remote status"), max_length=30, blank=True, editable=False)
    posted_at = models.DateTimeField(_("posted at"), null=True, blank=True, editable=False)
    posted_fingerprint = models.CharField(_("posted fingerprint"), max_length=64, blank=True, editable=False)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"), editable=False)
    # The staff member who last asked for it to be sent: the worker acts for them (audit trail).
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", verbose_name=_("sent on behalf of"), editable=False)
    # When it last entered the queue (retries keep it): "queued longer than expected" on the overview.
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True, editable=False)
    # The pre-flight result as last checked (at import, on changes, when its cause is fixed):
    # None = not checked yet; the problems as [{"code": …, "text": coded text}].
    preflight_ok = models.BooleanField(_("passes the pre-flight check"), null=True, blank=True, editable=False)
    preflight_problems = models.JSONField(_("pre-flight problems"), default=list, blank=True, editable=False)
    coded_texts = models.JSONField(default=dict, blank=True, editable=False)
    # The sums of the rows, written with them (services/voucher_totals.py): the lists show and sort by
    # them without joining every row (issue 15: 24 s per page at 1,000,000 vouchers).
    debit_total = models.DecimalField(_("debit total"), max_digits=16, decimal_places=2, default=ZERO,
                                      editable=False)
    credit_total = models.DecimalField(_("credit total"), max_digits=16, decimal_places=2, default=ZERO,
                                       editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        # Named permissions for what staff do with vouchers beyond add/change/delete/view (held by the
        # default groups, see bookkeeping/migrations/0008_named_permissions.py).
        permissions = [
            ("send_voucher", _("Can send vouchers to the target system")),
            ("reset_voucher", _("Can put vouchers back to draft")),
            ("import_journals", _("Can import journals (SIE 4, CSV)")),
            ("export_sie", _("Can export posted vouchers as SIE 4")),
            ("handle_outside_voucher", _("Can mark vouchers as handled outside Kontera")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "source_system", "source_reference"], name="voucher_source_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "system", "next_attempt_at"], name="voucher_dispatch_idx"),
            # the overview and the error inbox: grouped counts per company and state, posted per day
            models.Index(fields=["state", "company"], name="voucher_state_company_idx"),
            models.Index(fields=["company", "posted_at"], name="voucher_company_posted_idx"),
            # The admin's list at a million vouchers: its ordering (newest first), each filter with that
            # ordering, the sortable columns and the exact-match search fields (the trigram indexes for
            # word search are PostgreSQL's own: migration 0010).
            models.Index(fields=["date", "id"], name="voucher_date_idx"),
            models.Index(fields=["company", "date", "id"], name="voucher_company_date_idx"),
            models.Index(fields=["company", "state", "date"], name="voucher_company_state_idx"),
            models.Index(fields=["state", "date"], name="voucher_state_date_idx"),
            models.Index(fields=["kind", "date"], name="voucher_kind_date_idx"),
            models.Index(fields=["system", "date"], name="voucher_system_date_idx"),
            models.Index(fields=["source_system", "date"], name="voucher_source_date_idx"),
            models.Index(fields=["source_reference"], name="voucher_reference_idx"),
            models.Index(fields=["description"], name="voucher_description_idx"),
            models.Index(fields=["debit_total"], name="voucher_debit_total_idx"),
            models.Index(Upper("remote_number"), name="voucher_remote_number_idx"),
            models.Index(Upper("remote_id"), name="voucher_remote_id_idx"),
        ]

    coded_text_fields = ("last_error",)

    def __str__(self) -> str:
        return f"{self.source_reference} {self.description}"

    @property
    def reference(self) -> str:
        """Our reference in the target: stable, unique, searchable."""
        return f"KONTERA-{self.pk}"

    @property
    def remote_label(self) -> str:
        if self.remote_series or self.remote_number:
            return f"{self.remote_series}{self.remote_number}".strip() + (
                f" ({self.remote_year})" if self.remote_year else ""
            )
        return self.remote_id

    def totals(self) -> tuple[Decimal, Decimal]:
        """Summed from the rows (what is sent); ``debit_total``/``credit_total`` are the stored copy for lists."""
        debit = sum((r.debit for r in self.rows.all()), ZERO)
        credit = sum((r.credit for r in self.rows.all()), ZERO)
        return debit, credit


class VoucherRow(models.Model):
    voucher = models.ForeignKey(Voucher, on_delete=models.CASCADE, related_name="rows", verbose_name=_("voucher"))
    position = models.PositiveIntegerField(_("position"), default=0)
    # Text, because source files may carry placeholders such as "FEL": imported as they are, then
    # refused by the pre-flight check until corrected.
    account = models.CharField(_("account"), max_length=10)
    debit = models.DecimalField(_("debit"), max_digits=14, decimal_places=2, default=ZERO,
                                validators=[MinValueValidator(ZERO)])
    credit = models.DecimalField(_("credit"), max_digits=14, decimal_places=2, default=ZERO,
                                 validators=[MinValueValidator(ZERO)])
    cost_centre = models.CharField(_("cost centre"), max_length=6, blank=True)
    project = models.CharField(_("project"), max_length=20, blank=True)
    text = models.CharField(_("text"), max_length=100, blank=True)
    vat_code = models.CharField(_("VAT code"), max_length=20, blank=True)
    # What the source said, beside what is posted: the value that decided the account (e.g. the
    # category "Hyra bostad" → 3011) and everything needed to resolve the row again when a
    # mapping changes before the voucher is sent (see bookkeeping.selectors.mappings.RowSource).
    source_kind = models.CharField(_("source kind"), max_length=30, blank=True)
    source_key = models.CharField(_("source value"), max_length=100, blank=True)
    source = models.JSONField(_("source values"), default=dict, blank=True)
    awaits_mapping = models.BooleanField(_("waits for a mapping"), default=False)

    class Meta:
        ordering = ["voucher", "position", "id"]
        verbose_name = _("voucher row")
        verbose_name_plural = _("voucher rows")

    def __str__(self) -> str:
        return f"{self.account} D {self.debit} C {self.credit}"

    @property
    def unmapped_keys(self) -> list[tuple[str, str]]:
        """The (kind, key) pairs of this row that have no mapping yet."""
        return [tuple(pair) for pair in (self.source or {}).get("unmapped", [])]
