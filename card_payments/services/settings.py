"""The Nets Easy integration's settings: cleaned (types, defaults), typed (``NetsConfig``) and checked
against the company's imported Fortnox chart. No HTTP here.

Which account is used lives in the account mappings, like every flow's accounts: the sales account
per region (kind ``sales_region``, keys se/eu/world/eu_b2b), the output VAT account per rate
(``output_vat``, keys 25/12/6 …), the fee, reconciliation and bank accounts (``fee``, ``receivable``,
``bank``, each the kind's default row ``*``). The settings page edits exactly those rows; the
integration's own settings keep the rest (start date, series, one voucher per sale or per day)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy

from bookkeeping import rules
from bookkeeping.models import DEFAULT_KEY, MappingKind
from bookkeeping.selectors.mappings import MappingSnapshot, mapping_snapshot
from bookkeeping.selectors.plans import plan_snapshot
from integrations.base import rate_key
from integrations.models import Integration, IntegrationStatus
from wording import Msg

logger = logging.getLogger("kontera.netseasy")

SOURCE = "netseasy"
TARGET = "fortnox"
HOME_CURRENCY = "SEK"
ZERO = Decimal("0.00")
ONE = Decimal("1.00")
# BAS 1516 is "Tvistiga kundfordringar" (disputed receivables): the DIBS guide's example, not a card account.
DISPUTED_RECEIVABLES = 1516
# Ledger texts go into a Swedish ledger (Fortnox); they are bookkeeping content, not the admin's UI.
TEST_DESCRIPTION = "Kontera TESTVERIFIKATION – Nets Easy-koppling (debet och kredit tar ut varandra på varje konto)"

FIELD_LABELS = {
    "start_date": gettext_lazy("start date"),
    "sales_account_se": gettext_lazy("sales account, Sweden"),
    "sales_account_eu": gettext_lazy("sales account, EU"),
    "sales_account_world": gettext_lazy("sales account, outside the EU"),
    "sales_account_eu_b2b": gettext_lazy("sales account, EU companies without VAT"),
    "receivable_account": gettext_lazy("reconciliation account"),
    "bank_account": gettext_lazy("bank account"),
    "fee_account": gettext_lazy("fee account"),
    "vat_accounts": gettext_lazy("output VAT accounts"),
    "sales_series": gettext_lazy("voucher series for sales"),
    "payout_series": gettext_lazy("voucher series for payouts"),
}


@dataclass(frozen=True)
class NetsConfig:
    """A Nets Easy integration's settings, typed."""

    start_date: dt.date
    sales_accounts: dict[str, int]  # region -> account
    sales_account_eu_b2b: int | None
    receivable_account: int
    bank_account: int
    fee_account: int
    vat_accounts: dict[str, int]  # rate key ("25") -> account
    sales_series: str
    payout_series: str
    mode: str

    @classmethod
    def of(cls, integration: Integration, *, snapshot: MappingSnapshot | None = None) -> NetsConfig:
        """The stored settings with the accounts from the mapping rows (one read of the mappings)."""
        values = clean_stored_settings(integration.settings or {})
        snapshot = snapshot or mapping_snapshot(integration.company, TARGET)
        regions = {region: snapshot.row_for(K.SALES_REGION, region)
                   for region in (rules.REGION_SWEDEN, rules.REGION_EU, rules.REGION_WORLD)}
        b2b = snapshot.exact(K.SALES_REGION, "eu_b2b")
        return cls(
            start_date=dt.date.fromisoformat(values["start_date"]),
            sales_accounts={region: row.account for region, row in regions.items() if row is not None},
            sales_account_eu_b2b=b2b.account if b2b is not None else None,
            receivable_account=snapshot.account_for(K.RECEIVABLE),
            bank_account=snapshot.account_for(K.BANK),
            fee_account=snapshot.account_for(K.FEE),
            vat_accounts={rate_key_of(key): row.account for key, row in snapshot.rows_of(K.OUTPUT_VAT).items()
                          if rate_key_of(key)},
            sales_series=values["sales_series"],
            payout_series=values["payout_series"],
            mode=values["mode"],
        )

    def missing(self) -> list[tuple[str, str]]:
        """The accounts every payout needs that have no mapping row (kind, key)."""
        return [(kind, DEFAULT_KEY) for kind, number in ((K.RECEIVABLE, self.receivable_account),
                                                           (K.BANK, self.bank_account), (K.FEE, self.fee_account))
                if number is None]

    def all_accounts(self) -> list[int]:
        numbers = [self.receivable_account, self.bank_account, self.fee_account, *self.sales_accounts.values(),
                   *([self.sales_account_eu_b2b] if self.sales_account_eu_b2b else []), *self.vat_accounts.values()]
        return list(OrderedDict.fromkeys(numbers))


