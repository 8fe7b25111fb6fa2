"""The one sync of expense documents → Dinero purchase vouchers (and re-evaluating workflow rules).

The sync (``expense_document_sync``) is used by the worker, the admin actions and ``documents_push``.
It turns a document into a ``Voucher`` (source ``expenses``, source reference = the document's
reference) and hands it to the voucher state machine; the dispatcher sends it through the Dinero
connector. No remote call happens here except in the setup functions, which validate what staff
typed at once (the guide's wizard) — never inside a transaction.

States a document can be in, as staff see them (see ``expense_documents.selectors.document_sync_state``):
opted out (by a named rule), waiting (e.g. the DKK amount of a foreign-currency document is missing:
the voucher stays a draft, is never queued, and says why — nothing failed, something is missing),
refused (a rule such as 'only P&L categories' failed before sending, or Dinero refused it), queued,
synced, changed (an update is on its way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from bookkeeping.models import (
    Voucher,
)
from bookkeeping.selectors.mappings import MappingSnapshot, mapping_snapshot
from bookkeeping.selectors.plans import plan_snapshot
from bookkeeping.services.audit import Actor, audit_record
from bookkeeping.services.vouchers import voucher_mark_changed, voucher_queue, voucher_transition
from integrations.models import IntegrationStatus
from wording import Msg, english, set_text

from ..models import ExpenseDocument, WorkflowRule
from ..selectors import WAITING_CODES
from .common import (
    SOURCE_SYSTEM,
    SYSTEM,
    S,
    _user,
    dinero_integration,
    rules_text,
)
from .opt_out_rules import _opt_out, workflow_rule_for
from .voucher_content import VoucherContent, _apply_content, _audit_version, document_content


def _not_yet_sent(document: ExpenseDocument) -> bool:
    voucher = document.voucher
    return voucher is None or (not voucher.remote_id and voucher.state != S.SENDING)


def documents_reevaluate(*, company, actor: Actor = "worker") -> dict:
    """After a mapping change: every document not sent yet is built again from the mappings, and a
    changed document waiting for a mapping goes on by itself; posted vouchers are left as they are."""
    documents = ExpenseDocument.objects.filter(company=company).select_related("voucher")
    outcomes: dict[str, int] = {}
    snapshot = mapping_snapshot(company, SYSTEM)
    for document in documents:
        voucher = document.voucher
        if not (_not_yet_sent(document) or (voucher is not None and voucher.state == S.AWAITING_MAPPING)):
            continue
        outcome = expense_document_sync(document=document, actor=actor, snapshot=snapshot)
        outcomes[outcome.state] = outcomes.get(outcome.state, 0) + 1
    return outcomes


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
                 message=Msg("Workflow rule “%(name)s” saved (%(action)s).", name=rule.name, action=rule.get_action_display()))
    return workflow_rules_reevaluate(company=rule.company, actor=actor)


def workflow_rule_delete(*, rule: WorkflowRule, actor: Actor = None) -> dict:
    company = rule.company
    audit_record(action="workflow_rule:deleted", company=company, actor=actor,
                 message=Msg("Workflow rule “%(name)s” deleted.", name=rule.name))
    rule.delete()
    return workflow_rules_reevaluate(company=company, actor=actor)


@dataclass
class SyncOutcome:
    reference: str
    state: str
    message: str = ""


def _outcome(document: ExpenseDocument) -> SyncOutcome:
    from ..selectors import document_sync_state

    state = document_sync_state(document)
    return SyncOutcome(reference=document.reference, state=state.code, message=state.detail)


def expense_document_changed(*, document: ExpenseDocument, actor: Actor = None) -> None:
    """Call after a document or its lines were edited: the worker syncs it (and applies the rules)."""
    ExpenseDocument.objects.filter(pk=document.pk).update(needs_sync=True)
    document.needs_sync = True
    expense_documents_sync_later(company_id=document.company_id)


def expense_documents_sync_later(*, company_id: int) -> None:
    """Once the transaction commits, one sync task for the company however many of its documents changed
    in it (an import of 10,000 documents queues one task, not 10,000: the task takes them a batch at a time)."""
    # An entry of a savepoint rolled back is gone from the list: the next change registers again.
    if any(getattr(entry[1], "kontera_expense_company", None) == company_id and not entry[1].kontera_done
           for entry in transaction.get_connection().run_on_commit):
        return

    def enqueue():
        enqueue.kontera_done = True
        _enqueue(company_id)

    enqueue.kontera_expense_company, enqueue.kontera_done = company_id, False
    transaction.on_commit(enqueue)


def _enqueue(company_id: int) -> None:
    enqueue_sync(company_id)


def enqueue_sync(company_id: int | None = None) -> None:
    async_task("expense_documents.tasks.sync_documents", company_id,
               task_name=f"expense-sync-{company_id or 'all'}", group="expenses")


def expense_document_sync(*, document: ExpenseDocument, actor: Actor = None, force: bool = False,
                          kick: bool = True, snapshot: MappingSnapshot | None = None) -> SyncOutcome:
    """Apply the workflow rules, rebuild the voucher from the document and queue what may be sent.

    Idempotent: an unchanged, synced document stays as it is. ``force`` ('Sync again') re-queues a
    refused voucher even though nothing changed (e.g. after fixing something in Dinero).
    """
    integration = dinero_integration(document.company)
    plan = snapshot.plan if snapshot is not None else plan_snapshot(document.company, SYSTEM)
    snapshot = snapshot or mapping_snapshot(document.company, SYSTEM, plan=plan)
    with transaction.atomic():
        document = (ExpenseDocument.objects.select_for_update(of=("self",))
                    .select_related("company", "payment_method__payment_list")
                    .get(pk=document.pk))
        voucher = Voucher.objects.select_for_update().filter(pk=document.voucher_id).first()
        if voucher is not None and voucher.state == S.SENDING:
            return SyncOutcome(document.reference, "busy", Msg("Being sent right now; the change follows afterwards."))

        rule = workflow_rule_for(document, snapshot=snapshot) if (voucher is None or not voucher.remote_id) else None
        document.opted_out_by = rule

        if integration is None or integration.status == IntegrationStatus.SETTING_UP:
            document.save(update_fields=["opted_out_by", "updated_at"])
            return _outcome(document)

        content = document_content(document, integration=integration, plan=plan, snapshot=snapshot)
        document.used_error_account = content.used_error_account
        if voucher is None:
            voucher = Voucher.objects.select_for_update().filter(
                company=document.company, source_system=SOURCE_SYSTEM, source_reference=document.reference).first()
        if voucher is None:
            voucher = Voucher(company=document.company, system=SYSTEM, source_system=SOURCE_SYSTEM,
                              source_reference=document.reference, created_by=_user(actor))
            changed = _apply_content(voucher, content) or True
            audit_record(action="expense:voucher_created", actor=actor, voucher=voucher,
                         message=Msg("Voucher made from expense document %(ref)s.", ref=document.reference))
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
                                   message=Msg("No workflow rule opts it out any more."))
            _hand_over(voucher, content, changed=changed, force=force, actor=actor, kick=kick)

        document.needs_sync = False
        document.synced_at = timezone.now()
        document.save(update_fields=["opted_out_by", "used_error_account", "voucher", "needs_sync", "synced_at",
                                     "updated_at"])
    document.voucher = Voucher.objects.get(pk=voucher.pk)
    return _outcome(document)


def _hand_over(voucher: Voucher, content: VoucherContent, *, changed: bool, force: bool, actor: Actor,
               kick: bool) -> None:
    waiting = [p for p in content.problems if p.code in WAITING_CODES]
    if voucher.state == S.POSTED and changed:
        voucher_mark_changed(voucher=voucher, actor=actor)
        voucher.refresh_from_db()
    if waiting:
        text = rules_text(waiting)
        if voucher.state in (S.QUEUED, S.FAILED, S.AWAITING_MAPPING):
            voucher_transition(voucher=voucher, to=S.DRAFT, actor=actor, message=text)
        if voucher.last_error != english(text):
            fields = set_text(voucher, "last_error", text)
            voucher.last_error_code = waiting[0].code
            voucher.save(update_fields=[*fields, "last_error_code", "updated_at"])
        return
    if voucher.state == S.DRAFT and voucher.last_error_code in WAITING_CODES:
        fields = set_text(voucher, "last_error", "")
        voucher.last_error_code = ""
        voucher.save(update_fields=[*fields, "last_error_code", "updated_at"])
    if voucher.state == S.FAILED and not (changed or force):
        return  # refused and unchanged: staff fix the cause, or press 'Sync again'
    if voucher.state in (S.DRAFT, S.FAILED, S.NEEDS_UPDATE, S.AWAITING_AUTHORISATION, S.AWAITING_MAPPING):
        # A line without a mapping makes the voucher wait for it (not fail): see voucher_queue.
        voucher_queue(voucher=voucher, actor=actor, kick=kick)
        voucher.refresh_from_db()


def documents_sync(*, company, actor: Actor = None, only_pending: bool = True, limit: int | None = None,
                   kick: bool = True) -> list[SyncOutcome]:
    """Sync a company's new and changed documents (``only_pending``) or all of them."""
    documents = ExpenseDocument.objects.filter(company=company).order_by("document_date", "id")
    if only_pending:
        documents = documents.filter(needs_sync=True)
    if limit:
        documents = documents[:limit]
    snapshot = mapping_snapshot(company, SYSTEM)  # one read of the mappings for the whole batch
    return [expense_document_sync(document=d, actor=actor, kick=kick, snapshot=snapshot) for d in documents]


