from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _item_url(item) -> str:
    from django.urls import reverse

    if item.kind == "payout":
        return reverse("admin:card_payments_netspayout_change", args=[item.pk])
    return ""


def _reevaluate(*, company, actor="worker") -> dict:
    """After a mapping change: payouts that waited for an account are booked now (the rest stays as booked)."""
    from integrations.models import IntegrationStatus

    from .selectors import nets_integration
    from .services.payout_booking import payouts_book

    integration = nets_integration(company)
    if integration is None or integration.status != IntegrationStatus.ACTIVE:
        return {}
    return payouts_book(integration=integration, actor=actor).as_dict()


class CardPaymentsConfig(AppConfig):
    name = "card_payments"
    verbose_name = _("Card payments (Nets Easy → Fortnox)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from bookkeeping.models import MappingKind as K
        from bookkeeping.selectors.mappings import MappedFlow, register_mapped_flow

        from .selectors import nets_mapping_gaps
        from .services.settings import SOURCE, TARGET

        register_mapped_flow(MappedFlow(
            key="card_payments", label=_("Card payments (Nets Easy) → Fortnox"), system=TARGET,
            kinds=(K.SALES_REGION, K.OUTPUT_VAT, K.FEE, K.RECEIVABLE, K.BANK), source_systems=(SOURCE,),
            gaps=nets_mapping_gaps, reevaluate=_reevaluate, item_url=_item_url))
