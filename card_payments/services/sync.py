"""The sync: queued once per integration (with its progress), it reads payouts from Nets Easy (HTTP, outside transactions), store them once, then book them."""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django_q.tasks import async_task

from bookkeeping.models import AuditEvent
from bookkeeping.services.audit import Actor, audit_record
from bookkeeping.services.integrations import notify_staff
from integrations import registry
from integrations.base import (
    AuthError,
    ConnectorError,
    PayoutDTO,
    RemoteValidationError,
    lines_to_json,
)
from integrations.models import Integration, IntegrationStatus
from wording import Msg, set_text, stored, update_values

from ..models import NetsPayment, NetsPaymentAction, NetsPayout, PayoutState
from .payout_booking import SyncResult, payouts_book
from .settings import HOME_CURRENCY, NetsConfig

SYNC_TIMEOUT = 280  # below Q_CLUSTER["timeout"]: the ticket frees itself if a worker dies


def progress_key(integration_id: int) -> str:
    return f"kontera:netseasy:sync:{integration_id}"


def sync_progress(integration_id: int) -> dict:
    return cache.get(progress_key(integration_id)) or {}


def _ticket(integration_id: int) -> str:
    return f"kontera:netseasy:sync-ticket:{integration_id}"


def enqueue_sync(integration_id: int, *, from_date: str | None = None, actor: str = "worker") -> bool:
    """Queue one sync per integration; False when one is already queued or running."""
    if not cache.add(_ticket(integration_id), 1, timeout=SYNC_TIMEOUT):
        return False
    cache.set(progress_key(integration_id), {"state": "queued", "message": "", "done": 0, "total": 0,
                                             "started": timezone.now().isoformat()}, timeout=24 * 3600)
    async_task("card_payments.tasks.sync_integration", integration_id, from_date, actor, True,
               task_name=f"netseasy-sync-{integration_id}", group="netseasy")
    return True


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
        result.errors.append(Msg("Nets Easy for %(company)s has status “%(status)s”: nothing was fetched. %(why)s", status=integration.get_status_display(), company=integration.company, why=integration.status_message))
        return result
    config = NetsConfig.of(integration)
    # --from narrows the reading (e.g. after an outage); nothing before the start date is ever read.
    start = max(from_date or config.start_date, config.start_date)
    today = timezone.localdate()
    result.from_date, result.to_date = start.isoformat(), today.isoformat()
    connector = connector or registry.connector_for(integration)
    try:
        step(Msg("Reading payouts from Nets Easy"))
        payouts = connector.list_payouts(start, today)
        result.payouts_seen = len(payouts)
        for index, dto in enumerate(payouts, start=1):
            step(Msg("Reading payout %(n)s of %(total)s", n=index, total=len(payouts)),
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
        result.booking_paused = Msg("Nothing is booked until staff press OK after checking the test voucher.")
    else:
        step(Msg("Booking payouts"))
        payouts_book(integration=integration, config=config, actor=actor, result=result, progress=step)
    _count_states(integration, result)
    _remember_sync(integration, result)
    audit_record(action="netseasy:sync", integration=integration, actor=actor,
                 outcome=AuditEvent.Outcome.OK if result.ok else AuditEvent.Outcome.ERROR,
                 message=Msg("%(seen)s payouts read, %(new)s new, %(booked)s already booked, %(vouchers)s vouchers "
                             "created.", seen=result.payouts_seen, new=result.payouts_new,
                             booked=result.already_booked, vouchers=result.vouchers_created),
                 data=result.as_dict())
    step(Msg("Done"), done=result.payouts_seen, total=result.payouts_seen)
    return result


def _fetch_payout(integration: Integration, dto: PayoutDTO, connector, result: SyncResult) -> None:
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
    if stored.state in (PayoutState.BOOKED, PayoutState.HANDLED_MANUALLY):
        result.already_booked += 1
        return
    if stored.currency != HOME_CURRENCY:
        return
    # The customer's country is needed for every unbooked charge and refund: fetch each payment once.
    for action in stored.actions.filter(booked_at__isnull=True, action__in=["CHARGE", "REFUND"]):
        cached = NetsPayment.objects.filter(company=company, payment_id=action.payment_id).first()
        if cached is not None and action.nets_id in (cached.charges if action.action == "CHARGE" else cached.refunds):
            continue
        try:
            payment = connector.get_payment(action.payment_id)
        except RemoteValidationError as exc:
            NetsPaymentAction.objects.filter(pk=action.pk).update(**update_values(action, problem=Msg(
                "Nets Easy could not give payment %(id)s: %(error)s", id=action.payment_id, error=exc.message)))
            continue
        NetsPayment.objects.update_or_create(
            company=company, payment_id=action.payment_id,
            defaults=dict(country=payment.country[:3], is_company=payment.is_company, currency=payment.currency,
                          reference=payment.reference[:128],
                          charges={k: lines_to_json(v) for k, v in payment.charges.items()},
                          refunds={k: lines_to_json(v) for k, v in payment.refunds.items()}))
        result.payments_fetched += 1


def _lost_key(integration: Integration, reason: str) -> None:
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        if locked.status == IntegrationStatus.NEEDS_REAUTHORISATION:
            return
        locked.status = IntegrationStatus.NEEDS_REAUTHORISATION
        fields = set_text(locked, "status_message", reason)
        locked.save(update_fields=["status", *fields, "updated_at"])
        audit_record(action="netseasy:key_refused", outcome=AuditEvent.Outcome.ERROR, integration=locked,
                     message=reason)
        company = locked.company
        transaction.on_commit(lambda: notify_staff(
            company=company,
            subject=Msg("Nets Easy no longer accepts the secret key for %(company)s", company=company),
            body=Msg("Kontera could not read the Nets Easy payouts of %(company)s: %(reason)s\n\nNothing is lost: "
                   "paste the live secret key again on the Nets Easy settings page and confirm the test voucher; "
                   "the payouts are then booked from where they stopped.", company=company, reason=reason),
        ))


def _remember_sync(integration: Integration, result: SyncResult) -> None:
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        locked.settings = {**(locked.settings or {}), "last_sync": {
            "at": timezone.now().isoformat(), "ok": result.ok, "errors": [stored(e) for e in result.errors[:5]],
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
