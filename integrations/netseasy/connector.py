"""Nets Easy behind the connector interface. A *source*: payouts and payments come in, nothing is posted.

The settings a Nets Easy integration carries (all but the secret key, which lives encrypted in
``Integration.credentials["secret_key"]``) are cleaned here, in one function, for the admin's
settings page, the generic integration form and ``manage.py netseasy_setup`` alike; the checks that
need the company's imported Fortnox chart live in ``bookkeeping.services.payouts``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from ..base import ConnectionInfo, MasterData, NotSupported, RemoteVoucher, VoucherDTO
from . import mapping
from .client import NetsEasyClient

MODES = ("per_sale", "per_day")
SECRET_KEY_RE = re.compile(r"^(live|test)-secret-key-[0-9a-fA-F]{16,64}$")

DEFAULTS = {
    "receivable_account": 1580,  # BAS: Fordringar för kontokort och kuponger
    "bank_account": 1930,
    "fee_account": 6040,  # BAS: Kontokortsavgifter
    "vat_accounts": {"25": 2611, "12": 2621, "6": 2631},
    "sales_series": "A",
    "payout_series": "A",
    "mode": "per_sale",
}
ACCOUNT_FIELDS = ("sales_account_se", "sales_account_eu", "sales_account_world", "receivable_account",
                  "bank_account", "fee_account")
OPTIONAL_ACCOUNT_FIELDS = ("sales_account_eu_b2b",)
REQUIRED_FIELDS = ("start_date", "sales_account_se", "sales_account_eu", "sales_account_world")
# Kept as they are by the cleaning: the activation and sync bookkeeping Kontera writes itself.
INTERNAL_KEYS = ("activation", "last_sync")


def clean_secret_key(value: str) -> str:
    key = (value or "").strip()
    if "-checkout-key-" in key:
        raise ValidationError(_("That is a checkout key. Paste the secret key (it starts with "
                                "“live-secret-key-”) from the Nets Easy portal."))
    if not SECRET_KEY_RE.match(key):
        raise ValidationError(_("A Nets Easy secret key looks like “live-secret-key-” followed by 32 "
                                "hexadecimal characters."))
    return key


def _account(value, name: str, errors: dict) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        errors[name] = _("An account number is four digits, e.g. 1580.")
        return None
    if not 1000 <= number <= 9999:
        errors[name] = _("An account number is four digits, e.g. 1580.")
        return None
    return number


def _rate(value) -> str | None:
    """A rate as staff write it ("25", "12,5") -> the settings key ("25", "12.5")."""
    try:
        percent = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None
    if not 0 < percent < 100:
        return None
    return mapping.rate_key(int(percent * 100))


def clean_settings(values: dict) -> dict:
    """Types, defaults and required fields (no database, no HTTP). Raises ValidationError per field."""
    values = dict(values or {})
    errors: dict[str, str] = {}
    cleaned: dict = {}
    for key in INTERNAL_KEYS:
        if key in values:
            cleaned[key] = values[key]

    raw_start = values.get("start_date")
    if isinstance(raw_start, dt.date):
        cleaned["start_date"] = raw_start.isoformat()
    elif raw_start:
        try:
            cleaned["start_date"] = dt.date.fromisoformat(str(raw_start).strip()).isoformat()
        except ValueError:
            errors["start_date"] = _("Give the date as year-month-day, e.g. 2024-05-01.")

    for name in ACCOUNT_FIELDS + OPTIONAL_ACCOUNT_FIELDS:
        number = _account(values.get(name, DEFAULTS.get(name)), name, errors)
        if number is not None:
            cleaned[name] = number

    vat_in = values.get("vat_accounts")
    vat_in = DEFAULTS["vat_accounts"] if vat_in in (None, "", {}) else vat_in
    if not isinstance(vat_in, dict):
        errors["vat_accounts"] = _("VAT accounts are given per rate, e.g. {\"25\": 2611}.")
    else:
        vat_accounts = {}
        for rate, account in vat_in.items():
            key = _rate(rate)
            number = _account(account, "vat_accounts", errors)
            if key is None:
                errors["vat_accounts"] = _("A VAT rate is a percentage such as 25, 12 or 6.")
            elif number is not None:
                vat_accounts[key] = number
        cleaned["vat_accounts"] = vat_accounts

    for name in ("sales_series", "payout_series"):
        series = str(values.get(name) or DEFAULTS[name]).strip().upper()
        if not re.fullmatch(r"[A-Z0-9]{1,10}", series):
            errors[name] = _("A voucher series is a short code such as A.")
        cleaned[name] = series

    mode = str(values.get("mode") or DEFAULTS["mode"]).strip()
    if mode not in MODES:
        errors["mode"] = _("Choose one voucher per sale (per_sale) or one summary voucher per day (per_day).")
    cleaned["mode"] = mode

    for name in REQUIRED_FIELDS:
        if name not in cleaned and name not in errors:
            errors[name] = _("This field is required.")
    if errors:
        raise ValidationError({name: [message] for name, message in errors.items()})
    return cleaned


class NetsEasyConnector:
    system = "netseasy"
    label = "Nets Easy"
    is_target = False
    secret_fields: tuple[str, ...] = ("secret_key",)

    def __init__(self, integration, *, session=None):
        self.integration = integration
        self.client = NetsEasyClient((integration.credentials or {}).get("secret_key", ""), session=session)

    # --- settings and admin ---------------------------------------------------------------

    @classmethod
    def validate_settings(cls, settings: dict, *, company=None) -> dict:
        """For the generic integration form. A change that affects booking must go through the settings
        page instead, which sends a new test voucher and waits for OK again."""
        cleaned = clean_settings(settings)
        if company is not None:
            from ..models import Integration

            stored = Integration.objects.filter(company=company, system=cls.system).first()
            if stored is not None and stored.settings:
                try:
                    before = clean_settings(stored.settings)
                except ValidationError:
                    before = dict(stored.settings)
                changed = sorted(k for k in cleaned if k not in INTERNAL_KEYS and cleaned.get(k) != before.get(k))
                if changed:
                    raise ValidationError(_("Change %(fields)s on the “Nets Easy settings” page: a change there "
                                            "sends a new test voucher and waits for OK.")
                                          % {"fields": ", ".join(changed)})
            from bookkeeping.services.payouts import settings_problems  # the chart lives in the domain

            errors, _warnings = settings_problems(company=company, values=cleaned)
            if errors:
                raise ValidationError({name: [message] for name, message in errors.items()})
        return cleaned

    @classmethod
    def admin_tools(cls, integration, request) -> list[tuple[str, str]]:
        from django.urls import reverse

        from ..models import IntegrationStatus

        def url(name):
            return reverse(f"admin:integrations_netspayout_{name}", args=[integration.company_id])

        tools = [(_("Nets Easy settings"), url("settings"))]
        if integration.status == IntegrationStatus.AWAITING_CONFIRMATION:
            tools.append((_("OK – start automatic booking"), url("confirm")))
        tools += [
            (_("Sync payouts now"), url("sync")),
            (_("Payouts and reconciliation"),
             reverse("admin:integrations_netspayout_changelist") + f"?company__id__exact={integration.company_id}"),
            (_("Report a problem"), url("report")),
        ]
        return tools

    # --- the source side ------------------------------------------------------------------

    def check_connection(self) -> ConnectionInfo:
        today = dt.date.today()
        self.client.get("report/v1/payouts", fromDate=today.isoformat(), toDate=today.isoformat(), pageSize=1)
        return ConnectionInfo(ok=True, message=_("Nets Easy accepts the secret key."))

    def list_payouts(self, from_date: dt.date, to_date: dt.date) -> list[mapping.PayoutDTO]:
        return [mapping.payout_dto(p) for p in self.client.list_payouts(from_date, to_date)]

    def payout_details(self, payout_id: str) -> tuple[mapping.PayoutDTO, list[mapping.PaymentActionDTO]]:
        body = self.client.payout_details(payout_id)
        payout = mapping.payout_dto(body)
        actions = [mapping.action_dto(a, currency=payout.currency) for a in body.get("paymentActions") or []]
        return payout, actions

    def get_payment(self, payment_id: str) -> mapping.PaymentDTO:
        return mapping.payment_dto(self.client.get_payment(payment_id))

    # --- not a target ----------------------------------------------------------------------

    def import_master_data(self, *, progress=None) -> MasterData:
        raise NotSupported(_("Nets Easy has no chart of accounts; it is a source of payments."))

    def post_voucher(self, voucher: VoucherDTO) -> RemoteVoucher:
        raise NotSupported(_("Vouchers are not posted to Nets Easy."))

    def find_voucher(self, voucher: VoucherDTO) -> RemoteVoucher | None:
        raise NotSupported(_("Vouchers are not posted to Nets Easy."))

    def update_voucher(self, voucher: VoucherDTO, previous: RemoteVoucher) -> RemoteVoucher:
        raise NotSupported(_("Vouchers are not posted to Nets Easy."))
