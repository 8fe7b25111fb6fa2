"""Document → voucher content: the rows, VAT codes, DKK amounts and Dinero details of one expense document."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from bookkeeping import rules
from bookkeeping.models import (
    AccountPlan,
    AuditEvent,
    MappingKind,
    Voucher,
    VoucherKind,
    VoucherRow,
)
from bookkeeping.selectors.mappings import MappingSnapshot, RowSource, mapping_snapshot
from bookkeeping.selectors.plans import plan_snapshot
from bookkeeping.services.audit import Actor, audit_record
from bookkeeping.services.voucher_totals import rows_totals
from bookkeeping.services.vouchers import voucher_fingerprint
from integrations.models import Integration
from wording import Msg
from wording import stored as stored_text

from ..models import DocumentType, ExpenseDocument
from .common import (
    CENT,
    SYSTEM,
    ZERO,
)


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


def line_source(line) -> RowSource:
    """A line's category is the expense tool's value; its own VAT code is explicit (it wins over the mapping's)."""
    category = " ".join(str(line.category or "").split())
    return RowSource(keys=((MappingKind.EXPENSE_CATEGORY.value, category),) if category else (),
                     vat_code=line.vat_code or "")


def document_content(document: ExpenseDocument, *, integration: Integration | None, plan=None,
                     snapshot: MappingSnapshot | None = None) -> VoucherContent:
    """Everything the voucher will say, and every problem found before anything is sent."""
    plan = plan or plan_snapshot(document.company, SYSTEM)
    snapshot = snapshot or mapping_snapshot(document.company, SYSTEM, plan=plan)
    conf = (integration.settings if integration else {}) or {}
    info = AccountPlan.objects.filter(company=document.company, system=SYSTEM).values_list(
        "company_info", flat=True).first() or {}
    purchase_accounts = set(info.get("purchase_accounts") or [])
    deposit_accounts = set(info.get("deposit_accounts") or [])
    lines = list(document.lines.all())
    problems: list[rules.Problem] = []
    used_error_account = False

    if not lines:
        problems.append(rules.Problem("no_lines", Msg("The document has no lines.")))
    amounts = [line.amount for line in lines]
    if document.is_foreign_currency:
        if document.amount_dkk is None:
            problems.append(rules.Problem(
                "no_dkk_amount",
                Msg("Waiting for the DKK amount: the document is in %(currency)s and Dinero books DKK only. Enter "
                  "the amount actually drawn from the bank in DKK; Kontera does not guess an exchange rate.", currency=document.currency),
            ))
            dkk = amounts  # placeholders so the draft still balances; it is never sent like this
        else:
            dkk = allocate(document.amount_dkk, amounts)
    else:
        dkk = amounts

    error_account = conf.get("error_account")
    rows: list[dict] = []
    for index, (line, amount) in enumerate(zip(lines, dkk, strict=True), start=1):
        source = line_source(line)
        resolution = snapshot.resolve_row(source)
        stored = resolution.row_fields(source)
        account = resolution.account
        if not source.keys:
            stored = {}
            if error_account:
                account = int(error_account)
                used_error_account = True
            else:
                problems.append(rules.Problem("no_category", Msg("The line has no category and no error account "
                                                               "is set in the Dinero setup."), index))
                account = 0
        elif resolution.unmapped:
            # Waits for its mapping (the voucher row carries the reason; the pre-flight check holds it back).
            problems += [rules.Problem(p.code, p.message, index) for p in rules.check_mapped([stored_row(stored)])]
        else:
            used_error_account = used_error_account or resolution.via == "default"
            found = rules.check_profit_and_loss(plan, account)
            problems += [rules.Problem(p.code, p.message, index) for p in found]
            if not found and purchase_accounts and account in plan.accounts and account not in purchase_accounts:
                problems.append(rules.Problem(
                    "not_purchase_account",
                    Msg("Account %(account)s cannot be used on a purchase in Dinero (it is not one of Dinero's "
                      "purchase accounts, e.g. an income account). Choose an expense account.", account=account),
                    index,
                ))
        rows.append({"account": account, "debit": amount, "credit": ZERO,
                     "vat_code": resolution.vat_code if source.keys else line.vat_code,
                     "text": (line.text or document.description or document.supplier_name)[:100],
                     "stored": {k: v for k, v in stored.items() if k in SOURCE_FIELDS}})

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
            problems.append(rules.Problem("no_counter_account", Msg("No default counter account for invoices is set "
                                                                  "in the Dinero setup.")))
    else:
        method = document.payment_method
        counter = None
        if method is None:
            problems.append(rules.Problem("no_payment_method", Msg("A receipt needs its payment method (how it was "
                                                                 "paid): choose one.")))
        elif method.payment_list.company_id != document.company_id:
            problems.append(rules.Problem("foreign_payment_method", Msg("The payment method belongs to another "
                                                                      "company.")))
        else:
            counter = method.account_number
            extra["deposit_account"] = counter
            if deposit_accounts and counter not in deposit_accounts:
                problems.append(rules.Problem(
                    "not_deposit_account",
                    Msg("Payment method %(method)s points at account %(account)s, which is not a deposit account "
                      "(beholdning) in Dinero.", method=method.name, account=counter),
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
    # Unmapped lines are carried by the voucher rows themselves (the pre-flight check finds them there).
    extra["_blocking"] = [[p.code, stored_text(str(p))] for p in problems if p.code != "unmapped"]
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


SOURCE_FIELDS = ("source_kind", "source_key", "source", "awaits_mapping")


def stored_row(stored: dict) -> VoucherRow:
    """An unsaved row with these source fields (for the rules that read them)."""
    return VoucherRow(**{k: v for k, v in stored.items() if k in SOURCE_FIELDS})


def _row_tuples(rows) -> list[tuple]:
    def values(r):
        if isinstance(r, dict):
            stored = r.get("stored") or {}
            return (str(r["account"]) if r["account"] is not None else "", r["debit"], r["credit"],
                    r["vat_code"] or "", r["text"] or "", *(stored.get(name, VoucherRow._meta.get_field(
                        name).get_default()) for name in SOURCE_FIELDS))
        return (r.account, r.debit, r.credit, r.vat_code or "", r.text or "",
                *(getattr(r, name) for name in SOURCE_FIELDS))

    return [(a, f"{d:.2f}", f"{c:.2f}", *rest) for a, d, c, *rest in map(values, rows)]


def _apply_content(voucher: Voucher, content: VoucherContent) -> bool:
    """Write the content into the voucher; True when what would be posted changed."""
    before = voucher_fingerprint(voucher) if voucher.pk else ""
    voucher.kind = content.kind
    voucher.date = content.date
    voucher.description = content.description
    voucher.currency = "DKK"
    voucher.extra = content.extra
    voucher.debit_total, voucher.credit_total = rows_totals(content.rows)  # the rows below are these
    voucher.save()
    if _row_tuples(voucher.rows.all()) != _row_tuples(content.rows):
        voucher.rows.all().delete()
        VoucherRow.objects.bulk_create([
            VoucherRow(voucher=voucher, position=position,
                       account=str(row["account"]) if row["account"] is not None else "", debit=row["debit"],
                       credit=row["credit"], vat_code=row["vat_code"] or "", text=row["text"] or "",
                       **(row.get("stored") or {}))
            for position, row in enumerate(content.rows)
        ])
    return voucher_fingerprint(voucher) != before


def _audit_version(voucher: Voucher, content: VoucherContent, actor: Actor) -> None:
    version = AuditEvent.objects.filter(voucher=voucher, action="expense:version").count() + 1
    lines = [f"{r['account'] if r['account'] is not None else '?'} {r['vat_code'] or '-'} {r['debit']:.2f}"
             for r in content.rows if r["debit"]]
    total = sum((r["debit"] for r in content.rows), ZERO)
    audit_record(action="expense:version", actor=actor, voucher=voucher,
                 message=Msg("Version %(n)s: %(total)s DKK; lines %(lines)s", n=version, total=f"{total:.2f}", lines="; ".join(lines) or "–"),
                 data={"version": version, "rows": [[r["account"], f"{r['debit']:.2f}", f"{r['credit']:.2f}",
                                                     r["vat_code"]] for r in content.rows],
                       "extra": {k: v for k, v in content.extra.items() if not k.startswith("_")}})
