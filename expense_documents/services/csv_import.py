"""Expense documents → Dinero purchase vouchers: setup, import, workflow rules and the one sync.

The sync (``expense_document_sync``) is used by the worker, the admin actions and ``documents_push``.
It turns a document into a ``Voucher`` (source ``expenses``, source reference = the document's
reference) and hands it to the voucher state machine; the dispatcher sends it through the Dinero
connector. No remote call happens here except in the setup functions, which validate what staff
typed at once (the guide's wizard) — never inside a transaction.

States a document can be in, as staff see them (see ``selectors.expenses.document_sync_state``):
opted out (by a named rule), waiting (e.g. the DKK amount of a foreign-currency document is missing:
the voucher stays a draft, is never queued, and says why — nothing failed, something is missing),
refused (a rule such as 'only P&L categories' failed before sending, or Dinero refused it), queued,
synced, changed (an update is on its way).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations import registry
from integrations.base import ConnectionInfo, ConnectorError, MasterData
from integrations.crypto import mask_secret
from integrations.models import Integration, IntegrationStatus

from .. import rules
from ..models import (
    AccountKind,
    AccountPlan,
    AuditEvent,
    DocumentType,
    ExpenseDocument,
    ExpenseLine,
    PaymentMethod,
    PaymentMethodList,
    VatCode,
    Voucher,
    VoucherKind,
    VoucherRow,
    VoucherState,
    WorkflowAction,
    WorkflowRule,
)
from ..models.plans import Origin
from ..selectors.plans import plan_snapshot
from .audit import Actor, actor_parts, audit_record
from .vouchers import voucher_fingerprint, voucher_mark_changed, voucher_queue, voucher_transition

logger = logging.getLogger("kontera.expenses")

SYSTEM = "dinero"
SOURCE_SYSTEM = "expenses"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
S = VoucherState
# Problems that make a document wait (a draft, never queued) rather than be refused.
WAITING_CODES = frozenset({"no_dkk_amount"})
MAX_ATTACHMENT_BYTES = 6_000_000


def dinero_integration(company) -> Integration | None:
    return Integration.objects.filter(company=company, system=SYSTEM).first()


def _user(actor: Actor):
    user, _label = actor_parts(actor)
    return user


# =====================================================================================================
# Document → voucher content
# =====================================================================================================


@dataclass
class VoucherContent:
    kind: str
    date: dt.date
    description: str
    rows: list[dict]
    extra: dict
    problems: list[rules.Problem]
    used_error_account: bool


def allocate(total: Decimal, amounts: list[Decimal]) -> list[Decimal]:
    """Split ``total`` over lines in proportion to ``amounts``; the last line takes the rounding."""
    base = sum(amounts, ZERO)
    if not amounts:
        return []
    if base == 0:
        return [ZERO] * (len(amounts) - 1) + [total]
    shares = [(total * amount / base).quantize(CENT, rounding=ROUND_HALF_UP) for amount in amounts[:-1]]
    return [*shares, total - sum(shares, ZERO)]


def document_total_dkk(document: ExpenseDocument, lines=None) -> Decimal | None:
    """The total in DKK: the lines' total, or the DKK bank amount for foreign currency (None if unknown)."""
    if document.is_foreign_currency:
        return document.amount_dkk
    lines = document.lines.all() if lines is None else lines
    return sum((line.amount for line in lines), ZERO)


def document_content(document: ExpenseDocument, *, integration: Integration | None, plan=None) -> VoucherContent:
    """Everything the voucher will say, and every problem found before anything is sent."""
    plan = plan or plan_snapshot(document.company, SYSTEM)
    conf = (integration.settings if integration else {}) or {}
    info = AccountPlan.objects.filter(company=document.company, system=SYSTEM).values_list(
        "company_info", flat=True).first() or {}
    purchase_accounts = set(info.get("purchase_accounts") or [])
    deposit_accounts = set(info.get("deposit_accounts") or [])
    lines = list(document.lines.all())
    problems: list[rules.Problem] = []
    used_error_account = False

    if not lines:
        problems.append(rules.Problem("no_lines", _("The document has no lines.")))
    amounts = [line.amount for line in lines]
    if document.is_foreign_currency:
        if document.amount_dkk is None:
            problems.append(rules.Problem(
                "no_dkk_amount",
                _("Waiting for the DKK amount: the document is in %(currency)s and Dinero books DKK only. Enter "
                  "the amount actually drawn from the bank in DKK; Kontera does not guess an exchange rate.")
                % {"currency": document.currency},
            ))
            dkk = amounts  # placeholders so the draft still balances; it is never sent like this
        else:
            dkk = allocate(document.amount_dkk, amounts)
    else:
        dkk = amounts

    error_account = conf.get("error_account")
    rows: list[dict] = []
    for index, (line, amount) in enumerate(zip(lines, dkk, strict=True), start=1):
        account = line.category
        if account is None:
            if error_account:
                account = int(error_account)
                used_error_account = True
            else:
                problems.append(rules.Problem("no_category", _("The line has no category and no error account "
                                                               "is set in the Dinero setup."), index))
                account = 0
        else:
            found = rules.check_profit_and_loss(plan, account)
            problems += [rules.Problem(p.code, p.message, index) for p in found]
            if not found and purchase_accounts and account in plan.accounts and account not in purchase_accounts:
                problems.append(rules.Problem(
                    "not_purchase_account",
                    _("Account %(account)s cannot be used on a purchase in Dinero (it is not one of Dinero's "
                      "purchase accounts, e.g. an income account). Choose an expense account.") % {"account": account},
                    index,
                ))
        rows.append({"account": account, "debit": amount, "credit": ZERO, "vat_code": line.vat_code,
                     "text": (line.text or document.description or document.supplier_name)[:100]})

    total = sum(dkk, ZERO)
    extra: dict = {
        "purchase_type": "credit" if document.type == DocumentType.INVOICE else "cash",
        "document_reference": document.reference,
        "supplier": {"name": document.supplier_name, "vat": document.supplier_vat},
    }
    if document.type == DocumentType.INVOICE:
        counter = conf.get("invoice_counter_account")
        extra["payment_date"] = (document.due_date or document.document_date).isoformat()
        if not counter:
            problems.append(rules.Problem("no_counter_account", _("No default counter account for invoices is set "
                                                                  "in the Dinero setup.")))
    else:
        method = document.payment_method
        counter = None
        if method is None:
            problems.append(rules.Problem("no_payment_method", _("A receipt needs its payment method (how it was "
                                                                 "paid): choose one.")))
        elif method.payment_list.company_id != document.company_id:
            problems.append(rules.Problem("foreign_payment_method", _("The payment method belongs to another "
                                                                      "company.")))
        else:
            counter = method.account_number
            extra["deposit_account"] = counter
            if deposit_accounts and counter not in deposit_accounts:
                problems.append(rules.Problem(
                    "not_deposit_account",
                    _("Payment method %(method)s points at account %(account)s, which is not a deposit account "
                      "(beholdning) in Dinero.") % {"method": method.name, "account": counter},
                ))
    if counter:
        rows.append({"account": int(counter), "debit": ZERO, "credit": total, "vat_code": "",
                     "text": document.supplier_name[:100]})
    if document.attachment:
        extra["attachment"] = document.attachment.name
        try:
            extra["_attachment_path"] = document.attachment.path
        except NotImplementedError:  # a storage without local paths
            extra["_attachment_path"] = ""
    if document.is_foreign_currency:
        extra["original_currency"] = document.currency.upper()
        extra["original_amount"] = f"{sum(amounts, ZERO):.2f}"
    extra["_blocking"] = [[p.code, str(p)] for p in problems]
    extra["_prepared_on"] = timezone.localdate().isoformat()
    description = (f"{document.supplier_name}: {document.description}" if document.description
                   else f"{document.supplier_name} {document.reference}")
    return VoucherContent(
        kind=VoucherKind.SUPPLIER_INVOICE if document.type == DocumentType.INVOICE else VoucherKind.RECEIPT,
        date=document.document_date,
        description=description[:200],
        rows=rows,
        extra=extra,
        problems=problems,
        used_error_account=used_error_account,
    )


