"""Nets Easy card payments into Fortnox: settings, activation, sync, booking, reconciliation, reports.

The accounting, in short (the choices are explained where they are made):

- Each CHARGE: debit the reconciliation account (1580) with the gross; credit the customer region's
  sales account with the net and the output VAT account per rate with the VAT, as the order lines
  say. A REFUND is the same voucher reversed. A DEPOSIT (the merchant paid Nets): debit the
  reconciliation account, credit the bank. Per sale, or one summary voucher per day.
- Each payout: debit the bank with the payout amount, debit the fee account with the fees, credit
  the reconciliation account with the gross (charges − refunds + deposits). The reconciliation
  account therefore nets to zero for every settled payout; the residual is checked and shown.
- Fees carry no VAT: Nets reports ``feeTaxRate``/``feeTaxAmount`` as always 0 (card acquiring is a
  VAT-exempt financial service), so the fee is booked gross on 6040 with no VAT row.

Exactly once: every payout and payment action is stored once (unique by its Nets id per company)
and claimed in the same short transaction that creates its voucher (itself unique by company,
source system "netseasy" and the Nets id). A crash between two vouchers leaves the first claimed
and the second not; the next sync books only the second. Vouchers reach Fortnox through the normal
dispatcher, which posts each exactly once. No remote call happens inside a transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import django
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations import registry
from integrations.base import AuthError, ConnectorError, RemoteValidationError
from integrations.http import redact
from integrations.models import (
    Integration,
    IntegrationStatus,
    NetsPayment,
    NetsPaymentAction,
    NetsPayout,
)
from integrations.netseasy import mapping
from integrations.netseasy.connector import DEFAULTS, clean_secret_key, clean_settings
from integrations.netseasy.models import PayoutState, ProblemReport

from .. import rules
from ..models import Account, AccountPlan, AuditEvent, Voucher, VoucherKind, VoucherRow, VoucherState
from ..selectors.plans import plan_snapshot
from .audit import Actor, actor_parts, audit_record
from .integrations import notify_staff
from .vouchers import voucher_queue

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


# =============================================================================================
# Settings
# =============================================================================================


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
    def of(cls, integration: Integration) -> NetsConfig:
        values = clean_settings(integration.settings or {})
        return cls(
            start_date=dt.date.fromisoformat(values["start_date"]),
            sales_accounts={rules.REGION_SWEDEN: values["sales_account_se"], rules.REGION_EU: values["sales_account_eu"],
                            rules.REGION_WORLD: values["sales_account_world"]},
            sales_account_eu_b2b=values.get("sales_account_eu_b2b"),
            receivable_account=values["receivable_account"],
            bank_account=values["bank_account"],
            fee_account=values["fee_account"],
            vat_accounts=dict(values["vat_accounts"]),
            sales_series=values["sales_series"],
            payout_series=values["payout_series"],
            mode=values["mode"],
        )

    def all_accounts(self) -> list[int]:
        numbers = [self.receivable_account, self.bank_account, self.fee_account, *self.sales_accounts.values(),
                   *([self.sales_account_eu_b2b] if self.sales_account_eu_b2b else []), *self.vat_accounts.values()]
        return list(OrderedDict.fromkeys(numbers))


def fortnox_ready(company) -> tuple[bool, str]:
    """Nets Easy books into Fortnox: the company needs a connected Fortnox with an imported chart."""
    fortnox = Integration.objects.filter(company=company, system=TARGET).first()
    if fortnox is None or fortnox.status in (IntegrationStatus.SETTING_UP,):
        return False, _("Connect Fortnox for %(company)s first (Integrations → Fortnox → Connect Fortnox); "
                        "Nets Easy sales are booked there.") % {"company": company}
    if not plan_snapshot(company, TARGET).imported:
        return False, _("Import the Fortnox chart of accounts for %(company)s first (Integrations → Fortnox → "
                        "Import master data), so the accounts can be checked.") % {"company": company}
    return True, ""


def settings_problems(*, company, values: dict) -> tuple[dict[str, str], list[str]]:
    """Check cleaned settings against the company's imported Fortnox chart: (errors per field, warnings)."""
    errors: dict[str, str] = {}
    warnings: list[str] = []
    ready, reason = fortnox_ready(company)
    if not ready:
        return {"__all__": reason}, warnings
    plan = plan_snapshot(company, TARGET)

    def check(name: str, number: int | None, *, balance: bool | None = None) -> None:
        if number is None:
            return
        problems = rules.check_account_number(plan, number)
        if problems:
            errors[name] = str(problems[0]) + " " + _("(Fortnox chart of accounts)")
            return
        account = plan.accounts[int(number)]
        if balance is True and not account.is_balance:
            errors[name] = _("Account %(account)s %(name)s is a profit-and-loss account; choose a balance-sheet "
                             "account.") % {"account": number, "name": account.name}
        elif balance is False and account.is_balance:
            errors[name] = _("Account %(account)s %(name)s is a balance-sheet account; choose a profit-and-loss "
                             "account.") % {"account": number, "name": account.name}

    for name in ("sales_account_se", "sales_account_eu", "sales_account_world", "sales_account_eu_b2b",
                 "fee_account"):
        check(name, values.get(name), balance=False)
    for name in ("receivable_account", "bank_account"):
        check(name, values.get(name), balance=True)
    for rate, number in sorted((values.get("vat_accounts") or {}).items()):
        before = len(errors)
        check("vat_accounts", number, balance=True)
        if len(errors) > before:
            errors["vat_accounts"] = _("VAT %(rate)s %%: %(problem)s") % {"rate": rate, "problem": errors["vat_accounts"]}
    for name in ("sales_series", "payout_series"):
        problems = rules.check_series(plan, values.get(name, ""))
        if problems:
            errors[name] = str(problems[0])
    if values.get("receivable_account") and values.get("receivable_account") == values.get("bank_account"):
        errors["bank_account"] = _("The bank account must differ from the reconciliation account.")
    if values.get("receivable_account") == DISPUTED_RECEIVABLES:
        warnings.append(_("Account 1516 is “Tvistiga kundfordringar” (disputed receivables) in BAS. The guide "
                          "uses it as an example, but card payments on their way to the bank belong on 1580 "
                          "“Fordringar för kontokort och kuponger”. 1516 is allowed if your accountant wants it."))
    start = values.get("start_date")
    if start and dt.date.fromisoformat(start) > timezone.localdate():
        warnings.append(_("The start date is in the future: nothing is booked before it."))
    return errors, warnings


@dataclass
class SaveResult:
    integration: Integration
    warnings: list[str] = field(default_factory=list)
    test_voucher: Voucher | None = None


