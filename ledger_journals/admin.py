"""Admin page of the property-ledger flow: import journals (SIE 4 / CSV) with a preview, then store them."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from bookkeeping import rules
from bookkeeping.admin.uploads import limit_uploads
from bookkeeping.admin.vouchers import VoucherAdmin
from bookkeeping.limits import FileTooLarge, check_upload_size
from bookkeeping.models import Company, Voucher
from bookkeeping.permissions import require_permission
from bookkeeping.selectors.companies import companies_for_user
from bookkeeping.selectors.plans import plan_snapshot
from bookkeeping.services.uploads import upload_discard, upload_get, upload_store
from wording import restored

from .models import JournalImportJob
from .services.journal_import import JournalImportError, journals_import, journals_read
from .services.journal_import_jobs import in_worker, journal_import_enqueue

IMPORT = "bookkeeping.import_journals"
PREVIEW_ROWS = 200  # journals listed in the preview; the counts cover all of them


class JournalImportForm(forms.Form):
    company = forms.ModelChoiceField(queryset=Company.objects.none(), label=_("Company (property owner)"))
    file = forms.FileField(label=_("SIE 4 file (4E/4I) or CSV"),
                           help_text=_("CSV header: journal,date,series,account,debit,credit,cost_centre,project,text — "
                                       "optionally category, addon_code, property, owner, fortnox_account (the "
                                       "source's own values, translated by the account mappings)."))
    series = forms.CharField(required=False, max_length=10, label=_("Voucher series"),
                             help_text=_("Leave empty for the file's series (if Fortnox has it) or the company's "
                                         "default series."))

    def __init__(self, *args, user=None, refused="", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies_for_user(user)
        self.refused = refused

    def clean(self):
        cleaned = super().clean()
        if self.refused:
            self.errors.pop("file", None)  # not "required": the file was stopped for its size
            self.add_error("file", self.refused)
        return cleaned


def _render(request, context):
    return TemplateResponse(request, "admin/ledger_journals/journal_import.html", context)


def journal_import_view(model_admin, request):
    """Upload → preview (every journal with its pre-flight check) → confirm; nothing is stored before."""
    require_permission(request.user, IMPORT)
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta,
               "title": _("Import journals")}
    if request.method == "POST" and request.POST.get("cancel"):
        upload_discard(token=request.POST["cancel"])
        messages.info(request, _("Import cancelled; the uploaded file was deleted."))
        return HttpResponseRedirect(request.path)
    if request.method == "POST" and request.POST.get("token"):
        return _confirm(request, context)

    form = JournalImportForm(request.POST or None, request.FILES or None, user=request.user,
                             refused=getattr(request, "upload_refused", ""))
    if request.method == "POST" and form.is_valid():
        company = form.cleaned_data["company"]
        upload = form.cleaned_data["file"]
        series = form.cleaned_data["series"] or None
        try:
            check_upload_size("journals", upload.size)
            stored = upload_store(kind="journals", user=request.user, company=company, upload=upload,
                                  options={"series": series or ""})
        except FileTooLarge as exc:
            form.add_error("file", str(exc))
            context["form"] = form
            return _render(request, context)
        try:
            journals = journals_read(company=company, data=stored.read(), filename=stored.filename, series=series)
        except JournalImportError as exc:
            upload_discard(token=stored.token)
            context.update({"errors": exc.errors, "form": form})
            return _render(request, context)
        plan = plan_snapshot(company, "fortnox")
        preview, problem_count = [], 0
        for journal in journals:
            problems = rules.preflight(plan, rows=journal.rows, day=journal.date, series=journal.series,
                                       require_series=True)
            problem_count += bool(problems)
            if len(preview) < PREVIEW_ROWS:
                preview.append({"journal": journal, "problems": problems,
                                "total": sum((r.debit for r in journal.rows), 0)})
        context.update({"preview": preview, "journal_count": len(journals), "token": stored.token,
                        "company": company, "series": series or "", "problem_count": problem_count,
                        "not_shown": len(journals) - len(preview),
                        "waiting_count": sum(1 for journal in journals if any(r.unmapped_keys for r in journal.rows))})
        return _render(request, context)
    context["form"] = form
    return _render(request, context)


def _confirm(request, context):
    stored = upload_get(token=request.POST["token"], kind="journals", user=request.user)
    if stored is None:
        messages.error(request, _("The upload expired; please choose the file again."))
        return HttpResponseRedirect(request.path)
    company = Company.objects.filter(pk=stored.company_id).first()
    if company is None:
        upload_discard(token=stored.token)
        messages.error(request, _("The upload expired; please choose the file again."))
        return HttpResponseRedirect(request.path)
    require_permission(request.user, IMPORT, company=company)
    if in_worker(stored.path.stat().st_size):  # a big file: a worker imports it, its page shows how it goes
        try:
            job = journal_import_enqueue(company=company, data=stored.read(), filename=stored.filename,
                                         series=stored.options.get("series") or None, user=request.user)
        finally:
            upload_discard(token=stored.token)
        return HttpResponseRedirect(reverse("admin:bookkeeping_voucher_import_journals_job", args=[job.pk]))
    try:
        result = journals_import(company=company, data=stored.read(), filename=stored.filename,
                                 series=stored.options.get("series") or None, actor=request.user)
    except JournalImportError as exc:
        context.update({"errors": exc.errors, "form": JournalImportForm(user=request.user)})
        return _render(request, context)
    finally:
        upload_discard(token=stored.token)
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


def journal_import_job_view(model_admin, request, job_id: int):
    """How a big import goes: waiting, importing, imported (with its counts) or refused (with the reasons).
    Only for who may import journals for the company; refreshes itself until the import has finished."""
    job = JournalImportJob.objects.select_related("company", "requested_by").filter(pk=job_id).first()
    if job is None:
        raise Http404(_("No such journal import."))
    require_permission(request.user, IMPORT, company=job.company)
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta,
               "title": _("Import journals"), "job": job,
               "errors": [(line, restored(message)) for line, message in job.errors],
               "vouchers_url": reverse("admin:bookkeeping_voucher_changelist")
               + f"?company__id__exact={job.company_id}&kind__exact=journal",
               "unmapped_url": reverse("admin:bookkeeping_accountmapping_unmapped") + "?" + urlencode(
                   {"company": job.company_id, "flow": "ledger_journals"})}
    return TemplateResponse(request, "admin/ledger_journals/journal_import_job.html", context)


class JournalVoucherAdmin(VoucherAdmin):
    """The core's voucher list (journals are vouchers), plus this flow's import page."""

    change_list_template = "admin/ledger_journals/voucher_change_list.html"

    @method_decorator(limit_uploads("journals"))
    def import_journals_view(self, request):
        return journal_import_view(self, request)

    def import_journals_job_view(self, request, job_id):
        return journal_import_job_view(self, request, job_id)

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("import-journals/", self.admin_site.admin_view(self.import_journals_view),
                 name="%s_%s_import_journals" % info),
            path("import-journals/<int:job_id>/", self.admin_site.admin_view(self.import_journals_job_view),
                 name="%s_%s_import_journals_job" % info),
            *super().get_urls(),
        ]


admin.site.unregister(Voucher)
admin.site.register(Voucher, JournalVoucherAdmin)