def _row_tuples(rows) -> list[tuple]:
    return [(int(r["account"]) if isinstance(r, dict) else r.account,
             f"{(r['debit'] if isinstance(r, dict) else r.debit):.2f}",
             f"{(r['credit'] if isinstance(r, dict) else r.credit):.2f}",
             (r["vat_code"] if isinstance(r, dict) else r.vat_code) or "",
             (r["text"] if isinstance(r, dict) else r.text) or "") for r in rows]


def _apply_content(voucher: Voucher, content: VoucherContent) -> bool:
    """Write the content into the voucher; True when what would be posted changed."""
    before = voucher_fingerprint(voucher) if voucher.pk else ""
    voucher.kind = content.kind
    voucher.date = content.date
    voucher.description = content.description
    voucher.currency = "DKK"
    voucher.extra = content.extra
    voucher.save()
    if _row_tuples(voucher.rows.all()) != _row_tuples(content.rows):
        voucher.rows.all().delete()
        VoucherRow.objects.bulk_create([
            VoucherRow(voucher=voucher, position=position, account=row["account"], debit=row["debit"],
                       credit=row["credit"], vat_code=row["vat_code"] or "", text=row["text"] or "")
            for position, row in enumerate(content.rows)
        ])
    return voucher_fingerprint(voucher) != before


def _audit_version(voucher: Voucher, content: VoucherContent, actor: Actor) -> None:
    version = AuditEvent.objects.filter(voucher=voucher, action="expense:version").count() + 1
    lines = [f"{r['account']} {r['vat_code'] or '-'} {r['debit']:.2f}" for r in content.rows if r["debit"]]
    total = sum((r["debit"] for r in content.rows), ZERO)
    audit_record(action="expense:version", actor=actor, voucher=voucher,
                 message=_("Version %(n)s: %(total)s DKK; lines %(lines)s") % {
                     "n": version, "total": f"{total:.2f}", "lines": "; ".join(lines) or "–"},
                 data={"version": version, "rows": [[r["account"], f"{r['debit']:.2f}", f"{r['credit']:.2f}",
                                                     r["vat_code"]] for r in content.rows],
                       "extra": {k: v for k, v in content.extra.items() if not k.startswith("_")}})


# =====================================================================================================
# Workflow rules
# =====================================================================================================


def workflow_rule_matches(rule: WorkflowRule, document: ExpenseDocument, *, lines=None) -> bool:
    """Every condition that is set must hold."""
    if not rule.active:
        return False
    if rule.action == WorkflowAction.OPT_OUT_INVOICES and document.type != DocumentType.INVOICE:
        return False
    if rule.action == WorkflowAction.OPT_OUT_RECEIPTS and document.type != DocumentType.RECEIPT:
        return False
    if rule.supplier_contains:
        needle = rule.supplier_contains.strip().lower()
        if needle not in (document.supplier_name or "").lower() and needle not in (document.supplier_vat or "").lower():
            return False
    lines = list(document.lines.all()) if lines is None else lines
    if rule.category is not None and not any(line.category == rule.category for line in lines):
        return False
    if rule.payment_method_id is not None and document.payment_method_id != rule.payment_method_id:
        return False
    if rule.min_amount is not None or rule.max_amount is not None:
        total = document_total_dkk(document, lines)
        if total is None:
            return False
        if rule.min_amount is not None and total < rule.min_amount:
            return False
        if rule.max_amount is not None and total > rule.max_amount:
            return False
    return True


def workflow_rule_for(document: ExpenseDocument) -> WorkflowRule | None:
    lines = list(document.lines.all())
    for rule in WorkflowRule.objects.filter(company_id=document.company_id, active=True).order_by("position", "id"):
        if workflow_rule_matches(rule, document, lines=lines):
            return rule
    return None


def _not_yet_sent(document: ExpenseDocument) -> bool:
    voucher = document.voucher
    return voucher is None or (not voucher.remote_id and voucher.state != S.SENDING)


def workflow_rules_reevaluate(*, company, actor: Actor = None) -> dict:
    """After a rule is added, edited or deleted: every document not yet sent is judged again."""
    documents = ExpenseDocument.objects.filter(company=company).select_related("voucher")
    outcomes: dict[str, int] = {}
    for document in documents:
        if not _not_yet_sent(document):
            continue
        outcome = expense_document_sync(document=document, actor=actor)
        outcomes[outcome.state] = outcomes.get(outcome.state, 0) + 1
    return outcomes