def netseasy_settings_save(*, company, values: dict, secret_key: str | None = None, actor: Actor = None) -> SaveResult:
    """Save the settings (and a new secret key), then start the activation: a test voucher to Fortnox.

    The integration becomes "awaiting confirmation" and books nothing until staff press OK. Raises
    ValidationError (per field) when a setting is wrong; nothing is saved then.
    """
    cleaned = clean_settings(values)
    existing = Integration.objects.filter(company=company, system=SOURCE).first()
    if secret_key:
        try:
            secret_key = clean_secret_key(secret_key)
        except ValidationError as exc:
            raise ValidationError({"secret_key": exc.messages}) from None
    elif not (existing and (existing.credentials or {}).get("secret_key")):
        raise ValidationError({"secret_key": [_("Paste the Nets Easy live secret key.")]})
    errors, warnings = settings_problems(company=company, values=cleaned)
    if errors:
        raise ValidationError({name: [message] for name, message in errors.items()})
    if secret_key and secret_key.startswith("test-"):
        warnings.append(_("This is a test key: it only sees payments made in Nets Easy's test environment."))

    user, _label = actor_parts(actor)
    with transaction.atomic():
        integration, _created = Integration.objects.select_for_update().get_or_create(company=company, system=SOURCE)
        previous = dict(integration.settings or {})
        integration.settings = {**{k: v for k, v in cleaned.items() if k not in ("activation", "last_sync")},
                                "last_sync": previous.get("last_sync", {})}
        if secret_key:
            integration.credentials = {**(integration.credentials or {}), "secret_key": secret_key}
        integration.status = IntegrationStatus.AWAITING_CONFIRMATION
        integration.status_message = _("Saved. A test voucher is on its way to Fortnox; check it there, then press "
                                       "OK to start automatic booking.")
        integration.save()
        voucher = _test_voucher_create(integration=integration, actor=actor)
        integration.settings["activation"] = {
            "test_voucher_id": voucher.pk,
            "requested_by": user.pk if user else None,
            "requested_at": timezone.now().isoformat(),
            "email_sent_for": "",
            "key_check": {"ok": None, "message": _("The secret key is being checked with Nets Easy.")},
        }
        integration.save(update_fields=["settings", "updated_at"])
        audit_record(action="netseasy:settings_saved", integration=integration, actor=actor,
                     message=_("Settings saved; test voucher %(ref)s queued; awaiting confirmation.")
                     % {"ref": voucher.source_reference},
                     data={k: v for k, v in integration.settings.items() if k != "activation"})
        voucher_queue(voucher=voucher, actor=actor)
        pk = integration.pk
        transaction.on_commit(lambda: _enqueue("bookkeeping.tasks_payouts.activation_check", pk))
    voucher.refresh_from_db()
    return SaveResult(integration=integration, warnings=warnings, test_voucher=voucher)


def _enqueue_sync(integration_id: int, actor_label: str) -> None:
    from ..tasks_payouts import enqueue_sync

    enqueue_sync(integration_id, actor=actor_label)


def _enqueue(func: str, *args) -> None:
    from django_q.tasks import async_task

    async_task(func, *args, task_name=f"{func.rsplit('.', 1)[-1]}-{'-'.join(map(str, args))}"[:100])


# =============================================================================================
# Activation: the test voucher, its e-mail, and OK
# =============================================================================================


def _test_voucher_create(*, integration: Integration, actor: Actor) -> Voucher:
    config = NetsConfig.of(integration)
    count = Voucher.objects.filter(company=integration.company, source_system=SOURCE, kind=VoucherKind.TEST).count()
    user, _label = actor_parts(actor)
    voucher = Voucher.objects.create(
        company=integration.company, system=TARGET, kind=VoucherKind.TEST, source_system=SOURCE,
        source_reference=f"test:{integration.pk}:{count + 1}", date=timezone.localdate(),
        description=TEST_DESCRIPTION[:200], series=config.payout_series, currency=HOME_CURRENCY,
        extra={"source_label": "Nets Easy test"}, created_by=user,
    )
    # Every configured account is debited and credited 1.00: Fortnox proves it accepts each of them
    # in this series, and the books are unchanged (nothing to reverse afterwards).
    position = 0
    for number in config.all_accounts():
        for debit, credit in ((ONE, ZERO), (ZERO, ONE)):
            VoucherRow.objects.create(voucher=voucher, position=position, account=number, debit=debit, credit=credit,
                                      text="Test – tar ut varandra")
            position += 1
    return voucher


def _activation(integration: Integration) -> dict:
    return dict((integration.settings or {}).get("activation") or {})


def _save_activation(integration_id: int, **changes) -> None:
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration_id)
        activation = {**_activation(locked), **changes}
        locked.settings = {**(locked.settings or {}), "activation": activation}
        locked.save(update_fields=["settings", "updated_at"])


def activation_check_key(*, integration: Integration, connector=None) -> bool:
    """Ask Nets Easy whether it accepts the stored secret key; the answer is kept in words."""
    connector = connector or registry.connector_for(integration)
    try:
        info = connector.check_connection()
        ok, message = True, info.message
    except ConnectorError as exc:
        ok, message = False, exc.message
    _save_activation(integration.pk, key_check={"ok": ok, "message": message, "at": timezone.now().isoformat()})
    audit_record(action="netseasy:key_check", integration=integration, message=message,
                 outcome=AuditEvent.Outcome.OK if ok else AuditEvent.Outcome.ERROR)
    return ok


@dataclass
class ActivationStatus:
    state: str  # none | sending | posted | failed
    voucher: Voucher | None
    message: str
    key_ok: bool | None
    key_message: str
    can_confirm: bool
    blockers: list[str]


def activation_status(integration: Integration) -> ActivationStatus:
    activation = _activation(integration)
    voucher = Voucher.objects.filter(pk=activation.get("test_voucher_id")).first() if activation else None
    key = activation.get("key_check") or {}
    blockers = []
    if voucher is None:
        state, message = "none", _("No test voucher yet: save the settings to send one.")
    elif voucher.state == VoucherState.POSTED:
        state = "posted"
        message = _("The test voucher is in Fortnox as %(number)s (series %(series)s, %(date)s). It debits and "
                    "credits 1.00 on each account, so it changes no balance.") % {
            "number": voucher.remote_label, "series": voucher.series, "date": voucher.date}
    elif voucher.state in (VoucherState.FAILED, VoucherState.AWAITING_AUTHORISATION):
        state = "failed"
        message = _("The test voucher did not reach Fortnox: %(reason)s") % {
            "reason": voucher.last_error or voucher.get_state_display()}
    else:
        state = "sending"
        message = _("The test voucher is on its way to Fortnox (%(state)s). This page shows the result "
                    "within minutes.") % {"state": voucher.get_state_display()}
        if voucher.last_error:
            message += " " + _("Last attempt: %(error)s") % {"error": voucher.last_error}
    if integration.status != IntegrationStatus.AWAITING_CONFIRMATION:
        blockers.append(_("The integration is not awaiting confirmation (status: %(status)s).")
                        % {"status": integration.get_status_display()})
    if state != "posted":
        blockers.append(_("The test voucher must be in Fortnox first."))
    if key.get("ok") is not True:
        blockers.append(key.get("message") or _("The secret key has not been checked with Nets Easy yet."))
    return ActivationStatus(state=state, voucher=voucher, message=message, key_ok=key.get("ok"),
                            key_message=key.get("message", ""), can_confirm=not blockers, blockers=blockers)