def fortnox_ready(company) -> tuple[bool, str]:
    """Nets Easy books into Fortnox: the company needs a connected Fortnox with an imported chart."""
    fortnox = Integration.objects.filter(company=company, system=TARGET).first()
    if fortnox is None or fortnox.status in (IntegrationStatus.SETTING_UP,):
        return False, Msg("Connect Fortnox for %(company)s first (Integrations → Fortnox → Connect Fortnox); "
                        "Nets Easy sales are booked there.", company=company)
    if not plan_snapshot(company, TARGET).imported:
        return False, Msg("Import the Fortnox chart of accounts for %(company)s first (Integrations → Fortnox → "
                        "Import master data), so the accounts can be checked.", company=company)
    return True, ""


def settings_problems(*, company, values: dict) -> tuple[dict[str, str], list[str]]:
    """Check cleaned settings against the company's imported Fortnox chart: (errors per field, warnings)."""
    errors: dict[str, str] = {}
    warnings: list[str] = []
    ready, reason = fortnox_ready(company)
    if not ready:
        return {"__all__": reason}, warnings
    plan = plan_snapshot(company, TARGET)

    def check(name: str, number: int | None, kind: str) -> None:
        if number is None:
            return
        # The one rule every mapping row of this kind obeys (the import and the admin check the same).
        problems = rules.check_mapping_account(plan, kind, number)
        if problems:
            suffix = " " + Msg("(Fortnox chart of accounts)") if problems[0].code in ("unknown_account",
                                                                                  "inactive_account") else ""
            errors[name] = str(problems[0]) + suffix

    for name, (kind, _key) in ACCOUNT_ROWS.items():
        check(name, values.get(name), kind)
    for rate, number in sorted((values.get("vat_accounts") or {}).items()):
        before = len(errors)
        check("vat_accounts", number, K.OUTPUT_VAT)
        if len(errors) > before:
            errors["vat_accounts"] = Msg("VAT %(rate)s %%: %(problem)s", rate=rate, problem=errors["vat_accounts"])
    for name in ("sales_series", "payout_series"):
        problems = rules.check_series(plan, values.get(name, ""))
        if problems:
            errors[name] = str(problems[0])
    if values.get("receivable_account") and values.get("receivable_account") == values.get("bank_account"):
        errors["bank_account"] = Msg("The bank account must differ from the reconciliation account.")
    if values.get("receivable_account") == DISPUTED_RECEIVABLES:
        warnings.append(Msg("Account 1516 is “Tvistiga kundfordringar” (disputed receivables) in BAS. The guide "
                          "uses it as an example, but card payments on their way to the bank belong on 1580 "
                          "“Fordringar för kontokort och kuponger”. 1516 is allowed if your accountant wants it."))
    start = values.get("start_date")
    if start and dt.date.fromisoformat(start) > timezone.localdate():
        warnings.append(Msg("The start date is in the future: nothing is booked before it."))
    return errors, warnings


