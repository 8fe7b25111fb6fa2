from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _document_url(item) -> str:
    from django.urls import reverse

    from .models import ExpenseDocument

    if item.kind != "voucher":
        return ""
    document_id = ExpenseDocument.objects.filter(voucher_id=item.pk).values_list("pk", flat=True).first()
    return reverse("admin:expense_documents_expensedocument_change", args=[document_id]) if document_id else ""


class ExpenseDocumentsConfig(AppConfig):
    name = "expense_documents"
    verbose_name = _("Expense documents (→ Dinero)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from bookkeeping.models import MappingKind
        from bookkeeping.selectors.mappings import MappedFlow, register_mapped_flow

        from .services.common import SOURCE_SYSTEM, SYSTEM
        from .services.sync import documents_reevaluate

        register_mapped_flow(MappedFlow(
            key="expense_documents", label=_("Expense documents → Dinero"), system=SYSTEM,
            kinds=(MappingKind.EXPENSE_CATEGORY,), source_systems=(SOURCE_SYSTEM,),
            reevaluate=documents_reevaluate, item_url=_document_url))
