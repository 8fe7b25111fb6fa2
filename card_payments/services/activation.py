"""Activation: saving the settings sends a test voucher to Fortnox and e-mails its number; booking starts
only after staff press OK (``netseasy_confirm``)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from bookkeeping import rules
from bookkeeping.models import Account, AuditEvent, Voucher, VoucherKind, VoucherRow, VoucherState
from bookkeeping.services.audit import Actor, actor_parts, audit_record
from bookkeeping.services.integrations import in_language, notify_staff, user_language
from bookkeeping.services.mappings import account_mappings_set
from bookkeeping.services.voucher_totals import voucher_totals_refresh
from bookkeeping.services.vouchers import voucher_queue
from integrations import registry
from integrations.base import (
    ConnectorError,
)
from integrations.crypto import mask_secret
from integrations.models import Integration, IntegrationStatus
from wording import Msg, amount, coded, restored, set_text, stored, update_values

from .settings import (
    ACCOUNT_ROWS,
    HOME_CURRENCY,
    INTERNAL_KEYS,
    ONE,
    SOURCE,
    TARGET,
    TEST_DESCRIPTION,
    ZERO,
    NetsConfig,
    clean_secret_key,
    clean_settings,
    clean_stored_settings,
    nets_accounts,
    settings_problems,
    split_settings,
)


@dataclass
class SaveResult:
    integration: Integration
    warnings: list[str] = field(default_factory=list)
    test_voucher: Voucher | None = None
    test_voucher_sent: bool = False  # False: nothing that affects booking changed, the last one stands
    key_changed: bool = False

    @property
    def message(self) -> Msg:
        if self.test_voucher_sent:
            return Msg("Saved. A test voucher is on its way to Fortnox and you get an e-mail with the details; "
                       "check it in Fortnox, then press OK below.")
        if self.key_changed:
            return Msg("Saved. Nothing that affects booking changed, so no new test voucher was sent; the new "
                       "secret key is being checked with Nets Easy.")
        return Msg("Nothing that affects booking changed, so no new test voucher was sent.")


def _booking_settings(values: dict) -> dict:
    """What books: everything but Kontera's own bookkeeping of the activation, without empty values."""
    return {k: v for k, v in (values or {}).items() if k not in INTERNAL_KEYS and v not in (None, "", {})}


def _test_voucher_stands(integration: Integration | None, cleaned: dict) -> bool:
    """Saving what is already saved, with a test voucher that reached (or is on its way to) Fortnox:
    no new test voucher — every save would otherwise put another one in the payout series."""
    if integration is None or integration.status == IntegrationStatus.SETTING_UP:
        return False
    try:
        before = {**clean_stored_settings(integration.settings or {}), **nets_accounts(integration.company)}
    except ValidationError:
        return False
    if _booking_settings(before) != _booking_settings(cleaned):
        return False
    voucher = Voucher.objects.filter(pk=_activation(integration).get("test_voucher_id")).first()
    return voucher is not None and voucher.state in (VoucherState.POSTED, VoucherState.QUEUED, VoucherState.SENDING)


