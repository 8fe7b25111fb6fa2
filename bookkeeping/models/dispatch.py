from django.db import models
from django.utils.translation import gettext_lazy as _


class DispatchLease(models.Model):
    """Who sends a company's vouchers now: one dispatcher at a time per company (the targets' rate
    limits are per company). The lease expires within seconds unless its holder renews it, so a
    killed dispatcher's companies are taken over quickly by any worker on any node."""

    company = models.OneToOneField("bookkeeping.Company", on_delete=models.CASCADE, primary_key=True,
                                   related_name="dispatch_lease", verbose_name=_("company"))
    holder = models.CharField(_("holder"), max_length=120, help_text=_("Node, process and dispatcher that holds it."))
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    claimed_at = models.DateTimeField(_("claimed at"))

    class Meta:
        verbose_name = _("dispatch lease")
        verbose_name_plural = _("dispatch leases")
        default_permissions = ()  # technical rows of the workers, never edited by anyone

    def __str__(self) -> str:
        return f"{self.company_id} · {self.holder}"