@dataclass
class PushResult:
    documents: list[dict] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    ok: bool = True


def documents_push(*, company, actor: Actor = "command") -> PushResult:
    """Sync every document of a company that is not synced yet and send its queued vouchers now."""
    from bookkeeping.services.dispatchers import company_lease
    from bookkeeping.services.sending import voucher_send

    from ..selectors import document_sync_state

    ids = list(ExpenseDocument.objects.filter(company=company).values_list("id", flat=True))
    for document in ExpenseDocument.objects.filter(id__in=ids).select_related("voucher"):
        voucher = document.voucher
        unsent = voucher is None or voucher.state in (S.DRAFT, S.FAILED, S.NEEDS_UPDATE, S.AWAITING_AUTHORISATION)
        if document.needs_sync or unsent:
            expense_document_sync(document=document, actor=actor, force=voucher is not None
                                  and voucher.state in (S.FAILED, S.AWAITING_AUTHORISATION), kick=False)
    queued = Voucher.objects.filter(company=company, system=SYSTEM, source_system=SOURCE_SYSTEM, state=S.QUEUED)
    # Under the company's dispatch lease, as a dispatcher would: never two senders for one company, and
    # the sweep leaves a send in progress alone. A dispatcher holding it now sends them itself.
    with company_lease(company_id=company.pk, wait=30) as held:
        for voucher_id in queued.order_by("date", "id").values_list("id", flat=True) if held else ():
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
