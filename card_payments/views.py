"""The Nets Easy pages of the admin: settings and activation, OK, sync with progress, problem report.

Thin shells over ``card_payments.services``: parse, check the user may act on the company,
call one service, redirect. No remote call happens in a request: the key check and the sync run in
the worker; the test voucher goes out through the dispatcher.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from bookkeeping.models import Company
from bookkeeping.permissions import require_permission

from .forms import NetsSettingsForm, ProblemReportForm, SyncForm
from .models import NetsPayout

# The named permission each page (and each of its POSTs) needs, besides serving the company.
VIEW = "integrations.view_integration"
CONFIGURE = "card_payments.configure_netseasy"
CONFIRM = "card_payments.confirm_netseasy"
SYNC = "card_payments.sync_netseasy"
SEE_PAYOUTS = "card_payments.view_netspayout"
REPORT = "card_payments.report_problem"


def _company(request, company_id: int, *, permission: str) -> Company:
    company = get_object_or_404(Company, pk=company_id)
    require_permission(request.user, permission, company=company)
    return company


def _context(request, title: str, company: Company, **extra) -> dict:
    from .selectors import nets_integration

    return {**admin.site.each_context(request), "title": title, "company": company,
            "integration": nets_integration(company), "opts": NetsPayout._meta, **extra}


def integration_page(integration) -> str:
    return reverse("admin:integrations_integration_change", args=[integration.pk])


def url(name: str, company_id: int) -> str:
    return reverse(f"admin:card_payments_netspayout_{name}", args=[company_id])


def settings_view(request, company_id: int):
    from .selectors import nets_integration
    from .services.activation import activation_status, netseasy_settings_save
    from .services.settings import fortnox_ready

    company = _company(request, company_id, permission=CONFIGURE if request.method == "POST" else VIEW)
    integration = nets_integration(company)
    form = NetsSettingsForm(request.POST or None, integration=integration)
    if request.method == "POST" and form.is_valid():
        try:
            saved = netseasy_settings_save(company=company, values=form.values(),
                                           secret_key=form.cleaned_data.get("secret_key") or None, actor=request.user)
        except ValidationError as exc:
            form.add_service_errors(exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages})
        else:
            for warning in saved.warnings:
                messages.warning(request, warning)
            messages.success(request, saved.message)
            return HttpResponseRedirect(url("settings", company.pk))
    ready, reason = fortnox_ready(company)
    context = _context(
        request, _("Nets Easy → Fortnox: settings for %(company)s") % {"company": company}, company,
        form=form, fortnox_ready=ready, fortnox_reason=reason,
        activation=activation_status(integration) if integration else None,
        report_form=ProblemReportForm(), integration_url=integration_page(integration) if integration else "",
        confirm_url=url("confirm", company.pk), report_url=url("report", company.pk), sync_url=url("sync", company.pk),
    )
    return TemplateResponse(request, "admin/card_payments/settings.html", context)



def _integration_or_settings(request, company):
    """The company's Nets Easy integration, or a redirect to its settings page saying why not."""
    from .selectors import nets_integration

    integration = nets_integration(company)
    if integration is None:
        messages.error(request, _("Nets Easy is not set up for %(company)s yet.") % {"company": company})
        return None, HttpResponseRedirect(url("settings", company.pk))
    return integration, None


def confirm_view(request, company_id: int):
    from .services.activation import activation_status, netseasy_confirm

    company = _company(request, company_id, permission=CONFIRM)
    integration, elsewhere = _integration_or_settings(request, company)
    if elsewhere:
        return elsewhere
    if request.method == "POST":
        ok, message = netseasy_confirm(integration=integration, actor=request.user)
        (messages.success if ok else messages.error)(request, message)
        return HttpResponseRedirect(integration_page(integration) if ok else url("settings", company.pk))
    context = _context(request, _("Start automatic booking for %(company)s") % {"company": company}, company,
                       activation=activation_status(integration), settings_url=url("settings", company.pk))
    return TemplateResponse(request, "admin/card_payments/confirm.html", context)


def sync_view(request, company_id: int):
    from .services.sync import enqueue_sync

    company = _company(request, company_id, permission=SYNC)
    integration, elsewhere = _integration_or_settings(request, company)
    if elsewhere:
        return elsewhere
    form = SyncForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        start = form.cleaned_data.get("from_date")
        if not enqueue_sync(integration.pk, from_date=start.isoformat() if start else None,
                            actor=request.user.get_username()):
            messages.info(request, _("A sync is already running; showing its progress."))
        return HttpResponseRedirect(url("progress", company.pk))
    context = _context(request, _("Sync Nets Easy payouts for %(company)s") % {"company": company}, company,
                       form=form, settings_url=url("settings", company.pk))
    return TemplateResponse(request, "admin/card_payments/sync_confirm.html", context)


def progress_view(request, company_id: int):
    from .services.sync import sync_progress

    company = _company(request, company_id, permission=SEE_PAYOUTS)
    context = _context(request, _("Nets Easy sync for %(company)s") % {"company": company}, company)
    progress = sync_progress(context["integration"].pk) if context["integration"] else {}
    total = progress.get("total") or 0
    done = progress.get("done") or 0
    context.update(
        progress=progress, finished=progress.get("state") in (None, "done", "failed"),
        percent=100 if progress.get("state") == "done" else (int(100 * done / total) if total else 0),
        result=progress.get("result") or {},
        payouts_url=reverse("admin:card_payments_netspayout_changelist") + f"?company__id__exact={company.pk}",
    )
    return TemplateResponse(request, "admin/card_payments/progress.html", context)


def report_view(request, company_id: int):
    from .services.problem_report import problem_report_create

    company = _company(request, company_id, permission=REPORT)
    integration, elsewhere = _integration_or_settings(request, company)
    if elsewhere:
        return elsewhere
    form = ProblemReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        report = problem_report_create(integration=integration, text=form.cleaned_data["text"], user=request.user)
        messages.success(request, _("Thank you. Report #%(id)s was sent to support with the integration's state "
                                    "(no secrets).") % {"id": report.pk})
        return HttpResponseRedirect(url("settings", company.pk))
    context = _context(request, _("Report a problem with Nets Easy for %(company)s") % {"company": company},
                       company, form=form)
    return TemplateResponse(request, "admin/card_payments/report.html", context)