def workflow_rule_save(*, rule: WorkflowRule, actor: Actor = None) -> dict:
    created = rule.pk is None
    rule.save()
    audit_record(action="workflow_rule:" + ("created" if created else "changed"), company=rule.company, actor=actor,
                 message=_("Workflow rule “%(name)s” saved (%(action)s).")
                 % {"name": rule.name, "action": rule.get_action_display()})
    return workflow_rules_reevaluate(company=rule.company, actor=actor)


def workflow_rule_delete(*, rule: WorkflowRule, actor: Actor = None) -> dict:
    company = rule.company
    audit_record(action="workflow_rule:deleted", company=company, actor=actor,
                 message=_("Workflow rule “%(name)s” deleted.") % {"name": rule.name})
    rule.delete()
    return workflow_rules_reevaluate(company=company, actor=actor)


# =====================================================================================================
# The sync
# =====================================================================================================


@dataclass
class SyncOutcome:
    reference: str
    state: str
    message: str = ""


def _outcome(document: ExpenseDocument) -> SyncOutcome:
    from ..selectors.expenses import document_sync_state

    state = document_sync_state(document)
    return SyncOutcome(reference=document.reference, state=state.code, message=state.detail)


def expense_document_changed(*, document: ExpenseDocument, actor: Actor = None) -> None:
    """Call after a document or its lines were edited: the worker syncs it (and applies the rules)."""
    ExpenseDocument.objects.filter(pk=document.pk).update(needs_sync=True)
    document.needs_sync = True
    company_id = document.company_id
    transaction.on_commit(lambda: _enqueue(company_id))


def _enqueue(company_id: int) -> None:
    from ..tasks_expenses import enqueue_sync

    enqueue_sync(company_id)


def expense_document_sync(*, document: ExpenseDocument, actor: Actor = None, force: bool = False,
                          kick: bool = True) -> SyncOutcome:
    """Apply the workflow rules, rebuild the voucher from the document and queue what may be sent.

    Idempotent: an unchanged, synced document stays as it is. ``force`` ('Sync again') re-queues a
    refused voucher even though nothing changed (e.g. after fixing something in Dinero).
    """
    integration = dinero_integration(document.company)
    plan = plan_snapshot(document.company, SYSTEM)
    with transaction.atomic():
        document = (ExpenseDocument.objects.select_for_update(of=("self",))
                    .select_related("company", "payment_method__payment_list")
                    .get(pk=document.pk))
        voucher = Voucher.objects.select_for_update().filter(pk=document.voucher_id).first()
        if voucher is not None and voucher.state == S.SENDING:
            return SyncOutcome(document.reference, "busy", _("Being sent right now; the change follows afterwards."))

        rule = workflow_rule_for(document) if (voucher is None or not voucher.remote_id) else None
        document.opted_out_by = rule

        if integration is None or integration.status == IntegrationStatus.SETTING_UP:
            document.save(update_fields=["opted_out_by", "updated_at"])
            return _outcome(document)

        content = document_content(document, integration=integration, plan=plan)
        document.used_error_account = content.used_error_account
        if voucher is None:
            voucher = Voucher.objects.select_for_update().filter(
                company=document.company, source_system=SOURCE_SYSTEM, source_reference=document.reference).first()
        if voucher is None:
            voucher = Voucher(company=document.company, system=SYSTEM, source_system=SOURCE_SYSTEM,
                              source_reference=document.reference, created_by=_user(actor))
            changed = _apply_content(voucher, content) or True
            audit_record(action="expense:voucher_created", actor=actor, voucher=voucher,
                         message=_("Voucher made from expense document %(ref)s.") % {"ref": document.reference})
        else:
            changed = _apply_content(voucher, content)
        if changed:
            _audit_version(voucher, content, actor)
        document.voucher = voucher

        if rule is not None:
            _opt_out(voucher, rule, actor)
        else:
            if voucher.state == S.OPTED_OUT:
                voucher_transition(voucher=voucher, to=S.DRAFT, actor=actor,
                                   message=_("No workflow rule opts it out any more."))
            _hand_over(voucher, content, changed=changed, force=force, actor=actor, kick=kick)

        document.needs_sync = False
        document.synced_at = timezone.now()
        document.save(update_fields=["opted_out_by", "used_error_account", "voucher", "needs_sync", "synced_at",
                                     "updated_at"])
    document.voucher = Voucher.objects.get(pk=voucher.pk)
    return _outcome(document)


def _opt_out(voucher: Voucher, rule: WorkflowRule, actor: Actor) -> None:
    message = _("Opted out of the sync by workflow rule “%(name)s”.") % {"name": rule.name}
    if voucher.state == S.AWAITING_AUTHORISATION:
        voucher_transition(voucher=voucher, to=S.FAILED, actor=actor, message=message)
    if voucher.state in (S.DRAFT, S.QUEUED, S.FAILED):
        voucher_transition(voucher=voucher, to=S.OPTED_OUT, actor=actor, message=message,
                           last_error="", last_error_code="")


def _hand_over(voucher: Voucher, content: VoucherContent, *, changed: bool, force: bool, actor: Actor,
               kick: bool) -> None:
    waiting = [p for p in content.problems if p.code in WAITING_CODES]
    if voucher.state == S.POSTED and changed:
        voucher_mark_changed(voucher=voucher, actor=actor)
        voucher.refresh_from_db()
    if waiting:
        text = rules_text(waiting)
        if voucher.state in (S.QUEUED, S.FAILED):
            voucher_transition(voucher=voucher, to=S.DRAFT, actor=actor, message=text)
        if voucher.last_error != text:
            voucher.last_error, voucher.last_error_code = text, waiting[0].code
            voucher.save(update_fields=["last_error", "last_error_code", "updated_at"])
        return
    if voucher.state == S.DRAFT and voucher.last_error_code in WAITING_CODES:
        voucher.last_error, voucher.last_error_code = "", ""
        voucher.save(update_fields=["last_error", "last_error_code", "updated_at"])
    if voucher.state == S.FAILED and not (changed or force):
        return  # refused and unchanged: staff fix the cause, or press 'Sync again'
    if voucher.state in (S.DRAFT, S.FAILED, S.NEEDS_UPDATE, S.AWAITING_AUTHORISATION):
        voucher_queue(voucher=voucher, actor=actor, kick=kick)
        voucher.refresh_from_db()