# --- cleaning: types, defaults and required fields (no database, no HTTP) ----------------------


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
# The settings page's accounts: each is one mapping row (kind, key) of the company's Fortnox mappings.
K = MappingKind
ACCOUNT_ROWS: dict[str, tuple[str, str]] = {
    "sales_account_se": (K.SALES_REGION.value, rules.REGION_SWEDEN),
    "sales_account_eu": (K.SALES_REGION.value, rules.REGION_EU),
    "sales_account_world": (K.SALES_REGION.value, rules.REGION_WORLD),
    "sales_account_eu_b2b": (K.SALES_REGION.value, "eu_b2b"),
    "receivable_account": (K.RECEIVABLE.value, DEFAULT_KEY),
    "bank_account": (K.BANK.value, DEFAULT_KEY),
    "fee_account": (K.FEE.value, DEFAULT_KEY),
}
PAGE_RATES = ("25", "12", "6")  # the output VAT rates the settings page shows
STORED_KEYS = ("start_date", "sales_series", "payout_series", "mode", *INTERNAL_KEYS)
MAPPING_NOTE = "Nets Easy"


def rate_key_of(value) -> str | None:
    return _rate(value)


def clean_secret_key(value: str) -> str:
    key = (value or "").strip()
    if "-checkout-key-" in key:
        raise ValidationError(Msg("That is a checkout key. Paste the secret key (it starts with "
                                "“live-secret-key-”) from the Nets Easy portal."))
    if not SECRET_KEY_RE.match(key):
        raise ValidationError(Msg("A Nets Easy secret key looks like “live-secret-key-” followed by 32 "
                                "hexadecimal characters."))
    return key


def _account(value, name: str, errors: dict) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        errors[name] = Msg("An account number is four digits, e.g. 1580.")
        return None
    if not 1000 <= number <= 9999:
        errors[name] = Msg("An account number is four digits, e.g. 1580.")
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
    return rate_key(int(percent * 100))


def clean_settings(values: dict) -> dict:
    """The settings page's values: types, defaults and required fields (no database, no HTTP). Raises
    ValidationError per field. The accounts among them are stored as mapping rows (``split_settings``)."""
    values = dict(values or {})
    errors: dict[str, str] = {}
    cleaned: dict = {}
    _clean_stored(values, cleaned, errors)
    _clean_accounts(values, cleaned, errors)
    for name in REQUIRED_FIELDS:
        if name not in cleaned and name not in errors:
            errors[name] = Msg("This field is required.")
    if errors:
        raise ValidationError({name: [message] for name, message in errors.items()})
    return cleaned


def clean_stored_settings(values: dict) -> dict:
    """What the integration itself stores (start date, series, mode); accounts are mapping rows."""
    values = dict(values or {})
    errors: dict[str, str] = {}
    cleaned: dict = {}
    _clean_stored(values, cleaned, errors)
    if "start_date" not in cleaned and "start_date" not in errors:
        errors["start_date"] = Msg("This field is required.")
    if errors:
        raise ValidationError({name: [message] for name, message in errors.items()})
    return cleaned


def split_settings(cleaned: dict) -> tuple[dict, dict[tuple[str, str], dict | None]]:
    """Cleaned page values → (the integration's stored settings, the mapping rows to set: None deletes)."""
    stored = {key: value for key, value in cleaned.items() if key in STORED_KEYS}
    rows: dict[tuple[str, str], dict | None] = {}
    for name, row in ACCOUNT_ROWS.items():
        number = cleaned.get(name)
        rows[row] = {"account_number": number, "note": MAPPING_NOTE} if number else None
    vat = dict(cleaned.get("vat_accounts") or {})
    for rate in PAGE_RATES:
        rows[(K.OUTPUT_VAT.value, rate)] = None  # a rate the page leaves empty is removed
    for rate, number in vat.items():
        rows[(K.OUTPUT_VAT.value, rate)] = {"account_number": number, "note": MAPPING_NOTE}
    return stored, rows


