import csv
import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV

from ..models import AccountMapping, PaymentMethod, PaymentMethodList
from ..resources import MAPPING_COLUMNS, AccountMappingResource, PaymentMethodResource
from ..selectors.mappings import mapping_problems
from ..services.mappings import acting
from ..spreadsheets import EXPORT_FORMATS, IMPORT_FORMATS
from .base import CompanyScopedAdmin
from .unmapped import unmapped_view
from .uploads import limit_uploads


class UserScopedImportExport(ImportExportModelAdmin):
    """Imports and exports see the user's companies only (the resource gets the user); CSV is the default;
    exports are formula-safe CSV, TSV or XLSX (bookkeeping/spreadsheets.py); an upload larger than the
    mappings limit is stopped before it is read."""

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

    def get_import_form_initial(self, request):
        initial = super().get_import_form_initial(request)
        formats = self.get_import_formats()
        csv_index = next((i for i, fmt in enumerate(formats) if fmt is CSV or issubclass(fmt, CSV)), None)
        if csv_index is not None:
            initial["format"] = str(csv_index)
        return initial


class AccountMappingForm(forms.ModelForm):
    """The admin's form checks a row as the import and the unmapped-values page do."""

    class Meta:
        model = AccountMapping
        fields = ("company", "system", "kind", "key", "account_number", "cost_centre", "project", "vat_code",
                  "series", "note")

    def clean(self):
        cleaned = super().clean()
        company, system, kind = cleaned.get("company"), cleaned.get("system"), cleaned.get("kind")
        if company and system and kind:
            errors = mapping_problems(
                company=company, system=system, kind=kind, key=cleaned.get("key") or "",
                account_number=cleaned.get("account_number"), cost_centre=cleaned.get("cost_centre") or "",
                project=cleaned.get("project") or "", vat_code=cleaned.get("vat_code") or "",
                series=cleaned.get("series") or "", exclude_pk=self.instance.pk)
            for name, message in errors.items():
                self.add_error(name if name in self.fields else None, message)
        return cleaned


def template_csv() -> str:
    """The mapping import's template: the header and one example row per kind."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MAPPING_COLUMNS)
    for row in (
        ("brf-exempel", "fortnox", "ledger_account", "1101", "1510", "", "", "", "", "the source's own account"),
        ("brf-exempel", "fortnox", "ledger_category", "Hyra bostad", "3011", "", "", "", "", ""),
        ("brf-exempel", "fortnox", "addon_code", "P1", "3015", "", "", "", "", "parking"),
        ("brf-exempel", "fortnox", "property", "Storgatan 1", "", "100", "", "", "", "property → cost centre"),
        ("brf-exempel", "fortnox", "owner", "Brf Exempelgården", "", "", "", "", "B", "owner → voucher series"),
        ("demo-aps", "dinero", "expense_category", "Kontorartikler", "7200", "", "", "I25", "", ""),
        ("demo-aps", "dinero", "expense_category", "*", "7480", "", "", "", "", "default: everything unmapped"),
        ("webbshop", "fortnox", "sales_region", "se", "3001", "", "", "", "", "se, eu, world, eu_b2b"),
        ("webbshop", "fortnox", "output_vat", "25", "2611", "", "", "", "", "the VAT rate"),
        ("webbshop", "fortnox", "fee", "*", "6040", "", "", "", "", ""),
        ("webbshop", "fortnox", "receivable", "*", "1580", "", "", "", "", ""),
        ("webbshop", "fortnox", "bank", "*", "1930", "", "", "", "", ""),
    ):
        writer.writerow(row)
    return out.getvalue()


@admin.register(AccountMapping)
class AccountMappingAdmin(UserScopedImportExport, CompanyScopedAdmin):
    form = AccountMappingForm
    resource_classes = [AccountMappingResource]
    import_template_name = "admin/bookkeeping/accountmapping/import.html"
    # django-import-export puts its own list template in front of `change_list_template` and extends that
    # one; ours extends import-export's, so it must take import-export's place (else the list extends
    # itself and fails: found by the permission walk).
    import_export_change_list_template = "admin/bookkeeping/accountmapping/change_list.html"
    # The audit trail records every imported row (in bulk); an admin log entry each would repeat it.
    skip_admin_log = True
    list_display = ("company", "system", "kind", "key", "account_number", "cost_centre", "project", "vat_code",
                    "series", "note")
    list_filter = ("system", "kind", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("key", "account_number", "note")
    list_select_related = ("company",)

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("unmapped/", self.admin_site.admin_view(lambda r: unmapped_view(self, r)),
                 name="%s_%s_unmapped" % info),
            path("template.csv", self.admin_site.admin_view(self.template_view), name="%s_%s_template" % info),
            *super().get_urls(),
        ]

    def template_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        response = HttpResponse(template_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="account-mappings.csv"'
        return response

    def save_model(self, request, obj, form, change):
        with acting(request.user):
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        with acting(request.user):
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with acting(request.user):
            for mapping in queryset:
                mapping.delete()  # one by one: each deletion is audited and re-evaluated

    def process_import(self, request, **kwargs):
        with acting(request.user):
            return super().process_import(request, **kwargs)


class PaymentMethodInline(admin.TabularInline):
    model = PaymentMethod
    extra = 1


@admin.register(PaymentMethodList)
class PaymentMethodListAdmin(CompanyScopedAdmin):
    list_display = ("name", "company", "method_count")
    list_filter = (("company", admin.RelatedOnlyFieldListFilter),)
    inlines = [PaymentMethodInline]

    @admin.display(description=_("methods"))
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