def rules_text(problems) -> str:
    return "\n".join(str(p) for p in problems)


def documents_sync(*, company, actor: Actor = None, only_pending: bool = True, limit: int | None = None,
                   kick: bool = True) -> list[SyncOutcome]:
    """Sync a company's new and changed documents (``only_pending``) or all of them."""
    documents = ExpenseDocument.objects.filter(company=company).order_by("document_date", "id")
    if only_pending:
        documents = documents.filter(needs_sync=True)
    if limit:
        documents = documents[:limit]
    return [expense_document_sync(document=d, actor=actor, kick=kick) for d in documents]


@dataclass
class PushResult:
    documents: list[dict] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    ok: bool = True


def documents_push(*, company, actor: Actor = "command") -> PushResult:
    """Sync every document of a company that is not synced yet and send its queued vouchers now."""
    from ..selectors.expenses import document_sync_state
    from .vouchers import voucher_send

    ids = list(ExpenseDocument.objects.filter(company=company).values_list("id", flat=True))
    for document in ExpenseDocument.objects.filter(id__in=ids).select_related("voucher"):
        voucher = document.voucher
        unsent = voucher is None or voucher.state in (S.DRAFT, S.FAILED, S.NEEDS_UPDATE, S.AWAITING_AUTHORISATION)
        if document.needs_sync or unsent:
            expense_document_sync(document=document, actor=actor, force=voucher is not None
                                  and voucher.state in (S.FAILED, S.AWAITING_AUTHORISATION), kick=False)
    queued = Voucher.objects.filter(company=company, system=SYSTEM, source_system=SOURCE_SYSTEM, state=S.QUEUED)
    for voucher_id in queued.order_by("date", "id").values_list("id", flat=True):
        Voucher.objects.filter(pk=voucher_id).update(next_attempt_at=None)
        voucher_send(voucher_id=voucher_id, actor=actor)
    result = PushResult()
    for document in ExpenseDocument.objects.filter(id__in=ids).select_related("voucher", "opted_out_by").order_by(
            "document_date", "id"):
        state = document_sync_state(document)
        result.counts[state.code] = result.counts.get(state.code, 0) + 1
        result.documents.append({"reference": document.reference, "state": state.code, "label": str(state.label),
                                 "detail": state.detail,
                                 "dinero": document.voucher.remote_id if document.voucher else "",
                                 "number": document.voucher.remote_number if document.voucher else ""})
    result.ok = not any(result.counts.get(code) for code in ("refused", "awaiting_authorisation", "queued"))
    return result


# =====================================================================================================
# Setup (the guide's wizard; ``dinero_setup`` is the command's one-call twin)
# =====================================================================================================


class SetupError(Exception):
    def __init__(self, message: str, *, field_name: str = "", link: str = ""):
        super().__init__(message)
        self.message = message
        self.field_name = field_name
        self.link = link


def dinero_requirements(*, company) -> list[str]:
    """What must exist before the integration can be finished (the guide's requirements tab)."""
    problems = []
    lists = PaymentMethodList.objects.filter(company=company, methods__isnull=False).distinct()
    if not lists.exists():
        problems.append(_("%(company)s has no payment-method list for receipts (with at least one payment method). "
                          "Create one first: receipts are cash purchases paid from one of its methods.")
                        % {"company": company})
    return problems


def _transient(company, api_key: str, organization_id: str, settings_: dict | None = None) -> Integration:
    connector = registry.connector_class(SYSTEM)
    merged = connector.validate_settings({**(settings_ or {}), "organization_id": str(organization_id).strip()},
                                         company=company)
    return Integration(company=company, system=SYSTEM, settings=merged, credentials={"api_key": api_key.strip()})


def dinero_probe(*, company, api_key: str, organization_id: str, settings_: dict | None = None
                 ) -> tuple[Integration, ConnectionInfo, MasterData]:
    """Validate the key and organisation at once, then read the master data. Nothing is stored."""
    if not (api_key or "").strip():
        raise SetupError(_("Enter the organisation's Dinero API key."), field_name="api_key")
    if not str(organization_id or "").strip().isdigit():
        raise SetupError(_("The organisation id (firma-ID) is a number, e.g. 123456."), field_name="organization_id")
    transient = _transient(company, api_key, organization_id, settings_)
    connector = registry.connector_for(transient)
    try:
        info = connector.check_connection()
        data = connector.import_master_data()
    except ConnectorError as exc:
        field_name = "organization_id" if exc.code == "41" else "api_key"
        raise SetupError(exc.message, field_name=field_name) from None
    return transient, info, data


def dinero_connect(*, company, api_key: str, organization_id: str, actor: Actor = None) -> Integration:
    """Wizard step: key and organisation validated; stored (the key encrypted) with the master data."""
    from .plans import master_data_store

    existing = dinero_integration(company)
    keep = dict(existing.settings or {}) if existing else {}
    transient, info, data = dinero_probe(company=company, api_key=api_key, organization_id=organization_id,
                                         settings_=keep)
    with transaction.atomic():
        integration, created = Integration.objects.select_for_update().get_or_create(
            company=company, system=SYSTEM, defaults={"status": IntegrationStatus.SETTING_UP})
        integration.settings = transient.settings
        integration.credentials = dict(transient.credentials)
        if integration.status != IntegrationStatus.ACTIVE:
            integration.status = IntegrationStatus.SETTING_UP
            integration.status_message = _("Dinero setup started; finish the wizard to start syncing.")
        integration.save()
        summary = master_data_store(integration=integration, data=data)
        audit_record(action="dinero:connected", outcome=AuditEvent.Outcome.OK, integration=integration, actor=actor,
                     message=_("API key %(key)s and organisation %(org)s (%(name)s) accepted by Dinero; %(n)s "
                               "accounts and %(vat)s VAT types read.")
                     % {"key": mask_secret(api_key.strip()), "org": organization_id, "name": info.company_name,
                        "n": summary.accounts, "vat": summary.vat_codes})
    return integration


