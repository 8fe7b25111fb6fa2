"""Workflow rules ('Fravælg synkronisering af …'): which rule opts a document out of the sync, and opting out."""

from __future__ import annotations

from bookkeeping.models import (
    Voucher,
)
from bookkeeping.selectors.mappings import mapping_snapshot
from bookkeeping.services.audit import Actor
from bookkeeping.services.vouchers import voucher_transition
from wording import Msg

from ..models import DocumentType, ExpenseDocument, WorkflowAction, WorkflowRule
from .common import (
    SYSTEM,
    S,
)
from .voucher_content import document_total_dkk, line_source


def workflow_rule_matches(rule: WorkflowRule, document: ExpenseDocument, *, lines=None, snapshot=None) -> bool:
    """Every condition that is set must hold. A category condition names the account: it matches a line
    whose category is that number or resolves to that account through the mappings."""
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
    if rule.category is not None and not any(_line_account_is(line, rule.category, snapshot) for line in lines):
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


def _line_account_is(line, number: int, snapshot) -> bool:
    category = " ".join(str(line.category or "").split())
    if category == str(number):
        return True
    if snapshot is None or not category:
        return False
    return snapshot.resolve_row(line_source(line)).account == number


def workflow_rule_for(document: ExpenseDocument, *, snapshot=None) -> WorkflowRule | None:
    lines = list(document.lines.all())
    rules = list(WorkflowRule.objects.filter(company_id=document.company_id, active=True).order_by("position", "id"))
    if snapshot is None and any(rule.category is not None for rule in rules):
        snapshot = mapping_snapshot(document.company, SYSTEM)
    for rule in rules:
        if workflow_rule_matches(rule, document, lines=lines, snapshot=snapshot):
            return rule
    return None


def _opt_out(voucher: Voucher, rule: WorkflowRule, actor: Actor) -> None:
    message = Msg("Opted out of the sync by workflow rule “%(name)s”.", name=rule.name)
    if voucher.state == S.AWAITING_AUTHORISATION:
        voucher_transition(voucher=voucher, to=S.FAILED, actor=actor, message=message)
    if voucher.state in (S.DRAFT, S.QUEUED, S.FAILED, S.AWAITING_MAPPING):
        voucher_transition(voucher=voucher, to=S.OPTED_OUT, actor=actor, message=message,
                           last_error="", last_error_code="")