def netseasy_confirm(*, integration: Integration, actor: Actor = None) -> tuple[bool, str]:
    """Staff pressed OK: automatic booking starts. Refused, with the reason, until the test voucher is in Fortnox."""
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        status = activation_status(integration)
        if not status.can_confirm:
            return False, " ".join(status.blockers)
        user, label = actor_parts(actor)
        integration.status = IntegrationStatus.ACTIVE
        integration.status_message = ""
        integration.settings = {**integration.settings, "activation": {
            **_activation(integration), "confirmed_by": label, "confirmed_at": timezone.now().isoformat()}}
        integration.save()
        audit_record(action="netseasy:confirmed", outcome=AuditEvent.Outcome.OK, integration=integration, actor=actor,
                     message=_("Test voucher %(number)s confirmed; automatic booking is on.")
                     % {"number": status.voucher.remote_label})
        pk = integration.pk
        transaction.on_commit(lambda: _enqueue_sync(pk, label))
    return True, _("Confirmed. Nets Easy payouts are now booked in Fortnox automatically.")


def test_voucher_followup(*, integration: Integration) -> str:
    """E-mail the staff user who saved the settings once the test voucher's outcome is known."""
    status = activation_status(integration)
    activation = _activation(integration)
    if status.voucher is None or status.state not in ("posted", "failed"):
        return "pending"
    marker = f"{status.voucher.pk}:{status.state}"
    if activation.get("email_sent_for") == marker:
        return "sent_before"
    company = integration.company
    user = get_user_model().objects.filter(pk=activation.get("requested_by")).first()
    recipients = [user.email] if user and user.email else []
    subject, body = _test_voucher_mail(integration, status)
    if recipients:
        send_mail(subject, body, django_settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True)
    else:
        notify_staff(company=company, subject=subject, body=body)
    _save_activation(integration.pk, email_sent_for=marker)
    # The integration page shows the outcome too, in words.
    Integration.objects.filter(pk=integration.pk, status=IntegrationStatus.AWAITING_CONFIRMATION).update(
        status_message=(_("Test voucher %(number)s is in Fortnox. Check it there, then press OK to start automatic "
                          "booking.") % {"number": status.voucher.remote_label}) if status.state == "posted"
        else status.message)
    audit_record(action="netseasy:test_voucher_mail", integration=integration,
                 message=_("Test voucher e-mail sent (%(state)s).") % {"state": status.state})
    return "sent"


def _test_voucher_mail(integration: Integration, status: ActivationStatus) -> tuple[str, str]:
    voucher = status.voucher
    company = integration.company
    per_account: OrderedDict[str, list[Decimal]] = OrderedDict()
    for row in voucher.rows.all():
        totals = per_account.setdefault(str(row.account), [ZERO, ZERO])
        totals[0] += row.debit
        totals[1] += row.credit
    names = dict(Account.objects.filter(plan__company=company, plan__system=TARGET,
                                        number__in=[rules.account_key(a) for a in per_account])
                 .values_list("number", "name"))
    rows = "\n".join(f"  {account:>6} {names.get(rules.account_key(account), '')[:45]:45} "
                     f"D {debit:>8.2f}  K {credit:>8.2f}" for account, (debit, credit) in per_account.items())
    if status.state == "posted":
        subject = _("Nets Easy → Fortnox for %(company)s: test voucher %(number)s posted") % {
            "company": company, "number": voucher.remote_label}
        body = _(
            "The test voucher for the Nets Easy connection of %(company)s is in Fortnox.\n\n"
            "Fortnox voucher: %(number)s, series %(series)s, date %(date)s\n"
            "Description: %(description)s\n\nRows (each account is debited and credited 1.00, so no balance "
            "changes and nothing needs reversing):\n%(rows)s\n\n"
            "Secret key check with Nets Easy: %(key)s\n\n"
            "If it looks right in Fortnox, press “OK – start automatic booking” on the Nets Easy integration "
            "page in Kontera (or run: manage.py netseasy_confirm %(slug)s). Until then nothing is booked.\n"
        ) % {"company": company, "number": voucher.remote_label, "series": voucher.series, "date": voucher.date,
             "description": voucher.description, "rows": rows, "key": status.key_message or "–", "slug": company.slug}
    else:
        subject = _("Nets Easy → Fortnox for %(company)s: the test voucher failed") % {"company": company}
        body = _(
            "The test voucher for the Nets Easy connection of %(company)s did not reach Fortnox.\n\n"
            "Reason: %(reason)s\n\nIt would have been posted in series %(series)s on %(date)s with these rows:\n"
            "%(rows)s\n\nFix the cause (for example activate the account in Fortnox, or choose another account "
            "or series), then save the Nets Easy settings again to send a new test voucher.\n"
        ) % {"company": company, "reason": voucher.last_error or voucher.get_state_display(),
             "series": voucher.series, "date": voucher.date, "rows": rows}
    return subject, body


# =============================================================================================
# Sync: fetch (HTTP, outside transactions) → store → book (short transactions) → reconcile
# =============================================================================================