def _plan(company) -> AccountPlan:
    plan, _created = AccountPlan.objects.get_or_create(company=company, system=SYSTEM)
    return plan


def resolve_counter_account(company, value) -> int:
    """``--invoice-payment-method``: an account number, or the name or id of one of the company's payment methods."""
    text = str(value or "").strip()
    if not text:
        raise SetupError(_("Choose the default payment method / counter account for invoices."),
                         field_name="invoice_counter_account")
    methods = PaymentMethod.objects.filter(payment_list__company=company)
    by_name = list(methods.filter(name__iexact=text))
    if len(by_name) == 1:
        return by_name[0].account_number
    if text.isdigit():
        if len(text) <= 3 and methods.filter(pk=int(text)).exists():
            return methods.get(pk=int(text)).account_number
        return int(text)
    raise SetupError(_("“%(value)s” is neither an account number nor one of %(company)s's payment methods.")
                     % {"value": text, "company": company}, field_name="invoice_counter_account")


def resolve_payment_list(company, value) -> PaymentMethodList:
    text = str(value or "").strip()
    lists = PaymentMethodList.objects.filter(company=company)
    found = lists.filter(pk=int(text)).first() if text.isdigit() else None
    found = found or lists.filter(name__iexact=text).first()
    if found is None:
        raise SetupError(_("%(company)s has no payment-method list “%(value)s”. Create the list for receipts first.")
                         % {"company": company, "value": text}, field_name="receipt_payment_list")
    return found


def _check_choices(integration: Integration, choices: dict) -> None:
    company = integration.company
    plan = plan_snapshot(company, SYSTEM)
    info = _plan(company).company_info or {}
    purchase = set(info.get("purchase_accounts") or [])
    deposit = set(info.get("deposit_accounts") or [])
    if "error_account" in choices:
        number = choices["error_account"]
        problems = rules.check_account_number(plan, number) + rules.check_profit_and_loss(plan, number)
        if not problems and purchase and number not in purchase:
            problems = [rules.Problem("not_purchase_account", _("Account %(account)s is not a purchase account in "
                                                                "Dinero.") % {"account": number})]
        if problems:
            raise SetupError(_("Error account: %(problems)s") % {"problems": rules_text(problems)},
                             field_name="error_account")
    if "invoice_counter_account" in choices:
        problems = rules.check_account_number(plan, choices["invoice_counter_account"])
        if problems:
            raise SetupError(_("Counter account for invoices: %(problems)s") % {"problems": rules_text(problems)},
                             field_name="invoice_counter_account")
    if "receipt_payment_list" in choices:
        payment_list = PaymentMethodList.objects.filter(company=company, pk=choices["receipt_payment_list"]).first()
        if payment_list is None or not payment_list.methods.exists():
            raise SetupError(_("Choose a payment-method list of %(company)s with at least one payment method.")
                             % {"company": company}, field_name="receipt_payment_list")
        wrong = [f"{m.name} ({m.account_number})" for m in payment_list.methods.all()
                 if (deposit and m.account_number not in deposit)
                 or (not deposit and m.account_number not in plan.accounts)]
        if wrong:
            raise SetupError(_("These payment methods do not point at a deposit account (beholdning) in Dinero: "
                               "%(methods)s. Dinero pays cash purchases from deposit accounts only.")
                             % {"methods": ", ".join(wrong)}, field_name="receipt_payment_list")


def dinero_configure(*, integration: Integration, actor: Actor = None, **choices) -> Integration:
    """Wizard steps after the key: error account and chart choice, invoice counter account, receipt list."""
    choices = {k: v for k, v in choices.items() if v is not None}
    for key in ("error_account", "invoice_counter_account", "receipt_payment_list", "rate_limit_per_minute"):
        if key in choices:
            try:
                choices[key] = int(choices[key])
            except (TypeError, ValueError):
                raise SetupError(_("%(name)s must be a number.") % {"name": key}, field_name=key) from None
    _check_choices(integration, choices)
    connector = registry.connector_class(SYSTEM)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        try:
            locked.settings = connector.validate_settings({**(locked.settings or {}), **choices},
                                                          company=locked.company)
        except Exception as exc:  # ValidationError: plain words for the form
            raise SetupError(" ".join(getattr(exc, "messages", [str(exc)]))) from None
        locked.save(update_fields=["settings", "updated_at"])
        if "import_chart" in choices:
            _apply_chart_choice(locked)
        audit_record(action="dinero:configured", integration=locked, actor=actor,
                     message=_("Dinero settings chosen: %(choices)s")
                     % {"choices": ", ".join(f"{k}={v}" for k, v in sorted(choices.items()))})
    integration.settings = locked.settings
    return integration


def _apply_chart_choice(integration: Integration) -> None:
    """Manual categories: the imported P&L accounts stop being categories (except the error account)."""
    plan = _plan(integration.company)
    keep = {integration.settings.get("error_account"), integration.settings.get("invoice_counter_account")}
    imported_pl = plan.accounts.filter(origin=Origin.IMPORTED, kind=AccountKind.PROFIT_AND_LOSS)
    if integration.settings.get("import_chart", True):
        imported_pl.update(active=True)
        info = {**(plan.company_info or {}), "chart": "full"}
    else:
        imported_pl.exclude(number__in=[k for k in keep if k]).update(active=False)
        info = {**(plan.company_info or {}), "chart": "manual"}
    AccountPlan.objects.filter(pk=plan.pk).update(company_info=info)


