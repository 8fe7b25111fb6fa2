"""Expense documents and workflow rules in the admin: sync state in words, actions, CSV import."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rangefilter.filters import DateRangeFilterBuilder

from bookkeeping.admin.base import CompanyScopedAdmin
from bookkeeping.admin.integrations import register_integration_page
from bookkeeping.admin.overview import register_attention
from bookkeeping.admin.uploads import limit_uploads
from bookkeeping.limits import FileTooLarge, UnreadableFile, check_upload_size, decode_text
from bookkeeping.models import Company, PaymentMethod, PaymentMethodList
from bookkeeping.permissions import require_permission
from bookkeeping.selectors.companies import companies_for_user, user_can_act_on
from bookkeeping.views import register_after_consent
from wording import amount

from . import views
from .models import ExpenseDocument, ExpenseLine, WorkflowRule
from .selectors import document_sync_state, documents_on_error_account, documents_opted_out
from .services.common import AUTH_VISMA_CONNECT, MAX_ATTACHMENT_BYTES, SYSTEM
from .services.csv_import import CSV_COLUMNS, documents_import, import_root
from .services.sync import expense_document_changed, expense_document_sync, workflow_rule_delete, workflow_rule_save

IMPORT_SESSION_KEY = "kontera:expense-import"


class ExpenseLineInline(admin.TabularInline):
    model = ExpenseLine
    extra = 1
    fields = ("position", "amount", "vat_code", "category", "text")


class ExpenseDocumentForm(forms.ModelForm):
    class Meta:
        model = ExpenseDocument
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        company = cleaned.get("company") or (self.instance.company if self.instance.company_id else None)
        method = cleaned.get("payment_method")
        if method is not None and company is not None and method.payment_list.company_id != company.pk:
            self.add_error("payment_method", _("This payment method belongs to another company."))
        currency = (cleaned.get("currency") or "DKK").upper()
        cleaned["currency"] = currency
        if currency == "DKK" and cleaned.get("amount_dkk") is not None:
            self.add_error("amount_dkk", _("Only for foreign currency: a DKK document's amount is its lines."))
        attachment = cleaned.get("attachment")
        if attachment and getattr(attachment, "size", 0) > MAX_ATTACHMENT_BYTES:
            self.add_error("attachment", _("Dinero accepts files of at most 6 MB."))
        return cleaned


@admin.register(ExpenseDocument)
class ExpenseDocumentAdmin(CompanyScopedAdmin):
    class Media:
        css = {"all": ("kontera/lists.css",)}

    form = ExpenseDocumentForm
    change_list_template = "admin/expense_documents/expensedocument/change_list.html"
    list_display = ("reference", "company", "type", "supplier_name", "document_date", "total_display", "currency",
                    "sync_state_display", "last_error_display", "opted_out_by")
    list_filter = (("document_date", DateRangeFilterBuilder(title=_("period"))), "type",
                   ("company", admin.RelatedOnlyFieldListFilter), "used_error_account", "voucher__state",
                   "currency")
    search_fields = ("reference", "supplier_name", "supplier_vat", "description")
    list_select_related = ("company", "voucher", "opted_out_by")
    inlines = [ExpenseLineInline]
    actions = ["sync_to_dinero", "sync_again"]
    readonly_fields = ("sync_state_display", "last_error_display", "opted_out_by", "error_account_flag",
                       "voucher_link", "not_synced_note")
    fieldsets = (
        (None, {"fields": ("company", "type", "reference", "supplier_name", "supplier_vat", "document_date",
                           "due_date", "description")}),
        (_("Amounts and payment"), {"fields": ("currency", "amount_dkk", "payment_method")}),
        (_("File"), {"fields": ("attachment",)}),
        (_("Kept in Kontera only"), {"fields": ("not_synced_note", "department", "project", "notes")}),
        (_("Sync to Dinero"), {"fields": ("sync_state_display", "last_error_display", "opted_out_by",
                                          "error_account_flag", "voucher_link")}),
    )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "payment_method":
            kwargs["queryset"] = PaymentMethod.objects.filter(
                payment_list__company__in=companies_for_user(request.user)).select_related("payment_list")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        refused = getattr(request, "upload_refused", "")
        if not refused:
            return form

        class RefusedAttachment(form):
            def clean(self):
                cleaned = super().clean()
                # The file was stopped before it was read: say so rather than saving without it.
                self.add_error("attachment", refused)
                return cleaned

        return RefusedAttachment

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Lines are saved by now: the worker applies the rules and syncs the new content.
        expense_document_changed(document=form.instance, actor=request.user)

    # --- display --------------------------------------------------------------------------------

    @admin.display(description=_("total"))
    def total_display(self, document):
        return format_html('<span style="white-space:nowrap">{}</span>', amount(document.total()))

    @admin.display(description=_("sync state"))
    def sync_state_display(self, document):
        if document is None or document.pk is None:
            return "–"
        state = document_sync_state(document)
        return format_html('<strong style="color:{}">{}</strong>', state.colour, state.label)

    @admin.display(description=_("why"))
    def last_error_display(self, document):
        if document is None or document.pk is None:
            return ""
        detail = document_sync_state(document).detail or ""
        flag = _(" (a line went to the error account)") if document.used_error_account else ""
        return f"{detail}{flag}" if detail or flag else "–"

    @admin.display(description=_("error account used"))
    def error_account_flag(self, document):
        # A warning, not a green tick: a line on the error account is something to fix (recategorise).
        if document is not None and document.used_error_account:
            return format_html('<strong style="color:#ef6c00" class="error-account-used">⚠ {}</strong>',
                               _("Yes: a line without a category went to the error account; give it a category."))
        return _("No")

    @admin.display(description=_("voucher"))
    def voucher_link(self, document):
        voucher = document.voucher if document and document.pk else None
        if voucher is None:
            return "–"
        url = reverse("admin:bookkeeping_voucher_change", args=[voucher.pk])
        return format_html('<a href="{}">{}</a> {}', url, voucher.source_reference, voucher.remote_label or "")

    @admin.display(description=_("departments and projects"))
    def not_synced_note(self, document):
        return _("Not synced to Dinero: Dinero's API has no departments or projects, so they stay in Kontera.")

    # --- actions --------------------------------------------------------------------------------

    def _sync(self, request, queryset, *, force: bool):
        counts: dict[str, int] = {}
        for document in queryset:
            if not user_can_act_on(request.user, document.company):
                continue
            outcome = expense_document_sync(document=document, actor=request.user, force=force)
            counts[str(outcome.state)] = counts.get(str(outcome.state), 0) + 1
        summary = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(counts.items())) or "–"
        level = messages.WARNING if any(s in counts for s in ("refused", "waiting", "not_set_up")) else messages.SUCCESS
        self.message_user(request, _("Sync to Dinero: %(summary)s.") % {"summary": summary}, level)

    def has_sync_permission(self, request):
        return request.user.has_perm("expense_documents.sync_expensedocument")

    @admin.action(description=_("Sync to Dinero"), permissions=["sync"])
    def sync_to_dinero(self, request, queryset):
        self._sync(request, queryset, force=False)

    @admin.action(description=_("Sync again (also refused documents)"), permissions=["sync"])
    def sync_again(self, request, queryset):
        self._sync(request, queryset, force=True)

    # --- import and setup pages -----------------------------------------------------------------

    def get_urls(self):
        site = self.admin_site
        return [
            path("import/", site.admin_view(limit_uploads("documents")(self.import_view)),
                 name="expense_documents_expensedocument_import"),
            path("dinero-setup/", site.admin_view(views.start_view), name="dinero_setup"),
            path("dinero-setup/company/<int:company_id>/", site.admin_view(views.connect_view),
                 name="dinero_setup_connect"),
            path("dinero-setup/<int:integration_id>/organisation/", site.admin_view(views.organisation_view),
                 name="dinero_setup_organisation"),
            path("dinero-setup/<int:integration_id>/<str:step>/", site.admin_view(views.step_view),
                 name="dinero_setup_step"),
            *self._attachment_limited(super().get_urls()),
        ]

    def _attachment_limited(self, urls):
        """The add and change pages carry the attached file: their upload stops at the attachment limit."""
        limited = {f"{self.opts.app_label}_{self.opts.model_name}_{name}": view
                   for name, view in (("add", self.add_view), ("change", self.change_view))}
        return [path(str(url.pattern), self.admin_site.admin_view(limit_uploads("attachments")(limited[url.name])),
                     name=url.name) if url.name in limited else url for url in urls]

    def import_view(self, request):
        require_permission(request.user, "expense_documents.import_expensedocument")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": _("Import expense documents"), "columns": ",".join(CSV_COLUMNS)}
        form = ImportForm(request.POST or None, request.FILES or None, user=request.user,
                          refused=getattr(request, "upload_refused", ""))
        if request.method == "POST" and request.POST.get("cancel"):
            request.session.pop(IMPORT_SESSION_KEY, None)  # the previewed file is forgotten
            self.message_user(request, _("Import cancelled; the uploaded file was deleted."), messages.INFO)
            return HttpResponseRedirect(request.path)
        if request.method == "POST" and request.POST.get("confirm"):
            stored = request.session.get(IMPORT_SESSION_KEY) or {}
            if stored.get("token") != request.POST.get("confirm"):
                messages.error(request, _("The preview expired; upload the file again."))
                return HttpResponseRedirect(request.path)
            company = Company.objects.filter(pk=stored.get("company")).first()
            require_permission(request.user, "expense_documents.import_expensedocument", company=company)
            result = documents_import(
                company=company, text=stored["text"], dry_run=False, actor=request.user,
                attachment_root=import_root(), allow_outside_root=False)
            request.session.pop(IMPORT_SESSION_KEY, None)
            if result.errors:
                context.update({"form": form, "result": result, "company": company})
                return TemplateResponse(request, "admin/expense_documents/expensedocument/import.html", context)
            self.message_user(request, _("%(created)s created, %(updated)s updated, %(unchanged)s unchanged; the "
                                         "sync follows.") % {"created": result.created, "updated": result.updated,
                                                              "unchanged": result.unchanged})
            return HttpResponseRedirect(reverse("admin:expense_documents_expensedocument_changelist"))
        if request.method == "POST" and form.is_valid():
            company = form.cleaned_data["company"]
            text = form.cleaned_data["text"]
            result = documents_import(
                company=company, text=text, dry_run=True, actor=request.user,
                attachment_root=import_root(), allow_outside_root=False)
            token = ""
            if result.ok:
                token = secrets.token_urlsafe(16)
                request.session[IMPORT_SESSION_KEY] = {"token": token, "company": company.pk, "text": text}
            context.update({"form": form, "result": result, "company": company, "token": token})
            return TemplateResponse(request, "admin/expense_documents/expensedocument/import.html", context)
        context["form"] = form
        return TemplateResponse(request, "admin/expense_documents/expensedocument/import.html", context)


class ImportForm(forms.Form):
    company = forms.ModelChoiceField(queryset=None, label=_("Company"))
    file = forms.FileField(label=_("CSV file"))

    def __init__(self, *args, user=None, refused="", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies_for_user(user)
        self.refused = refused

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            check_upload_size("documents", upload.size)
            self.cleaned_data["text"] = decode_text(upload.read())
        except (FileTooLarge, UnreadableFile) as exc:
            raise ValidationError(str(exc)) from None
        return upload

    def clean(self):
        cleaned = super().clean()
        if self.refused:
            self.errors.pop("file", None)  # not "required": the file was stopped for its size
            self.add_error("file", self.refused)
        return cleaned


@admin.register(WorkflowRule)
class WorkflowRuleAdmin(CompanyScopedAdmin):
    list_display = ("name", "company", "active", "action", "conditions", "opted_out_count")
    list_filter = ("active", "action", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "supplier_contains")
    fieldsets = (
        (None, {"fields": ("company", "name", "active", "action", "position")}),
        (_("Conditions (every one that is set must hold)"), {
            "fields": ("supplier_contains", "category", "payment_method", "min_amount", "max_amount")}),
    )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "payment_method":
            kwargs["queryset"] = PaymentMethod.objects.filter(
                payment_list__company__in=companies_for_user(request.user)).select_related("payment_list")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("conditions"))
    def conditions(self, rule):
        parts = []
        if rule.supplier_contains:
            parts.append(_("supplier contains “%(text)s”") % {"text": rule.supplier_contains})
        if rule.category is not None:
            parts.append(_("category %(n)s") % {"n": rule.category})
        if rule.payment_method_id:
            parts.append(_("paid with %(method)s") % {"method": rule.payment_method.name})
        if rule.min_amount is not None:
            parts.append(_("from %(n)s DKK") % {"n": rule.min_amount})
        if rule.max_amount is not None:
            parts.append(_("up to %(n)s DKK") % {"n": rule.max_amount})
        return "; ".join(str(p) for p in parts) or _("every document of that type")

    @admin.display(description=_("opted out now"))
    def opted_out_count(self, rule):
        return rule.opted_out_documents.count()

    def save_model(self, request, obj, form, change):
        outcomes = workflow_rule_save(rule=obj, actor=request.user)
        count = sum(outcomes.values())
        self.message_user(request, ngettext("%(n)s document not yet sent was judged again.",
                                            "%(n)s documents not yet sent were judged again.", count) % {"n": count})

    def delete_model(self, request, obj):
        workflow_rule_delete(rule=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            workflow_rule_delete(rule=rule, actor=request.user)


def integration_tools(integration, request) -> list[tuple[str, str]]:
    """The buttons on a Dinero integration's page (Connect Dinero is the template's, as for Fortnox), for
    those who may connect integrations."""
    if not request.user.has_perm(views.CONNECT):
        return []
    tools = [(_("Dinero setup wizard"), reverse("admin:dinero_setup_step", args=[integration.pk, "accounts"]))]
    if (integration.settings or {}).get("auth") == AUTH_VISMA_CONNECT:
        tools.append((_("Choose the Dinero organisation"),
                      reverse("admin:dinero_setup_organisation", args=[integration.pk])))
    return tools


def settings_summary(integration) -> list[tuple[str, str]]:
    """The Dinero settings in words; they are changed in the setup wizard (which checks them against Dinero)."""
    conf = integration.settings or {}
    lists = dict(PaymentMethodList.objects.filter(company=integration.company).values_list("pk", "name"))
    yes, no = _("yes"), _("no")
    return [
        (_("Organisation id (firma-ID)"), conf.get("organization_id") or "–"),
        (_("Default category / error account"), conf.get("error_account") or "–"),
        (_("Whole Dinero chart as categories"), yes if conf.get("import_chart", True) else no),
        (_("Counter account for invoices"), conf.get("invoice_counter_account") or "–"),
        (_("Payment-method list for receipts"), lists.get(conf.get("receipt_payment_list"), "–")),
        (_("Book vouchers in Dinero"), yes if conf.get("book_vouchers", True) else no),
        (_("Requests per minute"), conf.get("rate_limit_per_minute") or "–"),
        (_("Change them"), _("in the Dinero setup wizard (the button above)")),
    ]


register_integration_page(SYSTEM, tools=integration_tools, settings_summary=settings_summary)


def _documents_url(**filters):
    def url(company_id=None) -> str:
        query = {**filters, **({"company__id__exact": company_id} if company_id else {})}
        return reverse("admin:expense_documents_expensedocument_changelist") + "?" + urlencode(query)
    return url


register_attention(key="documents_error_account", label=_("documents on the error account"), system=SYSTEM,
                   count=documents_on_error_account, url=_documents_url(used_error_account__exact=1))
register_attention(key="documents_opted_out", label=_("opted out"), system=SYSTEM, count=documents_opted_out,
                   url=_documents_url(opted_out_by__isnull="False"), severity="info")
# After a Visma Connect consent the organisation is chosen (or, when it is still reachable, the
# integration is simply active again).
register_after_consent(SYSTEM, views.visma_consent_received)
