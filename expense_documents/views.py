"""The Dinero setup wizard, step by step as the guide describes it (requirements, company, the
connection, error account and chart, invoices, receipts, finish). Every step calls the same services
as ``manage.py dinero_setup``.

The connection is Visma Connect (a bureau's client companies: consent in Visma Connect, then the
organisation is chosen), or the personal integration's API key (the company's own Dinero only). The
API key goes straight into the encrypted credentials and is never put in the session or shown again."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from bookkeeping.models import Account, AccountKind, AccountPlan, Company, Country, PaymentMethod, PaymentMethodList
from bookkeeping.permissions import require_permission
from bookkeeping.selectors.companies import CONNECT_PERMISSION, companies_for_user
from bookkeeping.services.connection_identity import OVERRIDE_PERMISSION
from integrations.crypto import mask_secret
from integrations.models import Integration

from .services.common import AUTH_VISMA_CONNECT, dinero_integration
from .services.dinero_connection import (
    dinero_after_consent,
    dinero_choose_organisation,
    dinero_organisations,
    visma_connect_start,
)
from .services.dinero_setup import SetupError, dinero_configure, dinero_connect, dinero_finish, dinero_requirements

STEPS = (
    ("requirements", gettext_lazy("Requirements")),
    ("connect", gettext_lazy("Connect Dinero")),
    ("organisation", gettext_lazy("Organisation")),
    ("accounts", gettext_lazy("Error account and chart")),
    ("invoices", gettext_lazy("Invoices")),
    ("receipts", gettext_lazy("Receipts")),
)


CONNECT = CONNECT_PERMISSION


def _allowed(request, company) -> None:
    """Every page of the wizard: the staff member serves the company and may connect its integrations
    (a refusal says which of the two is missing)."""
    require_permission(request.user, CONNECT, company=company)


def _render(request, *, step: str, title: str, form=None, **extra):
    context = {
        **admin.site.each_context(request),
        "title": title,
        "steps": [{"key": key, "label": label, "current": key == step} for key, label in STEPS],
        "form": form,
        "payment_list_add_url": reverse("admin:bookkeeping_paymentmethodlist_add"),
        **extra,
    }
    return TemplateResponse(request, "admin/expense_documents/dinero_setup.html", context)


def dinero_companies(user):
    """The companies Dinero is for: Danish ones, and any that already has a Dinero integration (a Swedish
    company books in Fortnox and has no business in this wizard)."""
    return companies_for_user(user).filter(Q(country=Country.DK) | Q(integrations__system="dinero")).distinct()


def _requirements_table(user):
    rows = []
    for company in dinero_companies(user).order_by("name"):
        problems = dinero_requirements(company=company)
        integration = dinero_integration(company)
        rows.append({"company": company, "problems": problems,
                     "integration": integration, "status": integration.get_status_display() if integration else ""})
    return rows


class CompanyForm(forms.Form):
    company = forms.ModelChoiceField(queryset=Company.objects.none(), label=gettext_lazy("Company"),
                                     help_text=gettext_lazy("The company whose documents go to Dinero."))

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = dinero_companies(user).order_by("name")


def start_view(request):
    """Requirements tab and the choice of company."""
    require_permission(request.user, CONNECT)
    form = CompanyForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        company = form.cleaned_data["company"]
        _allowed(request, company)
        return HttpResponseRedirect(reverse("admin:dinero_setup_connect", args=[company.pk]))
    return _render(request, step="requirements", title=_("Set up Dinero"), form=form,
                   requirements=_requirements_table(request.user))


class ConnectForm(forms.Form):
    """The personal integration: the company's own Dinero, with its API key."""

    api_key = forms.CharField(label=gettext_lazy("Dinero API key"), strip=True,
                              widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                              help_text=gettext_lazy("In Dinero: Settings → Integrations → API keys (“+ Ny API-nøgle”)."))
    organization_id = forms.CharField(label=gettext_lazy("Organisation id (firma-ID)"), max_length=20,
                                      help_text=gettext_lazy("Bottom left in Dinero, and after app.dinero.dk/ "
                                                             "in the address."))
    connect_anyway = forms.CharField(
        label=gettext_lazy("Connect anyway: why this organisation holds these books"), required=False,
        max_length=1000, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=gettext_lazy("Only when the organisation's CVR differs from the company's and you know it is "
                               "right; the note goes into the audit trail."))

    def __init__(self, *args, key_stored: bool = False, may_override: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if key_stored:  # leave it empty to keep the stored key
            self.fields["api_key"].required = False
        if not may_override:
            del self.fields["connect_anyway"]


def connect_view(request, company_id: int):
    """Visma Connect (the Connect button) or, for the company's own Dinero, the personal integration."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        raise Http404
    _allowed(request, company)
    integration = dinero_integration(company)
    if request.method == "POST" and request.POST.get("method") == "visma_connect":
        integration = visma_connect_start(company=company, actor=request.user)
        return HttpResponseRedirect(reverse("integrations:dinero_connect", args=[integration.pk]))
    initial = {"organization_id": (integration.settings or {}).get("organization_id", "")} if integration else {}
    stored_key = (integration.credentials or {}).get("api_key") if integration else ""
    may_override = request.user.has_perm(OVERRIDE_PERMISSION)
    form = ConnectForm(request.POST or None, initial=initial, key_stored=bool(stored_key), may_override=may_override)
    identity = None
    if request.method == "POST" and form.is_valid():
        try:
            integration = dinero_connect(company=company, api_key=form.cleaned_data["api_key"],
                                         organization_id=form.cleaned_data["organization_id"], actor=request.user,
                                         connect_anyway=form.cleaned_data.get("connect_anyway", ""))
        except SetupError as exc:
            identity = exc.identity
            form.add_error(exc.field_name if exc.field_name in form.fields else None, exc.message)
        else:
            messages.success(request, _("Dinero accepted the API key %(key)s for organisation %(org)s.")
                             % {"key": mask_secret(form.cleaned_data["api_key"] or stored_key),
                                "org": form.cleaned_data["organization_id"]})
            if (integration.remote_company or {}).get("same") is None:
                messages.warning(request, _("Dinero did not tell the organisation's CVR: check that “%(name)s” is "
                                            "%(company)s.") % {"name": integration.remote_company.get("name", ""),
                                                                "company": company})
            return HttpResponseRedirect(reverse("admin:dinero_setup_step", args=[integration.pk, "accounts"]))
    return _render(request, step="connect", title=_("Connect Dinero for %(company)s") % {"company": company},
                   form=form, company=company, stored_key=mask_secret(stored_key), visma_connect=True,
                   identity=identity, may_override=may_override,
                   visma_connected=bool(integration and (integration.settings or {}).get("auth") == AUTH_VISMA_CONNECT
                                        and (integration.credentials or {}).get("refresh_token")))


def visma_consent_received(request, integration: Integration):
    """After the core's callback stored the Visma Connect tokens: reconnected, or choose the organisation."""
    outcome, requeued = dinero_after_consent(integration=integration, actor=request.user)
    if outcome == "reconnected":
        messages.success(request, ngettext(
            "Dinero is connected again through Visma Connect; %(n)s waiting voucher was queued again.",
            "Dinero is connected again through Visma Connect; %(n)s waiting vouchers were queued again.",
            requeued) % {"n": requeued})
        return redirect("admin:integrations_integration_change", integration.pk)
    messages.success(request, _("Visma Connect consent received. Choose the Dinero organisation of %(company)s.")
                     % {"company": integration.company})
    return redirect("admin:dinero_setup_organisation", integration.pk)


class OrganisationForm(forms.Form):
    organization_id = forms.ChoiceField(label=gettext_lazy("Dinero organisation"), widget=forms.RadioSelect,
                                        help_text=gettext_lazy("The organisations your Visma login reaches. Choose "
                                                               "the one that belongs to this company."))
    accept_other_cvr = forms.BooleanField(
        required=False, label=gettext_lazy("The CVR differs from the company's, and this organisation is right"),
        help_text=gettext_lazy("Only when you know why, e.g. the company's CVR in Kontera is out of date. The choice "
                               "is recorded in the audit trail."))


def organisation_view(request, integration_id: int):
    """After the Visma Connect consent: which of the reachable organisations is the company's."""
    integration = Integration.objects.filter(pk=integration_id, system="dinero").select_related("company").first()
    if integration is None:
        raise Http404
    company = integration.company
    _allowed(request, company)
    title = _("Dinero organisation for %(company)s") % {"company": company}
    try:
        choices = dinero_organisations(integration=integration)
    except SetupError as exc:
        return _render(request, step="organisation", title=title, company=company, integration=integration,
                       refusal=[exc.message], reconnect_url=reverse("admin:dinero_setup_connect", args=[company.pk]))
    current = str((integration.settings or {}).get("organization_id") or "")
    form = OrganisationForm(request.POST or None, initial={"organization_id": current})
    form.fields["organization_id"].choices = [(c.remote_id, c.label) for c in choices]
    if request.method == "POST" and form.is_valid() and form.cleaned_data["accept_other_cvr"] \
            and not request.user.has_perm(OVERRIDE_PERMISSION):
        form.add_error("accept_other_cvr", _("Connecting to an organisation with another CVR needs the permission "
                                             "“connect to another organisation”; ask an administrator."))
    elif request.method == "POST" and form.is_valid():
        try:
            dinero_choose_organisation(integration=integration, organization_id=form.cleaned_data["organization_id"],
                                       actor=request.user, accept_other_cvr=form.cleaned_data["accept_other_cvr"])
        except SetupError as exc:
            form.add_error(exc.field_name if exc.field_name in form.fields else None, exc.message)
        else:
            messages.success(request, _("Dinero organisation %(org)s chosen for %(company)s.")
                             % {"org": form.cleaned_data["organization_id"], "company": company})
            return HttpResponseRedirect(reverse("admin:dinero_setup_step", args=[integration.pk, "accounts"]))
    return _render(request, step="organisation", title=title, form=form, company=company, integration=integration,
                   choices=choices, company_cvr=company.org_number)


def _account_choices(plan, *, kind=None, numbers=None):
    accounts = Account.objects.filter(plan=plan).order_by("number")
    if kind:
        accounts = accounts.filter(kind=kind)
    if numbers is not None:
        accounts = accounts.filter(number__in=numbers)
    return [(a.number, f"{a.number} {a.name}") for a in accounts]


class AccountsForm(forms.Form):
    error_account = forms.TypedChoiceField(coerce=int, label=gettext_lazy("Default category / error account"),
                                           help_text=gettext_lazy("Used for document lines without a category; the "
                                                                  "document is flagged so someone recategorises it."))
    import_chart = forms.BooleanField(required=False, initial=True,
                                      label=gettext_lazy("Import the whole Dinero chart of accounts as categories"),
                                      help_text=gettext_lazy("Off: keep categories by hand in Kontera."))


class InvoicesForm(forms.Form):
    invoice_counter_account = forms.TypedChoiceField(
        coerce=int, label=gettext_lazy("Default payment method / counter account for invoices"),
        help_text=gettext_lazy("Invoices become credit purchases in Dinero, paid later (e.g. 63000 Kreditorer)."))


class ReceiptsForm(forms.Form):
    receipt_payment_list = forms.ModelChoiceField(
        queryset=PaymentMethodList.objects.none(), label=gettext_lazy("Payment-method list for receipts"),
        help_text=gettext_lazy("Receipts become cash purchases paid from the chosen method's deposit account."))
    book_vouchers = forms.BooleanField(required=False, initial=True,
                                       label=gettext_lazy("Book vouchers in Dinero (off: leave them as drafts)"))


def step_view(request, integration_id: int, step: str):
    integration = Integration.objects.filter(pk=integration_id, system="dinero").select_related("company").first()
    if integration is None or step not in ("accounts", "invoices", "receipts"):
        raise Http404
    company = integration.company
    _allowed(request, company)
    plan = AccountPlan.objects.filter(company=company, system="dinero").first()
    info = (plan.company_info if plan else None) or {}
    conf = integration.settings or {}
    title = _("Dinero setup for %(company)s") % {"company": company}

    if step == "accounts":
        form = AccountsForm(request.POST or None, initial={"error_account": conf.get("error_account"),
                                                           "import_chart": conf.get("import_chart", True)})
        form.fields["error_account"].choices = _account_choices(
            plan, kind=AccountKind.PROFIT_AND_LOSS, numbers=info.get("purchase_accounts")) if plan else []
        choices = {"error_account": form.cleaned_data["error_account"],
                   "import_chart": form.cleaned_data["import_chart"]} if form.is_bound and form.is_valid() else None
        following = "invoices"
    elif step == "invoices":
        form = InvoicesForm(request.POST or None, initial={"invoice_counter_account":
                                                           conf.get("invoice_counter_account", 63000)})
        methods = [(m.account_number, _("%(method)s (payment method, account %(account)s)")
                    % {"method": m.name, "account": m.account_number})
                   for m in PaymentMethod.objects.filter(payment_list__company=company)]
        form.fields["invoice_counter_account"].choices = [
            (_("Payment methods"), methods),
            (_("Balance accounts in Dinero"), _account_choices(plan, kind=AccountKind.BALANCE) if plan else []),
        ]
        choices = ({"invoice_counter_account": form.cleaned_data["invoice_counter_account"]}
                   if form.is_bound and form.is_valid() else None)
        following = "receipts"
    else:
        form = ReceiptsForm(request.POST or None, initial={"receipt_payment_list": conf.get("receipt_payment_list"),
                                                           "book_vouchers": conf.get("book_vouchers", True)})
        lists = PaymentMethodList.objects.filter(company=company, methods__isnull=False).distinct()
        form.fields["receipt_payment_list"].queryset = lists
        choices = ({"receipt_payment_list": form.cleaned_data["receipt_payment_list"].pk,
                    "book_vouchers": form.cleaned_data["book_vouchers"]}
                   if form.is_bound and form.is_valid() else None)
        following = None

    if choices is not None:
        try:
            dinero_configure(integration=integration, actor=request.user, **choices)
            if following is None:
                dinero_finish(integration=integration, actor=request.user)
        except SetupError as exc:
            form.add_error(exc.field_name if exc.field_name in form.fields else None, exc.message)
        else:
            if following:
                return HttpResponseRedirect(reverse("admin:dinero_setup_step", args=[integration.pk, following]))
            messages.success(request, _("Dinero is set up for %(company)s: documents are synced from now on.")
                             % {"company": company})
            return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[integration.pk]))
    refusal = dinero_requirements(company=company) if step == "receipts" else []
    return _render(request, step=step, title=title, form=form, company=company, integration=integration,
                   refusal=refusal, finish=step == "receipts")
