from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CardPaymentsConfig(AppConfig):
    name = "card_payments"
    verbose_name = _("Card payments (Nets Easy → Fortnox)")
    default_auto_field = "django.db.models.BigAutoField"