def nets_accounts(company, *, snapshot: MappingSnapshot | None = None) -> dict:
    """The accounts as the settings page shows them, read from the mapping rows."""
    snapshot = snapshot or mapping_snapshot(company, TARGET)
    values: dict = {}
    for name, (kind, key) in ACCOUNT_ROWS.items():
        row = snapshot.exact(kind, key) if key != DEFAULT_KEY else snapshot.default(kind)
        if row is not None and row.account:
            values[name] = row.account
    values["vat_accounts"] = {rate_key_of(key): row.account for key, row in snapshot.rows_of(K.OUTPUT_VAT).items()
                              if rate_key_of(key) and row.account}
    return values


def _clean_stored(values: dict, cleaned: dict, errors: dict) -> None:
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
            errors["start_date"] = Msg("Give the date as year-month-day, e.g. 2024-05-01.")

    for name in ("sales_series", "payout_series"):
        series = str(values.get(name) or DEFAULTS[name]).strip().upper()
        if not re.fullmatch(r"[A-Z0-9]{1,10}", series):
            errors[name] = Msg("A voucher series is a short code such as A.")
        cleaned[name] = series

    mode = str(values.get("mode") or DEFAULTS["mode"]).strip()
    if mode not in MODES:
        errors["mode"] = Msg("Choose one voucher per sale (per_sale) or one summary voucher per day (per_day).")
    cleaned["mode"] = mode


def _clean_accounts(values: dict, cleaned: dict, errors: dict) -> None:
    for name in ACCOUNT_FIELDS + OPTIONAL_ACCOUNT_FIELDS:
        number = _account(values.get(name, DEFAULTS.get(name)), name, errors)
        if number is not None:
            cleaned[name] = number

    vat_in = values.get("vat_accounts")
    vat_in = DEFAULTS["vat_accounts"] if vat_in in (None, "", {}) else vat_in
    if not isinstance(vat_in, dict):
        errors["vat_accounts"] = Msg("VAT accounts are given per rate, e.g. {\"25\": 2611}.")
    else:
        vat_accounts = {}
        for rate, account in vat_in.items():
            key = _rate(rate)
            number = _account(account, "vat_accounts", errors)
            if key is None:
                errors["vat_accounts"] = Msg("A VAT rate is a percentage such as 25, 12 or 6.")
            elif number is not None:
                vat_accounts[key] = number
        cleaned["vat_accounts"] = vat_accounts


def integration_settings_check(settings: dict, *, company=None) -> dict:
    """For the generic integration form (registered in ``card_payments.admin``). A change that affects
    booking must go through the settings page instead, which sends a new test voucher and waits for OK.
    Accounts are not stored here at all (they are mapping rows): one given with another value is refused."""
    settings = dict(settings or {})
    accounts = {name: settings.pop(name) for name in (*ACCOUNT_ROWS, "vat_accounts") if name in settings}
    cleaned = clean_stored_settings(settings)
    if company is not None:
        stored = Integration.objects.filter(company=company, system=SOURCE).first()
        current = nets_accounts(company)
        wrong = sorted(name for name, value in accounts.items() if value != current.get(name))
        if wrong:
            raise ValidationError(Msg("Change %(fields)s on the “Nets Easy settings” page: a change there "
                                    "sends a new test voucher and waits for OK.", fields=", ".join(wrong)))
        if stored is not None and stored.settings:
            try:
                before = clean_stored_settings(stored.settings)
            except ValidationError:
                before = dict(stored.settings)
            changed = sorted(k for k in cleaned if k not in INTERNAL_KEYS and cleaned.get(k) != before.get(k))
            if changed:
                raise ValidationError(Msg("Change %(fields)s on the “Nets Easy settings” page: a change there "
                                        "sends a new test voucher and waits for OK.", fields=", ".join(changed)))
        errors, _warnings = settings_problems(company=company, values=cleaned)
        if errors:
            raise ValidationError({name: [message] for name, message in errors.items()})
    return cleaned
