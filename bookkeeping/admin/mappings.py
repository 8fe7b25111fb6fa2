from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.utils.decorators import method_decorator
from import_export.admin import ImportExportModelAdmin

from ..models import AccountMapping, PaymentMethod, PaymentMethodList
from ..resources import AccountMappingResource, PaymentMethodResource
from ..spreadsheets import EXPORT_FORMATS, IMPORT_FORMATS
from .base import CompanyScopedAdmin
from .uploads import limit_uploads


class UserScopedImportExport(ImportExportModelAdmin):
    """Imports and exports see the user's companies only (the resource gets the user); exports are
    formula-safe CSV, TSV or XLSX (bookkeeping/spreadsheets.py); an upload larger than the mappings
    limit is stopped before it is read."""

    export_formats = EXPORT_FORMATS
    import_formats = IMPORT_FORMATS

    def get_export_data(self, file_format, request, queryset, **kwargs):
        # As django-import-export's own, but XLSX (ours, a subclass) keeps numbers as numbers.
        if not self.has_export_permission(request):
            raise PermissionDenied
        data = self.get_data_for_export(request, queryset, force_native_type=file_format.is_binary(), **kwargs)
        exported = file_format.export_data(data)
        encoding = kwargs.get("encoding")
        return exported.encode(encoding) if encoding and not file_format.is_binary() else exported

    @method_decorator(limit_uploads("mappings"))
    def import_action(self, request, **kwargs):
        if request.method == "POST" and request.POST is not None and request.upload_refused:
            self.message_user(request, request.upload_refused, messages.ERROR)
            return HttpResponseRedirect(request.path)
        return super().import_action(request, **kwargs)

    def get_import_resource_kwargs(self, request, **kwargs):
        kwargs = super().get_import_resource_kwargs(request, **kwargs)
        kwargs["user"] = request.user
        return kwargs

    def get_export_resource_kwargs(self, request, **kwargs):
        kwargs = super().get_export_resource_kwargs(request, **kwargs)
        kwargs["user"] = request.user
        return kwargs


@admin.register(AccountMapping)
class AccountMappingAdmin(UserScopedImportExport, CompanyScopedAdmin):
    resource_classes = [AccountMappingResource]
    list_display = ("company", "system", "kind", "key", "account_number", "cost_centre", "vat_code", "note")
    list_filter = ("system", "kind", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("key", "account_number", "note")
    list_select_related = ("company",)


class PaymentMethodInline(admin.TabularInline):
    model = PaymentMethod
    extra = 1


@admin.register(PaymentMethodList)
class PaymentMethodListAdmin(CompanyScopedAdmin):
    list_display = ("name", "company", "method_count")
    list_filter = (("company", admin.RelatedOnlyFieldListFilter),)
    inlines = [PaymentMethodInline]

    @admin.display(description="methods")
    def method_count(self, payment_list):
        return payment_list.methods.count()


@admin.register(PaymentMethod)
class PaymentMethodAdmin(UserScopedImportExport, CompanyScopedAdmin):
    company_field = "payment_list__company"
    resource_classes = [PaymentMethodResource]
    list_display = ("name", "account_number", "payment_list")
    list_filter = (("payment_list__company", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "account_number")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "payment_list":
            from ..selectors.companies import companies_for_user

            kwargs["queryset"] = PaymentMethodList.objects.filter(company__in=companies_for_user(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
