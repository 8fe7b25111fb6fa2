"""Admin page of the property-ledger flow: import journals (SIE 4 / CSV) with a preview, then store them."""

from __future__ import annotations

import secrets
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from bookkeeping import rules
from bookkeeping.admin.vouchers import VoucherAdmin
from bookkeeping.models import Company, Voucher
from bookkeeping.selectors.companies import companies_for_user, user_can_act_on
from bookkeeping.selectors.plans import plan_snapshot

from .services.journal_import import JournalImportError, journals_import, journals_read

UPLOADS = Path(settings.BASE_DIR) / "var" / "uploads"


class JournalImportForm(forms.Form):
    company = forms.ModelChoiceField(queryset=Company.objects.none(), label=_("Company (property owner)"))
    file = forms.FileField(label=_("SIE 4 file (4E/4I) or CSV"),
                           help_text=_("CSV header: journal,date,series,account,debit,credit,cost_centre,project,text — "
                                       "optionally category, addon_code, property, owner, fortnox_account (the "
                                       "source's own values, translated by the account mappings)."))
    series = forms.CharField(required=False, max_length=10, label=_("Voucher series"),
                             help_text=_("Leave empty for the file's series (if Fortnox has it) or the company's "
                                         "default series."))

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies_for_user(user)




def journal_import_view(model_admin, request):
    """Upload → preview (every journal with its pre-flight check) → confirm; nothing is stored before."""
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta,
               "title": _("Import journals")}
    if request.method == "POST" and request.POST.get("token"):
        token = request.POST["token"]
        company = Company.objects.filter(pk=request.POST.get("company")).first()
        if company is None or not user_can_act_on(request.user, company) or not token.isalnum():
            raise PermissionDenied
        path = UPLOADS / f"{token}.upload"
        if not path.exists():
            messages.error(request, _("The upload expired; please choose the file again."))
            return HttpResponseRedirect(request.path)
        try:
            result = journals_import(company=company, data=path.read_bytes(), filename=request.POST.get("filename", ""),
                                     series=request.POST.get("series") or None, actor=request.user)
        except JournalImportError as exc:
            context.update({"errors": exc.errors, "form": JournalImportForm(user=request.user)})
            return TemplateResponse(request, "admin/ledger_journals/journal_import.html", context)
        finally:
            path.unlink(missing_ok=True)
        messages.success(request, _("%(created)s new, %(updated)s updated and %(unchanged)s unchanged journals for "
                                    "%(company)s. Select them and choose 'Send' to transfer them to Fortnox.")
                         % {**result.__dict__, "company": company})
        if result.waiting:
            unmapped = reverse("admin:bookkeeping_accountmapping_unmapped") + "?" + urlencode(
                {"company": company.pk, "flow": "ledger_journals"})
            messages.warning(request, format_html(
                "{} <a href=\"{}\">{}</a>",
                _("%(n)s journals use source values without a mapping; they wait until those are mapped.")
                % {"n": result.waiting}, unmapped, _("Values without a mapping")))
        url = reverse("admin:bookkeeping_voucher_changelist")
        return HttpResponseRedirect(f"{url}?company__id__exact={company.pk}&kind__exact=journal")

    form = JournalImportForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        company = form.cleaned_data["company"]
        upload = form.cleaned_data["file"]
        data = upload.read()
        series = form.cleaned_data["series"] or None
        try:
            journals = journals_read(company=company, data=data, filename=upload.name, series=series)
        except JournalImportError as exc:
            context.update({"errors": exc.errors, "form": form})
            return TemplateResponse(request, "admin/ledger_journals/journal_import.html", context)
        plan = plan_snapshot(company, "fortnox")
        preview = []
        for journal in journals:
            problems = rules.preflight(plan, rows=journal.rows, day=journal.date, series=journal.series,
                                       require_series=True)
            preview.append({"journal": journal, "problems": problems,
                            "total": sum((r.debit for r in journal.rows), 0)})
        UPLOADS.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(16)
        (UPLOADS / f"{token}.upload").write_bytes(data)
        context.update({"preview": preview, "token": token, "company": company, "filename": upload.name,
                        "series": series or "", "problem_count": sum(1 for p in preview if p["problems"]),
                        "waiting_count": sum(1 for p in preview if any(r.unmapped_keys for r in p["journal"].rows))})
        return TemplateResponse(request, "admin/ledger_journals/journal_import.html", context)
    context["form"] = form
    return TemplateResponse(request, "admin/ledger_journals/journal_import.html", context)


class JournalVoucherAdmin(VoucherAdmin):
    """The core's voucher list (journals are vouchers), plus this flow's import page."""

    change_list_template = "admin/ledger_journals/voucher_change_list.html"

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("import-journals/", self.admin_site.admin_view(lambda r: journal_import_view(self, r)),
                 name="%s_%s_import_journals" % info),
            *super().get_urls(),
        ]


admin.site.unregister(Voucher)
admin.site.register(Voucher, JournalVoucherAdmin)
