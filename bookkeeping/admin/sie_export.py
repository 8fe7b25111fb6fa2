"""The SIE 4 export page on the voucher list: what was posted to Fortnox, per company and period."""

from __future__ import annotations

import datetime as dt
import tempfile

from django import forms
from django.http import FileResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from ..models import Company
from ..selectors.companies import companies_for_user
from ..services.sie_export import sie_export_write


class SieExportForm(forms.Form):
    company = forms.ModelChoiceField(queryset=Company.objects.none(), label=_("Company"))
    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies_for_user(user)


def sie_export_view(model_admin, request):
    form = SieExportForm(request.POST or None, user=request.user,
                         initial={"date_from": dt.date.today().replace(month=1, day=1), "date_to": dt.date.today()})
    if request.method == "POST" and form.is_valid():
        company = form.cleaned_data["company"]
        # Written whole to a temporary file first (memory stays flat; a voucher that cannot be written
        # stops it before anything is sent), then streamed from there; the file goes when it is closed.
        out = tempfile.TemporaryFile()
        try:
            sie_export_write(company=company, date_from=form.cleaned_data["date_from"],
                             date_to=form.cleaned_data["date_to"], out=out)
        except BaseException:
            out.close()
            raise
        out.seek(0)
        name = f"{company.slug}_{form.cleaned_data['date_from']:%Y%m%d}-{form.cleaned_data['date_to']:%Y%m%d}.se"
        return FileResponse(out, as_attachment=True, filename=name, content_type="application/octet-stream")
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta,
               "title": _("Export posted vouchers as SIE 4"), "form": form}
    return TemplateResponse(request, "admin/bookkeeping/voucher/sie_export.html", context)