def dinero_finish(*, integration: Integration, actor: Actor = None) -> Integration:
    """Every requirement and choice in place: the integration becomes active and documents sync."""
    from .integrations import integration_reconnected

    problems = dinero_requirements(company=integration.company)
    if problems:
        raise SetupError(" ".join(problems), field_name="receipt_payment_list")
    conf = integration.settings or {}
    missing = [label for key, label in (
        ("error_account", _("the error account")),
        ("invoice_counter_account", _("the counter account for invoices")),
        ("receipt_payment_list", _("the payment-method list for receipts")),
    ) if not conf.get(key)]
    if missing or not (integration.credentials or {}).get("api_key"):
        raise SetupError(_("Not finished yet: choose %(missing)s.") % {"missing": ", ".join(missing) or _("the API key")})
    _check_choices(integration, {k: conf[k] for k in ("error_account", "invoice_counter_account",
                                                      "receipt_payment_list")})
    integration_reconnected(integration=integration, actor=actor)
    audit_record(action="dinero:finished", outcome=AuditEvent.Outcome.OK, integration=integration, actor=actor,
                 message=_("Dinero setup finished; documents are synced from now on."))
    ExpenseDocument.objects.filter(company=integration.company, voucher__isnull=True).update(needs_sync=True)
    company_id = integration.company_id
    transaction.on_commit(lambda: _enqueue(company_id))
    integration.refresh_from_db()
    return integration


def dinero_setup(*, company, api_key: str, organization_id: str, error_account, import_chart: bool,
                 invoice_payment_method, receipt_payment_list, book_vouchers: bool = True,
                 rate_limit_per_minute: int | None = None, actor: Actor = None) -> dict:
    """The whole wizard in one call (``manage.py dinero_setup``)."""
    problems = dinero_requirements(company=company)
    if problems:
        raise SetupError(" ".join(problems), field_name="receipt_payment_list")
    payment_list = resolve_payment_list(company, receipt_payment_list)
    counter = resolve_counter_account(company, invoice_payment_method)
    integration = dinero_connect(company=company, api_key=api_key, organization_id=organization_id, actor=actor)
    choices = {"error_account": error_account, "import_chart": bool(import_chart),
               "invoice_counter_account": counter, "receipt_payment_list": payment_list.pk,
               "book_vouchers": bool(book_vouchers)}
    if rate_limit_per_minute:
        choices["rate_limit_per_minute"] = rate_limit_per_minute
    dinero_configure(integration=integration, actor=actor, **choices)
    integration = dinero_finish(integration=integration, actor=actor)
    plan = _plan(company)
    return {
        "company": company.slug,
        "integration": integration.pk,
        "status": integration.status,
        "organization_id": integration.settings["organization_id"],
        "organisation": (plan.company_info or {}).get("name", ""),
        "api_key": mask_secret(api_key.strip()),
        "error_account": integration.settings["error_account"],
        "import_chart": integration.settings["import_chart"],
        "invoice_counter_account": counter,
        "receipt_payment_list": payment_list.name,
        "accounts": plan.accounts.filter(active=True).count(),
        "vat_codes": plan.vat_codes.count(),
    }


# =====================================================================================================
# CSV import
# =====================================================================================================

CSV_COLUMNS = ("reference", "type", "supplier", "supplier_vat", "date", "due_date", "description", "amount",
               "vat_code", "category", "currency", "amount_dkk", "payment_method", "attachment")
REQUIRED_COLUMNS = ("reference", "type", "supplier", "date", "amount")
DOCUMENT_FIELDS = ("type", "supplier", "supplier_vat", "date", "due_date", "description", "currency", "amount_dkk",
                   "payment_method", "attachment")
_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y")


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return _("line %(line)s, %(field)s: %(message)s") % {"line": self.line, "field": self.field,
                                                            "message": self.message}


@dataclass
class ImportResult:
    dry_run: bool
    documents: list[dict] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"ok": self.ok, "dry_run": self.dry_run, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "documents": self.documents,
                "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in self.errors]}


def parse_amount(text: str) -> Decimal:
    """``1234.50``, ``1234,50``, ``1.234,50`` or ``1,234.50``: the last separator is the decimal one."""
    value = (text or "").strip().replace(" ", "").replace("\u00a0", "")
    if not value:
        raise ValueError(_("the amount is missing"))
    if "," in value and "." in value:
        decimal_sep = "," if value.rfind(",") > value.rfind(".") else "."
        value = value.replace("." if decimal_sep == "," else ",", "").replace(",", ".")
    elif "," in value:
        value = value.replace(",", ".")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(_("“%(text)s” is not an amount") % {"text": text}) from None
    if amount != amount.quantize(CENT):
        raise ValueError(_("amounts have at most two decimals"))
    return amount.quantize(CENT)


def parse_date(text: str) -> dt.date:
    value = (text or "").strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(_("“%(text)s” is not a date (use YYYY-MM-DD)") % {"text": text})


@dataclass
class _ParsedDocument:
    reference: str
    first_line: int
    values: dict
    lines: list[dict] = field(default_factory=list)


def _read_csv(text: str) -> tuple[list[str], list[tuple[int, dict]]]:
    text = text.lstrip("\ufeff")
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}))
    return header, rows


def _resolve_attachment(value: str, *, root: Path | None, allow_outside: bool) -> Path:
    path = Path(value)
    if not path.is_absolute():
        if root is None:
            raise ValueError(_("give an absolute path"))
        path = root / path
    path = path.resolve()
    if root is not None and not allow_outside and not path.is_relative_to(root.resolve()):
        raise ValueError(_("attachments must be inside %(root)s") % {"root": root})
    if not path.is_file():
        raise ValueError(_("file %(path)s does not exist") % {"path": value})
    if path.stat().st_size > MAX_ATTACHMENT_BYTES:
        raise ValueError(_("the file is larger than 6 MB, the most Dinero accepts"))
    if path.suffix.lower() not in (".pdf", ".png", ".jpg", ".jpeg"):
        raise ValueError(_("attach a PDF, PNG or JPEG file"))
    return path


