"""The Dinero setup wizard, step by step as the guide describes it (requirements, company, API key
and organisation id, error account and chart, invoices, receipts, finish). Every step calls the
same services as ``manage.py dinero_setup``; the API key goes straight into the encrypted
credentials and is never put in the session or shown again."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bookkeeping.models import Account, AccountKind, AccountPlan, Company, Country, PaymentMethod, PaymentMethodList
from bookkeeping.selectors.companies import companies_for_user, user_can_act_on
from bookkeeping.services.connection_identity import OVERRIDE_PERMISSION
from integrations.crypto import mask_secret
from integrations.models import Integration

from .services.common import dinero_integration
from .services.dinero_setup import SetupError, dinero_configure, dinero_connect, dinero_finish, dinero_requirements

STEPS = (
    ("requirements", gettext_lazy("Requirements")),
    ("connect", gettext_lazy("API key and organisation")),
    ("accounts", gettext_lazy("Error account and chart")),
    ("invoices", gettext_lazy("Invoices")),
    ("receipts", gettext_lazy("Receipts")),
)


def _allowed(request, company) -> None:
    user = request.user
    if not user_can_act_on(user, company):
        raise PermissionDenied
    if not (user.is_superuser or user.has_perm("integrations.change_integration")
            or user.has_perm("integrations.add_integration")):
        raise PermissionDenied


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
    form = CompanyForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        company = form.cleaned_data["company"]
        _allowed(request, company)
        return HttpResponseRedirect(reverse("admin:dinero_setup_connect", args=[company.pk]))
    return _render(request, step="requirements", title=_("Set up Dinero"), form=form,
                   requirements=_requirements_table(request.user))


class ConnectForm(forms.Form):
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
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        raise Http404
    _allowed(request, company)
    integration = dinero_integration(company)
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
    return _render(request, step="connect", title=_("Dinero: API key and organisation for %(company)s")
                   % {"company": company}, form=form, company=company, stored_key=mask_secret(stored_key),
                   identity=identity, may_override=may_override)


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