@dataclass
class SyncResult:
    company: str = ""
    from_date: str = ""
    to_date: str = ""
    payouts_seen: int = 0
    payouts_new: int = 0
    actions_new: int = 0
    payments_fetched: int = 0
    vouchers_created: int = 0
    payouts_booked: int = 0
    waiting_currency: int = 0
    needs_attention: int = 0
    residual_errors: int = 0
    booking_paused: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.needs_attention and not self.residual_errors

    def as_dict(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def payouts_sync(*, integration: Integration, from_date: dt.date | None = None, actor: Actor = "worker",
                 progress=None, connector=None) -> SyncResult:
    """Pull payouts (all pages) from the start date, store them, and — once confirmed — book them."""
    integration = Integration.objects.select_related("company").get(pk=integration.pk)
    result = SyncResult(company=integration.company.slug)

    def step(message: str, **numbers) -> None:
        if progress:
            progress(message, **numbers)

    if integration.status in (IntegrationStatus.SETTING_UP, IntegrationStatus.PAUSED,
                              IntegrationStatus.NEEDS_REAUTHORISATION):
        result.errors.append(_("Nets Easy for %(company)s has status “%(status)s”: nothing was fetched. %(why)s") % {
            "status": integration.get_status_display(), "company": integration.company,
            "why": integration.status_message})
        return result
    config = NetsConfig.of(integration)
    # --from narrows the reading (e.g. after an outage); nothing before the start date is ever read.
    start = max(from_date or config.start_date, config.start_date)
    today = timezone.localdate()
    result.from_date, result.to_date = start.isoformat(), today.isoformat()
    connector = connector or registry.connector_for(integration)
    try:
        step(_("Reading payouts from Nets Easy"))
        payouts = connector.list_payouts(start, today)
        result.payouts_seen = len(payouts)
        for index, dto in enumerate(payouts, start=1):
            step(_("Reading payout %(n)s of %(total)s") % {"n": index, "total": len(payouts)},
                 done=index - 1, total=len(payouts))
            _fetch_payout(integration, dto, connector, result)
    except AuthError as exc:
        _lost_key(integration, exc.message)
        result.errors.append(exc.message)
        _remember_sync(integration, result)
        return result
    except ConnectorError as exc:
        audit_record(action="netseasy:sync", outcome=AuditEvent.Outcome.ERROR, integration=integration, actor=actor,
                     http_status=exc.http_status, message=exc.message)
        result.errors.append(exc.message)
        # what was fetched so far is still booked below

    integration.refresh_from_db()
    if integration.status != IntegrationStatus.ACTIVE:
        result.booking_paused = _("Nothing is booked until staff press OK after checking the test voucher.")
    else:
        step(_("Booking payouts"))
        payouts_book(integration=integration, config=config, actor=actor, result=result, progress=step)
    _count_states(integration, result)
    _remember_sync(integration, result)
    audit_record(action="netseasy:sync", integration=integration, actor=actor,
                 outcome=AuditEvent.Outcome.OK if result.ok else AuditEvent.Outcome.ERROR,
                 message=_("%(seen)s payouts read, %(new)s new, %(vouchers)s vouchers created.")
                 % {"seen": result.payouts_seen, "new": result.payouts_new, "vouchers": result.vouchers_created},
                 data=result.as_dict())
    step(_("Done"), done=result.payouts_seen, total=result.payouts_seen)
    return result


def _fetch_payout(integration: Integration, dto: mapping.PayoutDTO, connector, result: SyncResult) -> None:
    company = integration.company
    stored = NetsPayout.objects.filter(company=company, nets_id=dto.id).first()
    if stored is not None and stored.actions.count() >= stored.number_of_actions:
        details, actions = None, None
    else:
        details, actions = connector.payout_details(dto.id)
        with transaction.atomic():
            stored, created = NetsPayout.objects.get_or_create(
                company=company, nets_id=dto.id,
                defaults=dict(integration=integration, reference=details.reference, date=details.date,
                              currency=details.currency, amount=details.amount, charged_amount=details.charged,
                              refunded_amount=details.refunded, deposited_amount=details.deposited,
                              fees=details.fees, tax_details={k: str(v) for k, v in details.tax_details},
                              number_of_actions=details.number_of_actions
                              if details.number_of_actions is not None else len(actions)))
            result.payouts_new += created
            for action in actions:
                stamp = action.timestamp
                booking_date = timezone.localtime(stamp).date() if stamp else details.date
                _obj, new = NetsPaymentAction.objects.get_or_create(
                    company=company, nets_id=action.id,
                    defaults=dict(payout=stored, payment_id=action.payment_id, action=action.action,
                                  amount=action.amount, vat_amount=action.vat, fee=action.fee,
                                  currency=action.currency or details.currency, timestamp=stamp,
                                  booking_date=booking_date, reference=action.reference[:128],
                                  payment_method=action.payment_method[:40],
                                  tax_details={k: str(v) for k, v in action.tax_details}))
                result.actions_new += new
    if stored.state in (PayoutState.BOOKED, PayoutState.HANDLED_MANUALLY) or stored.currency != HOME_CURRENCY:
        return
    # The customer's country is needed for every unbooked charge and refund: fetch each payment once.
    for action in stored.actions.filter(booked_at__isnull=True, action__in=["CHARGE", "REFUND"]):
        cached = NetsPayment.objects.filter(company=company, payment_id=action.payment_id).first()
        if cached is not None and action.nets_id in (cached.charges if action.action == "CHARGE" else cached.refunds):
            continue
        try:
            payment = connector.get_payment(action.payment_id)
        except RemoteValidationError as exc:
            NetsPaymentAction.objects.filter(pk=action.pk).update(
                problem=_("Nets Easy could not give payment %(id)s: %(error)s") % {"id": action.payment_id,
                                                                                   "error": exc.message})
            continue
        NetsPayment.objects.update_or_create(
            company=company, payment_id=action.payment_id,
            defaults=dict(country=payment.country[:3], is_company=payment.is_company, currency=payment.currency,
                          reference=payment.reference[:128],
                          charges={k: mapping.lines_to_json(v) for k, v in payment.charges.items()},
                          refunds={k: mapping.lines_to_json(v) for k, v in payment.refunds.items()}))
        result.payments_fetched += 1


def _lost_key(integration: Integration, reason: str) -> None:
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if locked.status == IntegrationStatus.NEEDS_REAUTHORISATION:
            return
        locked.status = IntegrationStatus.NEEDS_REAUTHORISATION
        locked.status_message = reason
        locked.save(update_fields=["status", "status_message", "updated_at"])
        audit_record(action="netseasy:key_refused", outcome=AuditEvent.Outcome.ERROR, integration=locked,
                     message=reason)
        company = locked.company
        transaction.on_commit(lambda: notify_staff(
            company=company,
            subject=_("Nets Easy no longer accepts the secret key for %(company)s") % {"company": company},
            body=_("Kontera could not read the Nets Easy payouts of %(company)s: %(reason)s\n\nNothing is lost: "
                   "paste the live secret key again on the Nets Easy settings page and confirm the test voucher; "
                   "the payouts are then booked from where they stopped.") % {"company": company, "reason": reason},
        ))


def _remember_sync(integration: Integration, result: SyncResult) -> None:
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        locked.settings = {**(locked.settings or {}), "last_sync": {
            "at": timezone.now().isoformat(), "ok": result.ok, "errors": result.errors[:5],
            "vouchers_created": result.vouchers_created, "payouts_seen": result.payouts_seen}}
        locked.save(update_fields=["settings", "updated_at"])
        if result.ok and not result.errors:
            Integration.objects.filter(pk=locked.pk).update(last_success_at=timezone.now())


def _count_states(integration: Integration, result: SyncResult) -> None:
    states = dict(NetsPayout.objects.filter(integration=integration).values_list("state")
                  .annotate(n=Count("id")).values_list("state", "n"))
    result.waiting_currency = states.get(PayoutState.WAITING_CURRENCY, 0)
    result.needs_attention = states.get(PayoutState.NEEDS_ATTENTION, 0)
    result.residual_errors = states.get(PayoutState.RESIDUAL_ERROR, 0)


# --- booking ----------------------------------------------------------------------------------


@dataclass
class Line:
    account: int
    amount: Decimal  # + debit, − credit
    text: str = ""


@dataclass
class Planned:
    """What one payment action books: its lines, or why it cannot be booked."""

    lines: list[Line] = field(default_factory=list)
    country: str = ""
    region: str = ""
    flags: list[str] = field(default_factory=list)
    problem: str = ""


def _vat_from_lines(lines) -> dict[str, Decimal]:
    vat: dict[str, Decimal] = {}
    for line in lines:
        if line.vat:
            vat[line.rate] = vat.get(line.rate, ZERO) + abs(line.vat)
    return vat


def plan_action(action: NetsPaymentAction, payment: NetsPayment | None, config: NetsConfig) -> Planned:
    """The lines for one charge, refund or deposit. Pure: reads only what it is given."""
    planned = Planned()
    if action.action == "DEPOSIT":
        planned.lines = [Line(config.receivable_account, action.amount, "Insättning till Nets"),
                         Line(config.bank_account, -action.amount, "Insättning till Nets")]
        return planned
    if payment is None:
        planned.problem = action.problem or _("The payment %(id)s could not be read from Nets Easy.") % {
            "id": action.payment_id}
        return planned
    planned.country = payment.country
    region = rules.sales_region(payment.country)
    if region is None:
        planned.problem = _("The customer's country is unknown for payment %(id)s, so the sales account cannot be "
                            "chosen.") % {"id": action.payment_id}
        return planned
    planned.region = region
    store = payment.charges if action.action == "CHARGE" else payment.refunds
    lines = mapping.lines_from_json(store.get(action.nets_id))
    vat = _vat_from_lines(lines)
    if lines and sum((line.gross for line in lines), ZERO) != action.amount:
        planned.flags.append(_("The order lines add up to %(lines)s but Nets paid %(amount)s; VAT taken from the "
                               "payout report.") % {"lines": sum((line.gross for line in lines), ZERO),
                                                    "amount": action.amount})
        lines = ()
    if not lines:
        vat = {rate: Decimal(amount) for rate, amount in (action.tax_details or {}).items() if Decimal(amount)}
        if not vat and action.vat_amount:
            planned.problem = _("Nets reports %(vat)s VAT on %(ref)s without its rate; book it by hand.") % {
                "vat": action.vat_amount, "ref": action.reference or action.nets_id}
            return planned
    total_vat = sum(vat.values(), ZERO)
    if total_vat != action.vat_amount:
        planned.flags.append(_("The order lines carry %(lines)s VAT, the payout report %(report)s; the order lines "
                               "were booked.") % {"lines": total_vat, "report": action.vat_amount})
    missing = sorted(rate for rate in vat if rate not in config.vat_accounts)
    if missing:
        planned.problem = _("No output VAT account is set for %(rates)s %% VAT (%(ref)s). Add it in the Nets Easy "
                            "settings.") % {"rates": ", ".join(missing), "ref": action.reference or action.nets_id}
        return planned

    # The region rule, checked against the VAT the web shop charged. We book what was charged (VAT
    # shown to a customer is owed even when wrong) and flag the mismatch for staff.
    if region == rules.REGION_WORLD and total_vat:
        planned.flags.append(_("%(vat)s VAT was charged to a customer outside the EU (%(country)s); exports carry "
                               "no Swedish VAT.") % {"vat": total_vat, "country": payment.country})
    elif region == rules.REGION_SWEDEN and not total_vat:
        planned.flags.append(_("No VAT on a sale to a customer in Sweden."))
    elif region == rules.REGION_EU and not total_vat and not payment.is_company:
        planned.flags.append(_("No VAT on a sale to a consumer in another EU country (%(country)s).")
                             % {"country": payment.country})

    sales_account = config.sales_accounts[region]
    if region == rules.REGION_EU and payment.is_company and not total_vat and config.sales_account_eu_b2b:
        sales_account = config.sales_account_eu_b2b  # intra-EU supply to a business: 3108, ruta 35
    sign = Decimal(1) if action.action == "CHARGE" else Decimal(-1)
    text = f"{action.reference or action.nets_id[:12]} {payment.country}".strip()[:100]
    net = action.amount - total_vat
    planned.lines = [Line(config.receivable_account, sign * action.amount, text)]
    if net:
        planned.lines.append(Line(sales_account, -sign * net, text))
    for rate in sorted(vat, key=lambda r: -Decimal(r)):
        planned.lines.append(Line(config.vat_accounts[rate], -sign * vat[rate], f"Moms {rate} % {text}"[:100]))
    return planned


def _netted(lines: list[Line]) -> list[Line]:
    """One row per account (first text kept), zero rows dropped."""
    by_account: OrderedDict[int, Line] = OrderedDict()
    for line in lines:
        if line.account in by_account:
            by_account[line.account].amount += line.amount
        else:
            by_account[line.account] = Line(line.account, line.amount, line.text)
    return [line for line in by_account.values() if line.amount]


def _create_voucher(*, company, kind: str, reference: str, day: dt.date, description: str, series: str,
                    lines: list[Line], label: str, actor: Actor) -> Voucher:
    """A voucher with its rows (must run inside the claiming transaction)."""
    user, _label = actor_parts(actor)
    voucher = Voucher.objects.create(
        company=company, system=TARGET, kind=kind, source_system=SOURCE, source_reference=reference[:128],
        date=day, description=description[:200], series=series, currency=HOME_CURRENCY,
        extra={"source_label": label[:200]}, created_by=user)
    VoucherRow.objects.bulk_create([
        VoucherRow(voucher=voucher, position=position, account=line.account,
                   debit=line.amount if line.amount > 0 else ZERO, credit=-line.amount if line.amount < 0 else ZERO,
                   text=line.text[:100])
        for position, line in enumerate(lines)
    ])
    return voucher


def _book_group(*, integration: Integration, payout: NetsPayout, action_ids: list[int], plans: dict[int, Planned],
                kind: str, reference: str, day: dt.date, description: str, series: str, label: str,
                actor: Actor) -> Voucher | None:
    """Claim the actions and create their voucher in one transaction: booked at most once."""
    with transaction.atomic():
        claimed = list(NetsPaymentAction.objects.select_for_update()
                       .filter(pk__in=action_ids, booked_at__isnull=True).order_by("pk"))
        if not claimed:
            return None  # another run booked them
        lines = _netted([line for action in claimed for line in plans[action.pk].lines])
        voucher = None
        if lines:
            if Voucher.objects.filter(company=integration.company, source_system=SOURCE,
                                      source_reference=reference).exists():
                raise IntegrityError(f"voucher {reference} exists but its payment actions are not booked")
            voucher = _create_voucher(company=integration.company, kind=kind, reference=reference, day=day,
                                      description=description, series=series, lines=lines, label=label, actor=actor)
        now = timezone.now()
        for action in claimed:
            planned = plans[action.pk]
            action.voucher, action.booked_at = voucher, now
            action.country, action.region = planned.country, planned.region
            action.flag, action.problem = "\n".join(planned.flags), ""
            action.save(update_fields=["voucher", "booked_at", "country", "region", "flag", "problem"])
        if voucher is not None:
            voucher_queue(voucher=voucher, actor=actor)
        return voucher


def payouts_book(*, integration: Integration, config: NetsConfig | None = None, actor: Actor = "worker",
                 result: SyncResult | None = None, progress=None) -> SyncResult:
    """Book every stored payout that is not booked yet (oldest first)."""
    result = result or SyncResult(company=integration.company.slug)
    config = config or NetsConfig.of(integration)
    pending = list(NetsPayout.objects.filter(integration=integration, date__gte=config.start_date).exclude(
        state__in=[PayoutState.BOOKED, PayoutState.HANDLED_MANUALLY]).order_by("date", "id"))
    for index, payout in enumerate(pending, start=1):
        if progress:
            progress(_("Booking payout %(n)s of %(total)s") % {"n": index, "total": len(pending)},
                     done=index - 1, total=len(pending))
        payout_book(integration=integration, payout=payout, config=config, actor=actor, result=result)
    return result


def _set_state(payout: NetsPayout, state: str, message: str = "", **fields) -> None:
    NetsPayout.objects.filter(pk=payout.pk).update(state=state, state_message=message, **fields)
    payout.state, payout.state_message = state, message
    for name, value in fields.items():
        setattr(payout, name, value)


def payout_check(payout: NetsPayout) -> list[str]:
    """Nets' own numbers must agree before anything of the payout is booked."""
    problems = []
    actions = list(payout.actions.all())
    if len(actions) != payout.number_of_actions:
        problems.append(_("Nets reports %(expected)s payment actions but %(got)s were received.")
                        % {"expected": payout.number_of_actions, "got": len(actions)})
    if payout.amount != payout.gross - payout.fees:
        problems.append(_("The payout amount %(amount)s is not charged − refunded + deposited − fees "
                          "(%(computed)s).") % {"amount": payout.amount, "computed": payout.gross - payout.fees})
    sums = {"CHARGE": ZERO, "REFUND": ZERO, "DEPOSIT": ZERO}
    for action in actions:
        sums[action.action] = sums.get(action.action, ZERO) + action.amount
    for kind, total in (("CHARGE", payout.charged_amount), ("REFUND", payout.refunded_amount),
                        ("DEPOSIT", payout.deposited_amount)):
        if sums.get(kind, ZERO) != total:
            problems.append(_("The %(kind)s actions add up to %(sum)s but the payout says %(total)s.")
                            % {"kind": kind.lower(), "sum": sums.get(kind, ZERO), "total": total})
    return problems


def payout_book(*, integration: Integration, payout: NetsPayout, config: NetsConfig, actor: Actor = "worker",
                result: SyncResult | None = None) -> str:
    """Book one payout: its actions' vouchers, then the payout voucher. Returns the payout's new state."""
    result = result or SyncResult()
    company = integration.company
    if payout.currency != HOME_CURRENCY:
        if payout.state != PayoutState.WAITING_CURRENCY:
            _set_state(payout, PayoutState.WAITING_CURRENCY, _(
                "This payout is in %(currency)s. Kontera books SEK payouts only: book it by hand at the day's rate "
                "(bank amount in SEK), then mark it “handled by hand”.") % {"currency": payout.currency})
        return payout.state
    problems = payout_check(payout)
    if problems:
        _set_state(payout, PayoutState.RESIDUAL_ERROR,
                   _("Nothing of this payout was booked: ") + " ".join(problems))
        return payout.state

    unbooked = list(payout.actions.filter(booked_at__isnull=True).order_by("timestamp", "id"))
    payments = {p.payment_id: p for p in NetsPayment.objects.filter(
        company=company, payment_id__in=[a.payment_id for a in unbooked if a.payment_id])}
    plans = {a.pk: plan_action(a, payments.get(a.payment_id), config) for a in unbooked}
    blocked = [(a, plans[a.pk].problem) for a in unbooked if plans[a.pk].problem]
    if blocked:
        for action, problem in blocked:
            NetsPaymentAction.objects.filter(pk=action.pk).update(problem=problem)
        _set_state(payout, PayoutState.NEEDS_ATTENTION,
                   _("Not booked (the whole payout waits, so the reconciliation stays whole): ")
                   + " ".join(dict.fromkeys(problem for _a, problem in blocked)))
        return payout.state

    label = f"Nets Easy utbetalning {payout.reference or payout.nets_id}"
    for action in [a for a in unbooked if a.action == "DEPOSIT"]:
        voucher = _book_group(
            integration=integration, payout=payout, action_ids=[action.pk], plans=plans, kind=VoucherKind.PAYOUT,
            reference=action.nets_id, day=action.booking_date, series=config.payout_series, actor=actor,
            description=f"Nets Easy insättning {action.booking_date} (utbetalning {payout.reference})",
            label=f"Nets Easy {action.nets_id}")
        result.vouchers_created += voucher is not None
    sales = [a for a in unbooked if a.action != "DEPOSIT"]
    if config.mode == "per_day":
        by_day: OrderedDict[dt.date, list[NetsPaymentAction]] = OrderedDict()
        for action in sorted(sales, key=lambda a: (a.booking_date, a.pk)):
            by_day.setdefault(action.booking_date, []).append(action)
        for day, actions in by_day.items():
            charges = sum(1 for a in actions if a.action == "CHARGE")
            voucher = _book_group(
                integration=integration, payout=payout, action_ids=[a.pk for a in actions], plans=plans,
                kind=VoucherKind.SALE, reference=f"{payout.nets_id}:{day.isoformat()}", day=day,
                series=config.sales_series, actor=actor, label=label,
                description=f"Nets Easy försäljning {day} ({charges} köp, {len(actions) - charges} returer; "
                            f"utbetalning {payout.reference})")
            result.vouchers_created += voucher is not None
    else:
        for action in sales:
            what = "försäljning" if action.action == "CHARGE" else "återbetalning"
            payment = payments.get(action.payment_id)
            voucher = _book_group(
                integration=integration, payout=payout, action_ids=[action.pk], plans=plans, kind=VoucherKind.SALE,
                reference=action.nets_id, day=action.booking_date, series=config.sales_series, actor=actor,
                description=f"Nets Easy {what} {action.reference or action.payment_id} "
                            f"({payment.country if payment else ''})",
                label=f"Nets Easy {action.nets_id}")
            result.vouchers_created += voucher is not None

    state = _book_payout_voucher(integration=integration, payout=payout, config=config, actor=actor, result=result)
    return state


def _book_payout_voucher(*, integration: Integration, payout: NetsPayout, config: NetsConfig, actor: Actor,
                         result: SyncResult) -> str:
    from ..selectors.payouts import payout_reconciliation

    with transaction.atomic():
        locked = NetsPayout.objects.select_for_update().get(pk=payout.pk)
        if locked.voucher_id or locked.state in (PayoutState.BOOKED, PayoutState.HANDLED_MANUALLY):
            payout.refresh_from_db()
            return payout.state
        if locked.actions.filter(booked_at__isnull=True).exists():
            return locked.state  # an action is still unbooked (another run is at it)
        lines = [Line(config.bank_account, locked.amount, f"Utbetalning {locked.reference}"[:100]),
                 Line(config.fee_account, locked.fees, "Nets Easy avgifter"),
                 Line(config.receivable_account, -locked.gross, f"Utbetalning {locked.reference}"[:100])]
        lines = _netted(lines)
        voucher = None
        if lines:
            voucher = _create_voucher(
                company=integration.company, kind=VoucherKind.PAYOUT, reference=locked.nets_id, day=locked.date,
                description=f"Nets Easy utbetalning {locked.date} ref {locked.reference}", series=config.payout_series,
                lines=lines, label=f"Nets Easy utbetalning {locked.nets_id}", actor=actor)
            result.vouchers_created += 1
        locked.voucher = voucher
        locked.booked_at = timezone.now()
        locked.booked_accounts = {"receivable": config.receivable_account, "bank": config.bank_account,
                                  "fee": config.fee_account}
        locked.state = PayoutState.BOOKED
        locked.state_message = ""
        locked.save()
        reconciliation = payout_reconciliation(locked)
        locked.residual = reconciliation.residual
        if reconciliation.residual != ZERO:
            locked.state = PayoutState.RESIDUAL_ERROR
            locked.state_message = _("The reconciliation account does not net to zero for this payout: residual "
                                     "%(residual)s. Check the vouchers listed below.") % {
                "residual": reconciliation.residual}
        locked.save(update_fields=["residual", "state", "state_message", "updated_at"])
        flagged = locked.actions.exclude(flag="").count()
        if flagged and locked.state == PayoutState.BOOKED:
            locked.state_message = _("%(n)s payment action(s) were booked as Nets reported them but are worth a "
                                     "look (see “check”).") % {"n": flagged}
            locked.save(update_fields=["state_message", "updated_at"])
        if voucher is not None:
            voucher_queue(voucher=voucher, actor=actor)
        result.payouts_booked += 1
        audit_record(action="netseasy:payout_booked", integration=integration, actor=actor,
                     outcome=AuditEvent.Outcome.OK if locked.state == PayoutState.BOOKED else AuditEvent.Outcome.ERROR,
                     message=_("Payout %(ref)s of %(date)s booked: %(amount)s SEK, fees %(fees)s, residual "
                               "%(residual)s.") % {"ref": locked.reference, "date": locked.date,
                                                   "amount": locked.amount, "fees": locked.fees,
                                                   "residual": locked.residual})
    payout.refresh_from_db()
    return payout.state


def payout_mark_handled(*, payout: NetsPayout, actor: Actor = None) -> bool:
    """Staff booked a payout (e.g. in EUR) by hand: Kontera stops waiting for it."""
    with transaction.atomic():
        locked = NetsPayout.objects.select_for_update().get(pk=payout.pk)
        if locked.state not in (PayoutState.WAITING_CURRENCY, PayoutState.NEEDS_ATTENTION):
            return False
        if locked.actions.filter(booked_at__isnull=False).exists():
            return False  # partly booked by Kontera: handled through the vouchers instead
        label = actor_parts(actor)[1]
        locked.state = PayoutState.HANDLED_MANUALLY
        locked.state_message = _("Marked as booked by hand by %(who)s on %(when)s.") % {
            "who": label, "when": timezone.localdate()}
        locked.save(update_fields=["state", "state_message", "updated_at"])
        audit_record(action="netseasy:payout_handled_by_hand", integration=locked.integration, actor=actor,
                     message=locked.state_message)
    return True


# =============================================================================================
# Problem report ("Vill du felanmäla något?")
# =============================================================================================


def _kontera_version() -> str:
    head = Path(django_settings.BASE_DIR) / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (head.parent / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return "unknown"


def _secrets_to_hide(company) -> list[str]:
    values = []
    for integration in Integration.objects.filter(company=company):
        for key, value in (integration.credentials or {}).items():
            if isinstance(value, str) and len(value) >= 8 and not key.endswith("_at") and key not in (
                    "token_type", "scope"):
                values.append(value)
    for name in ("SECRET_KEY", "FORTNOX_CLIENT_SECRET", "DINERO_CLIENT_SECRET", "EMAIL_HOST_PASSWORD"):
        value = getattr(django_settings, name, "")
        if isinstance(value, str) and len(value) >= 6:
            values.append(value)
    values += [k for k in getattr(django_settings, "KONTERA_ENCRYPTION_KEYS", []) if k and len(k) >= 6]
    return sorted(set(values), key=len, reverse=True)


def diagnostics_collect(*, integration: Integration) -> dict:
    """What support needs to help: states, recent errors, versions. Never a secret (scrubbed twice)."""
    company = integration.company
    fortnox = Integration.objects.filter(company=company, system=TARGET).first()
    plan = AccountPlan.objects.filter(company=company, system=TARGET).first()
    settings_shown = {k: v for k, v in (integration.settings or {}).items() if k != "activation"}
    activation = _activation(integration)
    vouchers = Voucher.objects.filter(company=company, source_system=SOURCE)
    data = {
        "generated_at": timezone.now().isoformat(),
        "versions": {"kontera": _kontera_version(), "django": django.get_version(),
                     "python": platform.python_version()},
        "company": {"id": company.pk, "slug": company.slug, "name": company.name},
        "integration": {
            "id": integration.pk, "system": integration.system, "status": integration.status,
            "status_message": integration.status_message, "settings": settings_shown,
            "secret_key_stored": bool((integration.credentials or {}).get("secret_key")),
            "last_success_at": integration.last_success_at.isoformat() if integration.last_success_at else None,
            "activation": {k: activation.get(k) for k in ("test_voucher_id", "requested_at", "key_check",
                                                            "confirmed_by", "confirmed_at")},
        },
        "fortnox": {
            "status": fortnox.status if fortnox else None,
            "status_message": fortnox.status_message if fortnox else None,
            "chart_imported_at": plan.imported_at.isoformat() if plan and plan.imported_at else None,
            "accounts": plan.accounts.count() if plan else 0,
        },
        "vouchers": {
            "by_state": dict(vouchers.values_list("state").annotate(n=Count("id")).values_list("state", "n")),
            "recent_problems": [
                {"id": v.pk, "reference": v.source_reference, "state": v.state, "date": v.date.isoformat(),
                 "last_error": v.last_error[:500]}
                for v in vouchers.exclude(last_error="").order_by("-updated_at")[:10]],
        },
        "payouts": {
            "by_state": dict(NetsPayout.objects.filter(integration=integration).values_list("state")
                             .annotate(n=Count("id")).values_list("state", "n")),
            "recent": [
                {"id": p.pk, "date": p.date.isoformat(), "currency": p.currency, "amount": str(p.amount),
                 "state": p.state, "residual": str(p.residual) if p.residual is not None else None,
                 "message": p.state_message[:300]}
                for p in NetsPayout.objects.filter(integration=integration).order_by("-date", "-id")[:10]],
        },
        "recent_errors": [
            {"at": e.created_at.isoformat(), "action": e.action, "http_status": e.http_status,
             "message": e.message[:500]}
            for e in AuditEvent.objects.filter(company=company, outcome=AuditEvent.Outcome.ERROR)[:20]],
    }
    return scrub(data, _secrets_to_hide(company))


def scrub(data, secrets: list[str]):
    """Every text in ``data`` without the given secret values and without anything secret-shaped."""
    if isinstance(data, dict):
        return {str(key): scrub(value, secrets) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [scrub(value, secrets) for value in data]
    if isinstance(data, str):
        for secret in secrets:
            data = data.replace(secret, "[redacted]")
        return redact(data)
    if data is None or isinstance(data, bool | int | float):
        return data
    return scrub(str(data), secrets)


def problem_report_create(*, integration: Integration, text: str, user=None) -> ProblemReport:
    """Store the report with its diagnostics and e-mail it to support."""
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": [_("Describe the problem in a few words.")]})
    diagnostics = diagnostics_collect(integration=integration)
    secrets = _secrets_to_hide(integration.company)
    clean_text = scrub({"t": text}, secrets)["t"]
    report = ProblemReport.objects.create(integration=integration, company=integration.company, user=user,
                                          text=clean_text, diagnostics=diagnostics)
    who = f"{user.get_username()} <{user.email}>" if user else "system"
    body = scrub({"b": _("Problem report #%(id)s from %(who)s for %(company)s (%(system)s):\n\n%(text)s\n\n"
                         "Diagnostics (no secrets):\n%(diagnostics)s\n")
                  % {"id": report.pk, "who": who, "company": integration.company,
                     "system": integration.get_system_display(), "text": clean_text,
                     "diagnostics": json.dumps(diagnostics, indent=2, ensure_ascii=False)}}, secrets)["b"]
    support = django_settings.KONTERA_SUPPORT_EMAIL
    message = EmailMessage(
        subject=_("Problem report: %(company)s – %(system)s") % {"company": integration.company,
                                                                  "system": integration.get_system_display()},
        body=body, from_email=django_settings.DEFAULT_FROM_EMAIL, to=[support],
        reply_to=[user.email] if user and user.email else None)
    sent = message.send(fail_silently=True)
    if sent:
        ProblemReport.objects.filter(pk=report.pk).update(emailed_to=support)
        report.emailed_to = support
    audit_record(action="netseasy:problem_report", integration=integration, actor=user,
                 message=_("Problem report #%(id)s stored%(mailed)s.") % {
                     "id": report.pk, "mailed": _(" and e-mailed to support") if sent else ""})
    return report


# =============================================================================================
# Demo
# =============================================================================================


def demo_netseasy(company) -> dict:
    """The demo web shop sells through the Nets Easy sandbox's demo merchant (idempotent).

    When the company's Fortnox is connected and its chart imported, the settings are saved for real
    (a test voucher goes to Fortnox, awaiting OK); until then they are prefilled and waiting.
    """
    from integrations.netseasy.sandbox import DEMO_DAYS, DEMO_SECRET_KEY

    values = {
        "start_date": (timezone.localdate() - dt.timedelta(days=DEMO_DAYS)).isoformat(),
        "sales_account_se": 3001, "sales_account_eu": 3106, "sales_account_world": 3105,
        "sales_account_eu_b2b": 3108, **{k: v for k, v in DEFAULTS.items()},
    }
    integration = Integration.objects.filter(company=company, system=SOURCE).first()
    if integration is not None and integration.status != IntegrationStatus.SETTING_UP:
        return {"integration": integration.pk, "status": integration.status, "created": False}
    ready, reason = fortnox_ready(company)
    if ready:
        saved = netseasy_settings_save(company=company, values={**(integration.settings if integration else {}),
                                                                **values}, secret_key=DEMO_SECRET_KEY,
                                       actor="demo")
        return {"integration": saved.integration.pk, "status": saved.integration.status, "created": True,
                "test_voucher": saved.test_voucher.pk if saved.test_voucher else None}
    if integration is None:
        integration = Integration.objects.create(
            company=company, system=SOURCE, status=IntegrationStatus.SETTING_UP, settings=clean_settings(values),
            credentials={"secret_key": DEMO_SECRET_KEY},
            status_message=_("Prefilled for the demo merchant. %(reason)s Then open “Nets Easy settings” and "
                             "press Save: a test voucher goes to Fortnox.") % {"reason": reason})
    return {"integration": integration.pk, "status": integration.status, "created": False, "waiting_for": reason}

