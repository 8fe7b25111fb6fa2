from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerJournalsConfig(AppConfig):
    name = "ledger_journals"
    verbose_name = _("Ledger journals (→ Fortnox)")
    default_auto_field = "django.db.models.BigAutoField"
