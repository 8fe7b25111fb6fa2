from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerJournalsConfig(AppConfig):
    name = "ledger_journals"
    verbose_name = _("Ledger journals (→ Fortnox)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from bookkeeping.models import MappingKind as K
        from bookkeeping.selectors.mappings import MappedFlow, register_mapped_flow

        from .services.journal_mapping import SOURCE_SYSTEMS, SYSTEM, journals_reevaluate

        register_mapped_flow(MappedFlow(
            key="ledger_journals", label=_("Ledger journals → Fortnox"), system=SYSTEM,
            kinds=(K.LEDGER_ACCOUNT, K.LEDGER_CATEGORY, K.ADDON_CODE, K.PROPERTY, K.OWNER),
            source_systems=SOURCE_SYSTEMS, reevaluate=journals_reevaluate))
