from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExpenseDocumentsConfig(AppConfig):
    name = "expense_documents"
    verbose_name = _("Expense documents (→ Dinero)")
    default_auto_field = "django.db.models.BigAutoField"
