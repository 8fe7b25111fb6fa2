"""The Nets Easy settings page and the problem-report form, in the guide's words and order."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.crypto import mask_secret

from .services.settings import DEFAULTS, nets_accounts

MODE_CHOICES = [
    ("per_sale", _("One voucher per sale (and per refund)")),
    ("per_day", _("One summary voucher per day")),
]


def _account_field(label, help_text="", required=True, initial=None):
    return forms.IntegerField(label=label, help_text=help_text, required=required, min_value=1000, max_value=9999,
                              initial=initial, widget=forms.NumberInput(attrs={"style": "width:6em"}))


class NetsSettingsForm(forms.Form):
    secret_key = forms.CharField(
        label=_("Nets Easy live secret key"), required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "size": 60}),
        help_text=_("From the Nets Easy portal (Company → Integration): it starts with “live-secret-key-”. "
                    "Stored encrypted; never shown again."))
    start_date = forms.DateField(
        label=_("Book sales from (year-month-day)"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Payouts paid out on or after this date are booked, each with the sales it settles (these can "
                    "be from the day or days before)."))
    sales_account_se = _account_field(_("Sales account for sales within Sweden"), _("BAS 3001."))
    sales_account_eu = _account_field(_("Sales account for sales within the EU"), _("BAS 3106."))
    sales_account_world = _account_field(_("Sales account for sales outside the EU"), _("BAS 3105."))
    receivable_account = _account_field(
        _("Receivable / reconciliation account for incoming card payments"),
        _("BAS 1580 “Fordringar för kontokort och kuponger” (the guide's example 1516 is “Tvistiga kundfordringar” "
          "in BAS). Register it as a mode of payment (Betalsätt) in Fortnox."), initial=DEFAULTS["receivable_account"])
    bank_account = _account_field(_("Bank account the payouts arrive on"), _("BAS 1930."),
                                  initial=DEFAULTS["bank_account"])
    fee_account = _account_field(_("Account for Nets Easy fees"),
                                 _("BAS 6040 “Kontokortsavgifter”. Nets charges no VAT on its fees."),
                                 initial=DEFAULTS["fee_account"])
    vat_account_25 = _account_field(_("Output VAT 25 %"), required=False, initial=DEFAULTS["vat_accounts"]["25"])
    vat_account_12 = _account_field(_("Output VAT 12 %"), required=False, initial=DEFAULTS["vat_accounts"]["12"])
    vat_account_6 = _account_field(_("Output VAT 6 %"), required=False, initial=DEFAULTS["vat_accounts"]["6"])
    sales_account_eu_b2b = _account_field(
        _("Sales account for EU companies without VAT (optional)"),
        _("BAS 3108. Used for a sale to a company in another EU country charged no VAT; empty: the EU account."),
        required=False)
    sales_series = forms.CharField(label=_("Voucher series for sales"), max_length=10, initial="A",
                                   widget=forms.TextInput(attrs={"style": "width:4em"}))
    payout_series = forms.CharField(label=_("Voucher series for payouts"), max_length=10, initial="A",
                                    widget=forms.TextInput(attrs={"style": "width:4em"}))
    mode = forms.ChoiceField(label=_("Vouchers"), choices=MODE_CHOICES, initial="per_sale",
                             widget=forms.RadioSelect)

    VAT_RATES = (("25", "vat_account_25"), ("12", "vat_account_12"), ("6", "vat_account_6"))

    def __init__(self, *args, integration=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.integration = integration
        stored = (integration.credentials or {}).get("secret_key") if integration else ""
        if stored:
            self.fields["secret_key"].help_text = _("Stored: %(masked)s. Leave empty to keep it.") % {
                "masked": mask_secret(stored)}
        if integration and not self.is_bound:
            # The accounts are the company's mapping rows; a draft not saved yet (the demo's prefill) fills the gaps.
            values = {**(integration.settings or {}), **nets_accounts(integration.company)}
            for name in self.fields:
                if name in values:
                    self.initial[name] = values[name]
            for rate, name in self.VAT_RATES:
                if rate in (values.get("vat_accounts") or {}):
                    self.initial[name] = values["vat_accounts"][rate]

    def values(self) -> dict:
        data = self.cleaned_data
        values = {name: data.get(name) for name in (
            "sales_account_se", "sales_account_eu", "sales_account_world", "sales_account_eu_b2b",
            "receivable_account", "bank_account", "fee_account", "sales_series", "payout_series", "mode")}
        start = data.get("start_date")
        values["start_date"] = start.isoformat() if isinstance(start, dt.date) else start
        values["vat_accounts"] = {rate: data[name] for rate, name in self.VAT_RATES if data.get(name)}
        return values

    def add_service_errors(self, errors: dict) -> None:
        for name, messages in errors.items():
            target = name if name in self.fields else None
            if name == "vat_accounts":
                target = None
            for message in messages:
                self.add_error(target, message)


class ProblemReportForm(forms.Form):
    text = forms.CharField(
        label=_("What happened?"), max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        help_text=_("A few words are enough. Kontera adds the integration's state and recent errors — never the "
                    "secret key or any other secret."))


class SyncForm(forms.Form):
    from_date = forms.DateField(label=_("Read payouts from (optional)"), required=False,
                                widget=forms.DateInput(attrs={"type": "date"}),
                                help_text=_("Empty: from the start date in the settings."))