def _parse_documents(company, text: str, *, attachment_root: Path | None, allow_outside: bool
                     ) -> tuple[list[_ParsedDocument], list[RowError]]:
    errors: list[RowError] = []
    try:
        header, rows = _read_csv(text)
    except csv.Error as exc:
        return [], [RowError(1, "file", _("not a readable CSV file: %(error)s") % {"error": exc})]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        message = []
        if missing:
            message.append(_("missing columns: %(cols)s") % {"cols": ", ".join(missing)})
        if unknown:
            message.append(_("unknown columns: %(cols)s") % {"cols": ", ".join(unknown)})
        return [], [RowError(1, "header", "; ".join(message) + ". " + _("Expected: %(cols)s")
                             % {"cols": ",".join(CSV_COLUMNS)})]
    if not rows:
        return [], [RowError(1, "file", _("the file has no rows"))]

    integration = dinero_integration(company)
    plan = plan_snapshot(company, SYSTEM)
    vat_codes = set(VatCode.objects.filter(plan__company=company, plan__system=SYSTEM).values_list("code", flat=True))
    receipt_list = (integration.settings or {}).get("receipt_payment_list") if integration else None
    methods = PaymentMethod.objects.filter(payment_list__company=company)
    if receipt_list:
        methods = methods.filter(payment_list_id=receipt_list)

    documents: dict[str, _ParsedDocument] = {}
    for line_no, row in rows:
        def error(field_name, message, line_no=line_no):
            errors.append(RowError(line_no, field_name, str(message)))

        reference = row.get("reference", "")
        if not reference:
            error("reference", _("the reference is missing"))
            continue
        if len(reference) > 100:
            error("reference", _("at most 100 characters"))
            continue
        values: dict = {}
        kind = row.get("type", "").lower()
        if kind not in DocumentType.values:
            error("type", _("must be invoice or receipt"))
        values["type"] = kind
        values["supplier"] = row.get("supplier", "")
        if not values["supplier"]:
            error("supplier", _("the supplier is missing"))
        values["supplier_vat"] = row.get("supplier_vat", "")
        values["description"] = row.get("description", "")[:200]
        for key, required in (("date", True), ("due_date", False)):
            raw = row.get(key, "")
            values[key] = None
            if raw:
                try:
                    values[key] = parse_date(raw)
                except ValueError as exc:
                    error(key, exc)
            elif required:
                error(key, _("the date is missing"))
        currency = (row.get("currency") or "DKK").upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            error("currency", _("a three-letter currency code, e.g. DKK or EUR"))
        values["currency"] = currency
        values["amount_dkk"] = None
        if row.get("amount_dkk"):
            try:
                values["amount_dkk"] = parse_amount(row["amount_dkk"])
                if values["amount_dkk"] <= 0:
                    error("amount_dkk", _("must be more than zero"))
            except ValueError as exc:
                error("amount_dkk", exc)
        values["payment_method"] = None
        method_name = row.get("payment_method", "")
        if kind == DocumentType.RECEIPT:
            if not method_name:
                error("payment_method", _("a receipt needs its payment method"))
            else:
                found = list(methods.filter(name__iexact=method_name)[:2])
                if len(found) != 1:
                    error("payment_method", _("“%(name)s” is not one payment method of %(company)s")
                          % {"name": method_name, "company": company})
                else:
                    values["payment_method"] = found[0].pk
        values["attachment"] = None
        if row.get("attachment"):
            try:
                values["attachment"] = _resolve_attachment(row["attachment"], root=attachment_root,
                                                           allow_outside=allow_outside)
            except ValueError as exc:
                error("attachment", exc)

        line: dict = {"text": row.get("description", "")[:200]}
        try:
            line["amount"] = parse_amount(row.get("amount", ""))
            if line["amount"] <= 0:
                error("amount", _("must be more than zero (supplier credit notes are not supported yet)"))
        except ValueError as exc:
            error("amount", exc)
        vat_code = row.get("vat_code", "")
        line["vat_code"] = "" if vat_code.lower() in ("", "none", "-") else vat_code.upper()
        if line["vat_code"] and vat_codes and line["vat_code"] not in vat_codes:
            error("vat_code", _("Dinero has no VAT code %(code)s") % {"code": line["vat_code"]})
        line["category"] = None
        if row.get("category"):
            if not row["category"].isdigit():
                error("category", _("the category is an account number"))
            else:
                number = int(row["category"])
                line["category"] = number
                problems = rules.check_profit_and_loss(plan, number)
                if not problems and plan.imported:
                    problems = rules.check_account_number(plan, number)
                for problem in problems:
                    error("category", problem.message)

        existing = documents.get(reference)
        if existing is None:
            documents[reference] = _ParsedDocument(reference, line_no, values, [line])
            continue
        for key in DOCUMENT_FIELDS:
            if existing.values.get(key) != values.get(key):
                error(key, _("differs from line %(line)s of the same document %(ref)s")
                      % {"line": existing.first_line, "ref": reference})
        existing.lines.append(line)
    return list(documents.values()), errors


def _document_signature(document: ExpenseDocument | None) -> tuple | None:
    if document is None or document.pk is None:
        return None
    return (
        document.type, document.supplier_name, document.supplier_vat, document.document_date, document.due_date,
        document.description, document.currency, document.amount_dkk, document.payment_method_id,
        tuple((line.amount, line.vat_code, line.category, line.text) for line in document.lines.all()),
    )


def _same_file(document: ExpenseDocument, path: Path) -> bool:
    if not document.attachment:
        return False
    try:
        with document.attachment.open("rb") as handle:
            return handle.read() == path.read_bytes()
    except OSError:
        return False


def expense_document_write(*, company, reference: str, values: dict, lines: list[dict], actor: Actor = None
                           ) -> tuple[ExpenseDocument, str]:
    """Create or update one document with its lines; returns (document, created|updated|unchanged)."""
    document = ExpenseDocument.objects.filter(company=company, reference=reference).first()
    before = _document_signature(document)
    if document is None:
        document = ExpenseDocument(company=company, reference=reference)
    document.type = values["type"]
    document.supplier_name = values["supplier"]
    document.supplier_vat = values.get("supplier_vat", "")
    document.document_date = values["date"]
    document.due_date = values.get("due_date")
    document.description = values.get("description", "")
    document.currency = values.get("currency") or "DKK"
    document.amount_dkk = values.get("amount_dkk")
    document.payment_method_id = values.get("payment_method")
    document.save()
    existing_lines = [(ln.amount, ln.vat_code, ln.category, ln.text) for ln in document.lines.all()]
    wanted = [(ln["amount"], ln.get("vat_code", ""), ln.get("category"), ln.get("text", "")) for ln in lines]
    if existing_lines != wanted:
        document.lines.all().delete()
        ExpenseLine.objects.bulk_create([
            ExpenseLine(document=document, position=position, amount=amount, vat_code=vat_code, category=category,
                        text=text)
            for position, (amount, vat_code, category, text) in enumerate(wanted)
        ])
    file_changed = False
    attachment: Path | None = values.get("attachment")
    if attachment is not None and not _same_file(document, attachment):
        document.attachment.save(attachment.name, ContentFile(attachment.read_bytes()), save=True)
        file_changed = True
    after = _document_signature(document)
    outcome = "created" if before is None else ("updated" if (before != after or file_changed) else "unchanged")
    if outcome != "unchanged":
        expense_document_changed(document=document, actor=actor)
        audit_record(action=f"expense:{outcome}", company=company, actor=actor,
                     message=_("Expense document %(ref)s %(outcome)s.") % {"ref": reference, "outcome": outcome})
    return document, outcome


