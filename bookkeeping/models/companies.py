from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Country(models.TextChoices):
    SE = "SE", _("Sweden")
    DK = "DK", _("Denmark")


class Company(models.Model):
    """A client company: a property owner or association, a web shop, a Danish ApS …

    Staff users are linked to the companies they serve and see and act on those only.
    """

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    country = models.CharField(_("country"), max_length=2, choices=Country.choices, default=Country.SE)
    org_number = models.CharField(_("organisation number"), max_length=20, blank=True)
    base_currency = models.CharField(_("base currency"), max_length=3, default="SEK")
    default_series = models.CharField(
        _("default voucher series"), max_length=10, blank=True, default="A",
        help_text=_("Series used for journals that do not name one (Fortnox: must allow manual vouchers)."),
    )
    active = models.BooleanField(_("active"), default=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="kontera_companies",
        verbose_name=_("staff members"), help_text=_("Staff users who serve this company."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("company")
        verbose_name_plural = _("companies")

    def __str__(self) -> str:
        return self.name