def netseasy_settings_save(*, company, values: dict, secret_key: str | None = None, actor: Actor = None) -> SaveResult:
    """Save the settings (and a new secret key), then start the activation: a test voucher to Fortnox.

    The integration becomes "awaiting confirmation" and books nothing until staff press OK. Saving
    what is saved already sends no new test voucher (a new key is only checked again). Raises
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
        raise ValidationError({"secret_key": [Msg("Paste the Nets Easy live secret key.")]})
    errors, warnings = settings_problems(company=company, values=cleaned)
    if errors:
        raise ValidationError({name: [message] for name, message in errors.items()})
    if secret_key and secret_key.startswith("test-"):
        warnings.append(Msg("This is a test key: it only sees payments made in Nets Easy's test environment."))
    key_changed = bool(secret_key) and secret_key != ((existing.credentials or {}).get("secret_key") if existing
                                                      else None)
    if _test_voucher_stands(existing, cleaned):
        return _save_without_test_voucher(existing, secret_key if key_changed else None, warnings, actor)

    user, _label = actor_parts(actor)
    kept, rows = split_settings(cleaned)
    with transaction.atomic():
        integration, _created = Integration.objects.select_for_update().get_or_create(company=company, system=SOURCE)
        previous = dict(integration.settings or {})
        integration.settings = {**{k: v for k, v in kept.items() if k not in ("activation", "last_sync")},
                                "last_sync": previous.get("last_sync", {})}
        _accounts_save(company=company, rows=rows, actor=actor)
        if secret_key:
            integration.credentials = {**(integration.credentials or {}), "secret_key": secret_key}
        integration.status = IntegrationStatus.AWAITING_CONFIRMATION
        set_text(integration, "status_message", Msg(
            "Saved. A test voucher is on its way to Fortnox; check it there, then press OK to start automatic "
            "booking."))
        integration.save()
        voucher = _test_voucher_create(integration=integration, actor=actor)
        integration.settings["activation"] = {
            "test_voucher_id": voucher.pk,
            "requested_by": user.pk if user else None,
            "requested_at": timezone.now().isoformat(),
            "email_sent_for": "",
            "key_check": {"ok": None, "message": stored(Msg("The secret key is being checked with Nets Easy."))},
        }
        integration.save(update_fields=["settings", "updated_at"])
        audit_record(action="netseasy:settings_saved", integration=integration, actor=actor,
                     message=Msg("Settings saved; test voucher %(ref)s queued; awaiting confirmation.",
                                 ref=voucher.source_reference),
                     data={**{k: v for k, v in integration.settings.items() if k != "activation"},
                           "accounts": {name: cleaned.get(name) for name in (*ACCOUNT_ROWS, "vat_accounts")}})
        voucher_queue(voucher=voucher, actor=actor)
        pk = integration.pk
        transaction.on_commit(lambda: _enqueue("card_payments.tasks.activation_check", pk))
    voucher.refresh_from_db()
    return SaveResult(integration=integration, warnings=warnings, test_voucher=voucher, test_voucher_sent=True,
                      key_changed=key_changed)


def _save_without_test_voucher(integration: Integration, secret_key: str | None, warnings: list, actor: Actor
                               ) -> SaveResult:
    """Nothing booking-relevant changed: keep the test voucher and the state; a new key is checked again."""
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if secret_key:
            locked.credentials = {**(locked.credentials or {}), "secret_key": secret_key}
            activation = {**_activation(locked), "email_sent_for": "", "key_check": {
                "ok": None, "message": stored(Msg("The secret key is being checked with Nets Easy."))}}
            locked.settings = {**(locked.settings or {}), "activation": activation}
            locked.save(update_fields=["credentials", "settings", "updated_at"])
            pk = locked.pk
            transaction.on_commit(lambda: _enqueue("card_payments.tasks.activation_check", pk))
        audit_record(action="netseasy:settings_saved", integration=locked, actor=actor,
                     message=Msg("Settings saved unchanged; the test voucher stands%(key)s.",
                                 key=Msg("; a new secret key is being checked") if secret_key else ""))
    voucher = Voucher.objects.filter(pk=_activation(locked).get("test_voucher_id")).first()
    return SaveResult(integration=locked, warnings=warnings, test_voucher=voucher, test_voucher_sent=False,
                      key_changed=bool(secret_key))


def _accounts_save(*, company, rows: dict, actor: Actor) -> None:
    """The page's accounts are the company's mapping rows: set exactly those (errors given back per field)."""
    try:
        account_mappings_set(company=company, system=TARGET, rows=rows, actor=actor)
    except ValidationError as exc:
        fields = {f"{kind}:{key}": name for name, (kind, key) in ACCOUNT_ROWS.items()}
        errors: dict[str, list[str]] = {}
        for code, messages in exc.message_dict.items():
            kind_key = code.rsplit(":", 1)[0]
            name = fields.get(kind_key, "vat_accounts" if kind_key.startswith("output_vat:") else "__all__")
            errors.setdefault(name, []).extend(messages)
        raise ValidationError(errors) from None


def _enqueue_sync(integration_id: int, actor_label: str) -> None:
    from .sync import enqueue_sync

    enqueue_sync(integration_id, actor=actor_label)


def _enqueue(func: str, *args) -> None:
    from django_q.tasks import async_task

    async_task(func, *args, task_name=f"{func.rsplit('.', 1)[-1]}-{'-'.join(map(str, args))}"[:100])


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
    voucher_totals_refresh(voucher=voucher)
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
    _save_activation(integration.pk, key_check={"ok": ok, "message": stored(message),
                                                "at": timezone.now().isoformat()})
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

    @property
    def key_line(self) -> str:
        """The secret key as the page shows it: accepted, refused (why), or stored and not checked yet."""
        return self.key_message


def activation_status(integration: Integration) -> ActivationStatus:
    activation = _activation(integration)
    voucher = Voucher.objects.filter(pk=activation.get("test_voucher_id")).first() if activation else None
    key = activation.get("key_check") or {}
    stored_key = (integration.credentials or {}).get("secret_key")
    blockers = []
    if voucher is None:
        state, message = "none", Msg("No test voucher yet: save the settings to send one.")
    elif voucher.state == VoucherState.POSTED:
        state = "posted"
        message = Msg("The test voucher is in Fortnox as %(number)s (series %(series)s, %(date)s). It debits and "
                      "credits 1.00 on each account, so it changes no balance.",
                      number=voucher.remote_label, series=voucher.series, date=voucher.date)
    elif voucher.state in (VoucherState.FAILED, VoucherState.AWAITING_AUTHORISATION):
        state = "failed"
        message = Msg("The test voucher did not reach Fortnox: %(reason)s",
                      reason=coded(voucher, "last_error") or voucher.get_state_display())
    else:
        state = "sending"
        message = Msg("The test voucher is on its way to Fortnox (%(state)s). This page shows the result "
                      "within minutes.", state=voucher.get_state_display())
        if voucher.last_error:
            message = Msg.join(" ", [message, Msg("Last attempt: %(error)s", error=coded(voucher, "last_error"))])
    if integration.status != IntegrationStatus.AWAITING_CONFIRMATION:
        blockers.append(Msg("The integration is not awaiting confirmation (status: %(status)s).",
                            status=integration.get_status_display()))
    if state != "posted":
        blockers.append(Msg("The test voucher must be in Fortnox first."))
    if key.get("message"):
        key_message = restored(key["message"])
    elif stored_key:
        key_message = Msg("Stored (%(masked)s); it is checked with Nets Easy when you save.",
                          masked=mask_secret(stored_key))
    else:
        key_message = Msg("No secret key stored yet.")
    if key.get("ok") is not True:
        blockers.append(restored(key["message"]) if key.get("message") and key.get("ok") is False
                        else Msg("The secret key has not been checked with Nets Easy yet."))
    return ActivationStatus(state=state, voucher=voucher, message=message, key_ok=key.get("ok"),
                            key_message=key_message, can_confirm=not blockers, blockers=blockers)


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
                     message=Msg("Test voucher %(number)s confirmed; automatic booking is on.", number=status.voucher.remote_label))
        pk = integration.pk
        transaction.on_commit(lambda: _enqueue_sync(pk, label))
    return True, Msg("Confirmed. Nets Easy payouts are now booked in Fortnox automatically.")


def test_voucher_followup(*, integration: Integration) -> str:
    """E-mail the staff user who saved the settings once the test voucher's and the key's outcomes are known."""
    status = activation_status(integration)
    activation = _activation(integration)
    if status.voucher is None or status.state not in ("posted", "failed"):
        return "pending"
    if status.state == "posted" and status.key_ok is None:
        return "pending"  # the e-mail says whether to press OK: wait for Nets Easy's answer on the key
    marker = f"{status.voucher.pk}:{status.state}:{status.key_ok}"
    if activation.get("email_sent_for") == marker:
        return "sent_before"
    company = integration.company
    user = get_user_model().objects.filter(pk=activation.get("requested_by")).first()
    recipients = [user.email] if user and user.email else []
    subject, body = _test_voucher_mail(integration, status)
    if recipients:
        language = user_language(user)
        send_mail(in_language(language, subject), in_language(language, body),
                  django_settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True)
    else:
        notify_staff(company=company, subject=subject, body=body)
    _save_activation(integration.pk, email_sent_for=marker)
    # The integration page shows the outcome too, in words — the same words as the key line and the e-mail.
    if status.state == "posted" and status.key_ok:
        banner = Msg("Test voucher %(number)s is in Fortnox. Check it there, then press OK to start automatic "
                     "booking.", number=status.voucher.remote_label)
    elif status.state == "posted":
        banner = Msg("Test voucher %(number)s is in Fortnox, but Nets Easy refused the secret key: %(reason)s "
                     "Paste the live secret key again and save; OK can be pressed once Nets Easy accepts it.",
                     number=status.voucher.remote_label, reason=status.key_message)
    else:
        banner = status.message
    locked = Integration.objects.get(pk=integration.pk)
    Integration.objects.filter(pk=integration.pk, status=IntegrationStatus.AWAITING_CONFIRMATION).update(
        **update_values(locked, status_message=banner))
    audit_record(action="netseasy:test_voucher_mail", integration=integration,
                 message=Msg("Test voucher e-mail sent (%(state)s).", state=status.state))
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
                     f"D {amount(debit):>8}  K {amount(credit):>8}" for account, (debit, credit) in per_account.items())
    if status.state == "posted":
        subject = Msg("Nets Easy → Fortnox for %(company)s: test voucher %(number)s posted", company=company, number=voucher.remote_label)
        body = Msg("The test voucher for the Nets Easy connection of %(company)s is in Fortnox.\n\n"
            "Fortnox voucher: %(number)s, series %(series)s, date %(date)s\n"
            "Description: %(description)s\n\nRows (each account is debited and credited 1.00, so no balance "
            "changes and nothing needs reversing):\n%(rows)s\n\n"
            "Secret key check with Nets Easy: %(key)s\n\n"
            "%(next)s\n", company=company, number=voucher.remote_label, series=voucher.series, date=voucher.date,
            description=voucher.description, rows=rows, key=status.key_message, next=_next_step(status, company))
    else:
        subject = Msg("Nets Easy → Fortnox for %(company)s: the test voucher failed", company=company)
        body = Msg("The test voucher for the Nets Easy connection of %(company)s did not reach Fortnox.\n\n"
            "Reason: %(reason)s\n\nIt would have been posted in series %(series)s on %(date)s with these rows:\n"
            "%(rows)s\n\nFix the cause (for example activate the account in Fortnox, or choose another account "
            "or series), then save the Nets Easy settings again to send a new test voucher.\n", company=company, reason=coded(voucher, "last_error") or voucher.get_state_display(), series=voucher.series, date=voucher.date,
            rows=rows)
    return subject, body


def _next_step(status: ActivationStatus, company) -> Msg:
    if status.key_ok:
        return Msg("If it looks right in Fortnox, press “OK – start automatic booking” on the Nets Easy "
                   "integration page in Kontera (or run: manage.py netseasy_confirm %(slug)s). Until then nothing "
                   "is booked.", slug=company.slug)
    return Msg("Nets Easy refused the secret key, so booking cannot start yet: paste the live secret key again on "
               "the Nets Easy settings page and save (no new test voucher is needed). The OK button appears once "
               "Nets Easy accepts the key.")