def documents_import(*, company, text: str, dry_run: bool = False, actor: Actor = None,
                     attachment_root: Path | None = None, allow_outside_root: bool = True) -> ImportResult:
    """Import expense documents from CSV (one row per line; lines of a document share its reference).

    All or nothing: when any row is bad nothing is written, and every bad row is reported.
    """
    result = ImportResult(dry_run=dry_run)
    parsed, result.errors = _parse_documents(company, text, attachment_root=attachment_root,
                                             allow_outside=allow_outside_root)
    existing = {d.reference: d for d in ExpenseDocument.objects.filter(
        company=company, reference__in=[p.reference for p in parsed]).prefetch_related("lines")}
    for item in parsed:
        total = sum((ln.get("amount") or ZERO for ln in item.lines), ZERO)
        result.documents.append({"reference": item.reference, "type": item.values.get("type"),
                                 "supplier": item.values.get("supplier"), "lines": len(item.lines),
                                 "total": f"{total:.2f}", "currency": item.values.get("currency"),
                                 "action": "update" if item.reference in existing else "create"})
    if result.errors or dry_run:
        if not result.errors:
            result.created = sum(1 for d in result.documents if d["action"] == "create")
            result.updated = sum(1 for d in result.documents if d["action"] == "update")
        return result
    with transaction.atomic():
        for item, summary in zip(parsed, result.documents, strict=True):
            _document, outcome = expense_document_write(company=company, reference=item.reference,
                                                        values=item.values, lines=item.lines, actor=actor)
            summary["action"] = outcome
            setattr(result, outcome, getattr(result, outcome) + 1)
        audit_record(action="expense:import", outcome=AuditEvent.Outcome.OK, company=company, actor=actor,
                     message=_("Imported %(created)s new, %(updated)s changed and %(unchanged)s unchanged expense "
                               "documents.") % {"created": result.created, "updated": result.updated,
                                                "unchanged": result.unchanged})
    return result


def import_root() -> Path:
    """Where the admin import looks for attachment paths (files put there by staff or a scanner)."""
    return Path(django_settings.MEDIA_ROOT) / "imports"


# =====================================================================================================
# Demo data
# =====================================================================================================


DEMO_CLIENT_ID = "kontera-demo"
DEMO_ORGANIZATION = ("123456", "demo-dinero-api-key")


def demo_expenses(company) -> dict:
    """A few supplier invoices and receipts for the demo Danish company (idempotent).

    When Kontera points at the local sandbox (its demo client id), the company is also connected to
    the sandbox's demo organisation, so ``documents_push`` or the worker sends the documents.
    """
    payment_list, _created = PaymentMethodList.objects.get_or_create(company=company, name="Kvitteringer")
    card, _created = PaymentMethod.objects.get_or_create(payment_list=payment_list, name="Firmakort",
                                                         defaults={"account_number": 55010})
    cash, _created = PaymentMethod.objects.get_or_create(payment_list=payment_list, name="Kontant",
                                                         defaults={"account_number": 55040})
    today = timezone.localdate()
    documents = [
        ("DEMO-INV-1", {"type": "invoice", "supplier": "Kontorland A/S", "supplier_vat": "DK12345678",
                        "date": today - dt.timedelta(days=10), "due_date": today + dt.timedelta(days=20),
                        "description": "Kontorartikler", "currency": "DKK"},
         [{"amount": Decimal("1250.00"), "vat_code": "I25", "category": 7200, "text": "Papir og toner"}]),
        ("DEMO-INV-2", {"type": "invoice", "supplier": "Hetzner Online GmbH", "supplier_vat": "DE812871812",
                        "date": today - dt.timedelta(days=5), "due_date": today + dt.timedelta(days=9),
                        "description": "Webhotel", "currency": "EUR", "amount_dkk": Decimal("113.70")},
         [{"amount": Decimal("15.24"), "vat_code": "IEUY", "category": 7300, "text": "Server, januar"}]),
        ("DEMO-REC-1", {"type": "receipt", "supplier": "Café Norden", "date": today - dt.timedelta(days=3),
                        "description": "Kundemøde", "currency": "DKK", "payment_method": card.pk},
         [{"amount": Decimal("420.00"), "vat_code": "REP", "category": 4140, "text": "Frokost med kunde"}]),
        ("DEMO-REC-2", {"type": "receipt", "supplier": "Q8", "date": today - dt.timedelta(days=1),
                        "description": "Parkering", "currency": "DKK", "payment_method": cash.pk},
         [{"amount": Decimal("60.00"), "vat_code": "", "category": None, "text": "Parkering (ingen kategori)"}]),
    ]
    outcomes: dict[str, int] = {}
    with transaction.atomic():
        for reference, values, lines in documents:
            _document, outcome = expense_document_write(company=company, reference=reference, values=values,
                                                        lines=lines, actor="demo")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    result = {"payment_method_list": payment_list.name, "documents": len(documents), **outcomes}
    if django_settings.DINERO_CLIENT_ID == DEMO_CLIENT_ID and dinero_integration(company) is None:
        organization_id, api_key = DEMO_ORGANIZATION
        try:
            dinero_setup(company=company, api_key=api_key, organization_id=organization_id, error_account=7480,
                         import_chart=True, invoice_payment_method="63000", receipt_payment_list=payment_list.pk,
                         actor="demo")
            result["dinero"] = _("connected to the sandbox organisation %(org)s") % {"org": organization_id}
        except (SetupError, ConnectorError) as exc:
            result["dinero"] = _("not connected: %(reason)s") % {"reason": getattr(exc, "message", exc)}
    return result

