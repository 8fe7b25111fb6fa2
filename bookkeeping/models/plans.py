"""The account plan a company has in each target system, as last imported (or entered by hand)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from integrations.registry import TARGET_CHOICES


class AccountKind(models.TextChoices):
    PROFIT_AND_LOSS = "pl", _("Profit and loss")
    BALANCE = "balance", _("Balance sheet")


class CostCentreSetting(models.TextChoices):
    ALLOWED = "allowed", _("Allowed")
    MANDATORY = "mandatory", _("Mandatory")
    NOT_ALLOWED = "not_allowed", _("Not allowed")


class Origin(models.TextChoices):
    IMPORTED = "imported", _("Imported")
    MANUAL = "manual", _("Entered by hand")


class AccountPlan(models.Model):
    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="account_plans",
                                verbose_name=_("company"))
    system = models.CharField(_("target system"), max_length=20, choices=TARGET_CHOICES)
    locked_until = models.DateField(
        _("locked until"), null=True, blank=True,
        help_text=_("Nothing dated on or before this day can be posted (the target's locked period)."),
    )
    imported_at = models.DateTimeField(_("imported at"), null=True, blank=True)
    company_info = models.JSONField(_("company information"), default=dict, blank=True)

    class Meta:
        verbose_name = _("account plan")
        verbose_name_plural = _("account plans")
        constraints = [models.UniqueConstraint(fields=["company", "system"], name="one_plan_per_company_system")]

    def __str__(self) -> str:
        return f"{self.company} · {self.get_system_display()}"


class Account(models.Model):
    plan = models.ForeignKey(AccountPlan, on_delete=models.CASCADE, related_name="accounts", verbose_name=_("account plan"))
    number = models.PositiveIntegerField(_("account number"))
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=AccountKind.choices, default=AccountKind.PROFIT_AND_LOSS)
    vat_code = models.CharField(_("VAT code"), max_length=20, blank=True)
    active = models.BooleanField(_("active"), default=True)
    cost_centre_setting = models.CharField(
        _("cost centre"), max_length=12, choices=CostCentreSetting.choices, default=CostCentreSetting.ALLOWED
    )
    is_deposit = models.BooleanField(
        _("payment account"), default=False,
        help_text=_("Can pay a purchase (Dinero: a deposit account, 'beholdning')."),
    )
    origin = models.CharField(_("origin"), max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    imported_at = models.DateTimeField(_("imported at"), null=True, blank=True)

    class Meta:
        ordering = ["plan", "number"]
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [models.UniqueConstraint(fields=["plan", "number"], name="account_number_unique_in_plan")]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class CostCentre(models.Model):
    plan = models.ForeignKey(AccountPlan, on_delete=models.CASCADE, related_name="cost_centres",
                             verbose_name=_("account plan"))
    code = models.CharField(_("code"), max_length=6)
    name = models.CharField(_("name"), max_length=200)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["plan", "code"]
        verbose_name = _("cost centre")
        verbose_name_plural = _("cost centres")
        constraints = [models.UniqueConstraint(fields=["plan", "code"], name="cost_centre_code_unique_in_plan")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class VoucherSeries(models.Model):
    plan = models.ForeignKey(AccountPlan, on_delete=models.CASCADE, related_name="series", verbose_name=_("account plan"))
    code = models.CharField(_("code"), max_length=10)
    description = models.CharField(_("description"), max_length=200, blank=True)
    manual = models.BooleanField(_("allows manual vouchers"), default=True)

    class Meta:
        ordering = ["plan", "code"]
        verbose_name = _("voucher series")
        verbose_name_plural = _("voucher series")
        constraints = [models.UniqueConstraint(fields=["plan", "code"], name="series_code_unique_in_plan")]

    def __str__(self) -> str:
        return f"{self.code} {self.description}".strip()


class FinancialYear(models.Model):
    plan = models.ForeignKey(AccountPlan, on_delete=models.CASCADE, related_name="financial_years",
                             verbose_name=_("account plan"))
    start = models.DateField(_("from"))
    end = models.DateField(_("to"))
    remote_id = models.CharField(_("remote id"), max_length=40, blank=True)

    class Meta:
        ordering = ["plan", "-start"]
        verbose_name = _("financial year")
        verbose_name_plural = _("financial years")

    def __str__(self) -> str:
        return f"{self.start} – {self.end}"


class VatCode(models.Model):
    plan = models.ForeignKey(AccountPlan, on_delete=models.CASCADE, related_name="vat_codes", verbose_name=_("account plan"))
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=200, blank=True)
    rate = models.DecimalField(_("rate (%)"), max_digits=6, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["plan", "code"]
        verbose_name = _("VAT code")
        verbose_name_plural = _("VAT codes")
        constraints = [models.UniqueConstraint(fields=["plan", "code"], name="vat_code_unique_in_plan")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()
