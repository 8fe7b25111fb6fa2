"""The unmapped-values page: per company and flow, the source values seen without a mapping, how often,
and the vouchers, documents or payouts waiting on them; map them right here. Saving a mapping queues
one re-evaluation for the company, and what waited goes on by itself."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Company, MappingKind
from ..selectors.companies import companies_for_user, user_can_act_on
from ..selectors.mappings import (
    FLOWS,
    Gap,
    mapping_account_choices,
    mapping_snapshot,
    mapping_suggestions,
    plan_vat_codes,
    unmapped_gaps,
)
from ..services.mappings import account_mapping_save

K = MappingKind
VIEW_PERMISSION = "bookkeeping.view_accountmapping"
CHANGE_PERMISSIONS = ("bookkeeping.change_accountmapping", "bookkeeping.add_accountmapping")


class MapValueForm(forms.Form):
    """One unmapped value → its account (only valid, active accounts of the right kind are offered)."""

    system = forms.CharField(widget=forms.HiddenInput)
    kind = forms.ChoiceField(choices=K.choices, widget=forms.HiddenInput)
    key = forms.CharField(max_length=100, widget=forms.HiddenInput)
    account_number = forms.TypedChoiceField(label=gettext_lazy("account"), coerce=int, required=False)
    cost_centre = forms.ChoiceField(label=gettext_lazy("cost centre"), required=False)
    series = forms.ChoiceField(label=gettext_lazy("voucher series"), required=False)
    vat_code = forms.ChoiceField(label=gettext_lazy("VAT code"), required=False)

    def __init__(self, *args, snapshot=None, kind: str = "", vat_codes=(), suggested: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        plan = snapshot.plan
        blank = [("", "—")]
        self.fields["account_number"].choices = blank + [
            (a.number, f"{a.number} {a.name}") for a in mapping_account_choices(plan, kind)]
        self.fields["cost_centre"].choices = blank + [(code, code) for code, active in sorted(
            plan.cost_centres.items()) if active]
        self.fields["series"].choices = blank + [(code, code) for code, manual in sorted(plan.series.items()) if manual]
        self.fields["vat_code"].choices = blank + [(code, code) for code in sorted(vat_codes)]
        if suggested and not self.is_bound:
            self.initial["account_number"] = suggested
        # Show what the kind needs: a property a cost centre, an owner a series, a Dinero category its VAT code.
        shown = {K.PROPERTY: ("cost_centre",), K.OWNER: ("series",)}.get(
            kind, ("account_number", "vat_code") if kind == K.EXPENSE_CATEGORY else ("account_number", "cost_centre"))
        for name in ("account_number", "cost_centre", "series", "vat_code"):
            if name not in shown:
                self.fields[name].widget = forms.HiddenInput()
        if not vat_codes:
            self.fields["vat_code"].widget = forms.HiddenInput()


def _allowed(request, company, *, change: bool) -> None:
    if company is None or not user_can_act_on(request.user, company):
        raise PermissionDenied
    needed = CHANGE_PERMISSIONS if change else (VIEW_PERMISSION,)
    if not all(request.user.has_perm(name) for name in needed):
        raise PermissionDenied


def _page_url(company, flow_key: str) -> str:
    return reverse("admin:bookkeeping_accountmapping_unmapped") + "?" + urlencode(
        {"company": company.pk, "flow": flow_key})


def _item_url(flow, item) -> str:
    if item.url:
        return item.url
    url = flow.item_url(item) if flow.item_url is not None else ""
    if not url and item.kind == "voucher":
        url = reverse("admin:bookkeeping_voucher_change", args=[item.pk])
    return url


def _gap_rows(company, flow, gaps: list[Gap], bound: dict | None = None) -> list[dict]:
    snapshots, vat_codes, rows = {}, {}, []
    for gap in gaps:
        snapshot = snapshots.get(gap.system) or snapshots.setdefault(gap.system, mapping_snapshot(company, gap.system))
        codes = vat_codes.get(gap.system)
        if codes is None:
            codes = vat_codes[gap.system] = plan_vat_codes(company, gap.system)
        suggestions = mapping_suggestions(snapshot, gap.kind, gap.key)
        is_bound = bound is not None and (bound.get("kind"), bound.get("key"), bound.get("system")) == (
            gap.kind, gap.key, gap.system)
        form = MapValueForm(bound if is_bound else None, snapshot=snapshot, kind=gap.kind,
                            vat_codes=codes if gap.kind == K.EXPENSE_CATEGORY else (),
                            suggested=suggestions[0].account if suggestions else None,
                            initial={"system": gap.system, "kind": gap.kind, "key": gap.key})
        if is_bound:
            form.is_valid()
        for item in gap.items:
            item.url = _item_url(flow, item)
        rows.append({"gap": gap, "form": form, "suggestions": suggestions})
    return rows


def unmapped_view(model_admin, request):
    user = request.user
    companies = companies_for_user(user).order_by("name")
    wanted = request.GET.get("company") or request.POST.get("company") or ""
    company = companies.filter(pk=wanted).first() if wanted.isdigit() else None
    if wanted and company is None:
        raise PermissionDenied  # not a company this user serves
    flows = list(FLOWS.values())
    flow = FLOWS.get(request.GET.get("flow") or request.POST.get("flow") or "") or (flows[0] if flows else None)
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta,
               "title": _("Values without a mapping"), "companies": companies, "company": company,
               "flows": flows, "flow": flow}
    if company is None or flow is None:
        if not user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied
        context["overview"] = [
            {"company": c, "flows": [(f, len(unmapped_gaps(company=c, flow=f))) for f in flows]}
            for c in companies[:200]]
        return TemplateResponse(request, "admin/bookkeeping/accountmapping/unmapped.html", context)

    bound = None
    if request.method == "POST":
        _allowed(request, company, change=True)
        bound = request.POST
        saved = _save(request, company, flow, bound)
        if saved:
            return HttpResponseRedirect(_page_url(company, flow.key))
    else:
        _allowed(request, company, change=False)
    gaps = unmapped_gaps(company=company, flow=flow)
    context.update({"rows": _gap_rows(company, flow, gaps, bound), "page_url": _page_url(company, flow.key),
                    "can_change": all(user.has_perm(name) for name in CHANGE_PERMISSIONS)})
    return TemplateResponse(request, "admin/bookkeeping/accountmapping/unmapped.html", context)


def _save(request, company: Company, flow, data) -> bool:
    kind, key, system = data.get("kind", ""), data.get("key", ""), data.get("system", "")
    if kind not in flow.kinds or system != flow.system:
        messages.error(request, _("That value does not belong to this flow."))
        return False
    try:
        mapping = account_mapping_save(
            company=company, system=system, kind=kind, key=key, account_number=data.get("account_number") or None,
            cost_centre=data.get("cost_centre", ""), vat_code=data.get("vat_code", ""),
            series=data.get("series", ""), actor=request.user)
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, f"{key}: {error}")
        return False
    messages.success(request, _("“%(key)s” is mapped (%(mapping)s). What waited on it is re-evaluated now and "
                                "goes on by itself.") % {"key": key, "mapping": mapping})
    return True
