"""Expense documents from CSV: all or nothing; importing a reference again updates that document."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.db import transaction

from bookkeeping import rules
from bookkeeping.limits import checked_amount, max_length, text_problem
from bookkeeping.models import (
    AuditEvent,
    PaymentMethod,
    VatCode,
)
from bookkeeping.selectors.mappings import MappingSnapshot, mapping_snapshot
from bookkeeping.selectors.plans import plan_snapshot
from bookkeeping.services.audit import Actor, audit_record, audit_record_many
from bookkeeping.services.bulk import rows_append, rows_insert
from wording import Msg

from ..models import DocumentType, ExpenseDocument, ExpenseLine
from .common import (
    MAX_ATTACHMENT_BYTES,
    SYSTEM,
    ZERO,
    dinero_integration,
)
from .sync import expense_document_changed, expense_documents_sync_later
from .voucher_content import line_source

CSV_COLUMNS = ("reference", "type", "supplier", "supplier_vat", "date", "due_date", "description", "amount",
               "vat_code", "category", "currency", "amount_dkk", "payment_method", "attachment")
REQUIRED_COLUMNS = ("reference", "type", "supplier", "date", "amount")
# What every line of one document must agree on (each line keeps its own description).
DOCUMENT_FIELDS = ("type", "supplier", "supplier_vat", "date", "due_date", "currency", "amount_dkk",
                   "payment_method", "attachment")
_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y")


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return Msg("line %(line)s, %(field)s: %(message)s", line=self.line, field=self.field, message=self.message)


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
        raise ValueError(Msg("the amount is missing"))
    if "," in value and "." in value:
        decimal_sep = "," if value.rfind(",") > value.rfind(".") else "."
        value = value.replace("." if decimal_sep == "," else ",", "").replace(",", ".")
    elif "," in value:
        value = value.replace(",", ".")
    return checked_amount(value)  # a plain number that fits the money fields: no 1e30, Infinity or NaN


# The text columns and the model field each one lands in, for the length and character checks.
_TEXT_COLUMNS = {
    "reference": (ExpenseDocument, "reference"), "supplier": (ExpenseDocument, "supplier_name"),
    "supplier_vat": (ExpenseDocument, "supplier_vat"), "description": (ExpenseDocument, "description"),
    "vat_code": (ExpenseLine, "vat_code"), "payment_method": (PaymentMethod, "name"),
}


EXTRA_FIELDS = "_extra_fields"


def _limit_errors(row: dict) -> list[tuple[str, str]]:
    """(column, message) for each text that the model cannot hold as it is; checked before anything else
    in the row (the category's length is ``_category``'s)."""
    errors = []
    if row.get(EXTRA_FIELDS):
        errors.append(("file", Msg("the row has more fields than the header (%(n)s); is a decimal comma unquoted?",
                                   n=row[EXTRA_FIELDS])))
    for column, (model, field_name) in _TEXT_COLUMNS.items():
        problem = text_problem(row.get(column, ""), label=column, limit=max_length(model, field_name))
        if problem:
            errors.append((column, problem))
    for column in ("attachment", "date", "due_date", "type", "currency", "amount", "amount_dkk", "category"):
        problem = text_problem(row.get(column, ""), label=column, limit=1000)
        if problem:
            errors.append((column, problem))
    return errors


def parse_date(text: str) -> dt.date:
    value = (text or "").strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(Msg("“%(text)s” is not a date (use YYYY-MM-DD)", text=text))


@dataclass
class _ParsedDocument:
    reference: str
    first_line: int
    values: dict
    lines: list[dict] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)  # the file's lines of this document


def _read_csv(text: str) -> tuple[list[str], list[tuple[int, dict]]]:
    text = text.lstrip("\ufeff")
    first = text[:text.find("\n")] if "\n" in text else text  # the header line, not a copy of every line
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        cells = {k: (v or "").strip() for k, v in row.items() if k}
        if row.get(None):
            cells[EXTRA_FIELDS] = str(len(header))  # more fields than the header: values would shift
        rows.append((reader.line_num, cells))
    return header, rows


def _resolve_attachment(value: str, *, root: Path | None, allow_outside: bool) -> Path:
    path = Path(value)
    if not path.is_absolute():
        if root is None:
            raise ValueError(Msg("give an absolute path"))
        path = root / path
    path = path.resolve()
    if root is not None and not allow_outside and not path.is_relative_to(root.resolve()):
        raise ValueError(Msg("attachments must be inside the import folder (a path relative to it)"))
    if not path.is_file():
        raise ValueError(Msg("file %(path)s does not exist", path=value))
    if path.stat().st_size > MAX_ATTACHMENT_BYTES:
        raise ValueError(Msg("the file is larger than 6 MB, the most Dinero accepts"))
    if path.suffix.lower() not in (".pdf", ".png", ".jpg", ".jpeg"):
        raise ValueError(Msg("attach a PDF, PNG or JPEG file"))
    return path


def _category(value: str, snapshot: MappingSnapshot) -> tuple[str, list[str], bool]:
    """A line's category as the expense tool names it: (the value, problems, whether it waits for a mapping).

    A value that resolves (a mapping, or a Dinero account number) must be a P&L account that exists;
    one that does not resolve is imported and waits for its mapping instead of refusing the file."""
    category = " ".join((value or "").split())
    if not category:
        return "", [], False
    if len(category) > 100:
        return category[:100], [Msg("at most 100 characters")], False
    resolution = snapshot.resolve_row(line_source(SimpleNamespace(category=category, vat_code="")))
    if resolution.unmapped:
        return category, [], True
    plan = snapshot.plan
    problems = rules.check_profit_and_loss(plan, resolution.account)
    if not problems and plan.imported:
        problems = rules.check_account_number(plan, resolution.account)
    return category, [p.message for p in problems], False


def _parse_documents(company, text: str, *, attachment_root: Path | None, allow_outside: bool
                     ) -> tuple[list[_ParsedDocument], list[RowError]]:
    errors: list[RowError] = []
    try:
        header, rows = _read_csv(text)
    except csv.Error as exc:
        return [], [RowError(1, "file", Msg("not a readable CSV file: %(error)s", error=exc))]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        message = []
        if missing:
            message.append(Msg("missing columns: %(cols)s", cols=", ".join(missing)))
        if unknown:
            message.append(Msg("unknown columns: %(cols)s", cols=", ".join(unknown)))
        return [], [RowError(1, "header", "; ".join(message) + ". " + Msg("Expected: %(cols)s", cols=",".join(CSV_COLUMNS)))]
    if not rows:
        return [], [RowError(1, "file", Msg("the file has no rows"))]

    integration = dinero_integration(company)
    plan = plan_snapshot(company, SYSTEM)
    snapshot = mapping_snapshot(company, SYSTEM, plan=plan)
    vat_codes = set(VatCode.objects.filter(plan__company=company, plan__system=SYSTEM).values_list("code", flat=True))
    receipt_list = (integration.settings or {}).get("receipt_payment_list") if integration else None
    methods = PaymentMethod.objects.filter(payment_list__company=company)
    if receipt_list:
        methods = methods.filter(payment_list_id=receipt_list)
    # Every receipt line is checked against this one read (not a query per line).
    methods_by_name: dict[str, list[int]] = {}
    for pk, name in methods.values_list("pk", "name"):
        methods_by_name.setdefault(name.casefold(), []).append(pk)

    documents: dict[str, _ParsedDocument] = {}
    for line_no, row in rows:
        def error(field_name, message, line_no=line_no):
            errors.append(RowError(line_no, field_name, str(message)))

        limit_errors = _limit_errors(row)
        for field_name, message in limit_errors:
            error(field_name, message)
        if limit_errors:
            continue
        reference = row.get("reference", "")
        if not reference:
            error("reference", Msg("the reference is missing"))
            continue
        values: dict = {}
        kind = row.get("type", "").lower()
        if kind not in DocumentType.values:
            error("type", Msg("must be invoice or receipt"))
        values["type"] = kind
        values["supplier"] = row.get("supplier", "")
        if not values["supplier"]:
            error("supplier", Msg("the supplier is missing"))
        values["supplier_vat"] = row.get("supplier_vat", "")
        values["description"] = row.get("description", "")
        for key, required in (("date", True), ("due_date", False)):
            raw = row.get(key, "")
            values[key] = None
            if raw:
                try:
                    values[key] = parse_date(raw)
                except ValueError as exc:
                    error(key, exc)
            elif required:
                error(key, Msg("the date is missing"))
        currency = (row.get("currency") or "DKK").upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            error("currency", Msg("a three-letter currency code, e.g. DKK or EUR"))
        values["currency"] = currency
        values["amount_dkk"] = None
        if row.get("amount_dkk"):
            try:
                values["amount_dkk"] = parse_amount(row["amount_dkk"])
                if values["amount_dkk"] <= 0:
                    error("amount_dkk", Msg("must be more than zero"))
            except ValueError as exc:
                error("amount_dkk", exc)
        values["payment_method"] = None
        method_name = row.get("payment_method", "")
        if kind == DocumentType.RECEIPT:
            if not method_name:
                error("payment_method", Msg("a receipt needs its payment method"))
            else:
                found = methods_by_name.get(method_name.casefold(), [])
                if len(found) != 1:
                    error("payment_method", Msg("“%(name)s” is not one payment method of %(company)s", name=method_name, company=company))
                else:
                    values["payment_method"] = found[0]
        values["attachment"] = None
        if row.get("attachment"):
            try:
                values["attachment"] = _resolve_attachment(row["attachment"], root=attachment_root,
                                                           allow_outside=allow_outside)
            except ValueError as exc:
                error("attachment", exc)

        line: dict = {"text": row.get("description", "")}
        try:
            line["amount"] = parse_amount(row.get("amount", ""))
            if line["amount"] <= 0:
                error("amount", Msg("must be more than zero (supplier credit notes are not supported yet)"))
        except ValueError as exc:
            error("amount", exc)
        vat_code = row.get("vat_code", "")
        line["vat_code"] = "" if vat_code.lower() in ("", "none", "-") else vat_code.upper()
        if line["vat_code"] and vat_codes and line["vat_code"] not in vat_codes:
            error("vat_code", Msg("Dinero has no VAT code %(code)s", code=line["vat_code"]))
        line["category"], problems, waits = _category(row.get("category", ""), snapshot)
        for problem in problems:
            error("category", problem)
        line["waits_for_mapping"] = waits

        existing = documents.get(reference)
        if existing is None:
            documents[reference] = _ParsedDocument(reference, line_no, values, [line], [line_no])
            continue
        existing.line_numbers.append(line_no)
        for key in DOCUMENT_FIELDS:
            if existing.values.get(key) != values.get(key):
                error(key, Msg("differs from line %(line)s of the same document %(ref)s", line=existing.first_line, ref=reference))
        existing.lines.append(line)
    return list(documents.values()), errors


def _document_fields(document: ExpenseDocument) -> tuple:
    return (document.type, document.supplier_name, document.supplier_vat, document.document_date,
            document.due_date, document.description, document.currency, document.amount_dkk,
            document.payment_method_id)


def _same_file(document: ExpenseDocument, path: Path) -> bool:
    if not document.attachment:
        return False
    try:
        with document.attachment.open("rb") as handle:
            return handle.read() == path.read_bytes()
    except OSError:
        return False


def expense_document_write(*, company, reference: str, values: dict, lines: list[dict], actor: Actor = None,
                           document: ExpenseDocument | None = None) -> tuple[ExpenseDocument, str]:
    """Create or update one document with its lines; returns (document, created|updated|unchanged).
    ``document`` is the stored one when the caller has read it already (with its lines)."""
    if document is None:
        document = ExpenseDocument.objects.filter(company=company, reference=reference).first()
    created = document is None
    if created:
        document = ExpenseDocument(company=company, reference=reference)
    before = None if created else _document_fields(document)
    document.type = values["type"]
    document.supplier_name = values["supplier"]
    document.supplier_vat = values.get("supplier_vat", "")
    document.document_date = values["date"]
    document.due_date = values.get("due_date")
    document.description = values.get("description", "")
    document.currency = values.get("currency") or "DKK"
    document.amount_dkk = values.get("amount_dkk")
    document.payment_method_id = values.get("payment_method")
    fields_changed = before != _document_fields(document)
    if fields_changed:
        document.save()
    existing_lines = [] if created else [(ln.amount, ln.vat_code, ln.category, ln.text) for ln in document.lines.all()]
    # As the fields will hold them (a category given as a number is stored as text).
    wanted = [(Decimal(str(ln["amount"])), str(ln.get("vat_code") or ""), str(ln.get("category") or ""),
               str(ln.get("text") or "")) for ln in lines]
    lines_changed = existing_lines != wanted
    if lines_changed:
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
    outcome = "created" if created else ("updated" if (fields_changed or lines_changed or file_changed)
                                         else "unchanged")
    if outcome != "unchanged":
        expense_document_changed(document=document, actor=actor)
        audit_record(action=f"expense:{outcome}", company=company, actor=actor,
                     message=Msg("Expense document %(ref)s %(outcome)s.", ref=reference, outcome=outcome))
    return document, outcome


def expense_documents_create(*, company, items: list, actor: Actor = None) -> None:
    """New documents without an attachment, written in bulk (COPY on PostgreSQL): the documents, their
    lines and one audit event each, as ``expense_document_write`` gives one; one sync task for them all."""
    ids = rows_insert(ExpenseDocument, [{
        "company_id": company.pk, "reference": item.reference, "type": item.values["type"],
        "supplier_name": item.values["supplier"], "supplier_vat": item.values.get("supplier_vat", ""),
        "document_date": item.values["date"], "due_date": item.values.get("due_date"),
        "description": item.values.get("description", ""), "currency": item.values.get("currency") or "DKK",
        "amount_dkk": item.values.get("amount_dkk"), "payment_method_id": item.values.get("payment_method"),
        "needs_sync": True} for item in items])
    rows_append(ExpenseLine, ({
        "document_id": document_id, "position": position, "amount": line["amount"],
        "vat_code": str(line.get("vat_code") or ""), "category": str(line.get("category") or ""),
        "text": str(line.get("text") or "")}
        for document_id, item in zip(ids, items, strict=True) for position, line in enumerate(item.lines)))
    audit_record_many(action="expense:created", actor=actor, events=(
        (company.pk, Msg("Expense document %(ref)s %(outcome)s.", ref=item.reference, outcome="created"))
        for item in items))
    if items:
        expense_documents_sync_later(company_id=company.pk)


def _stored_documents(company, references: list[str]) -> dict[str, ExpenseDocument]:
    """The company's stored documents of these references, with their lines (a slice of references per
    query: SQLite takes only so many parameters)."""
    found = {}
    for start in range(0, len(references), 900):
        found.update({d.reference: d for d in ExpenseDocument.objects.filter(
            company=company, reference__in=references[start:start + 900]).prefetch_related("lines")})
    return found


def documents_import(*, company, text: str, dry_run: bool = False, actor: Actor = None,
                     attachment_root: Path | None = None, allow_outside_root: bool = True) -> ImportResult:
    """Import expense documents from CSV (one row per line; lines of a document share its reference).

    All or nothing: when any row is bad nothing is written, and every bad row is reported.
    """
    result = ImportResult(dry_run=dry_run)
    parsed, result.errors = _parse_documents(company, text, attachment_root=attachment_root,
                                             allow_outside=allow_outside_root)
    existing = _stored_documents(company, [p.reference for p in parsed])
    for item in parsed:
        total = sum((ln.get("amount") or ZERO for ln in item.lines), ZERO)
        problems = [e for e in result.errors if e.line in item.line_numbers]
        action = "refused" if problems else ("update" if item.reference in existing else "create")
        result.documents.append({"reference": item.reference, "type": item.values.get("type"),
                                 "supplier": item.values.get("supplier"), "lines": len(item.lines),
                                 "total": f"{total:.2f}", "currency": item.values.get("currency"),
                                 "action": action, "problems": len(problems),
                                 "waits_for_mapping": sorted({ln["category"] for ln in item.lines
                                                              if ln.get("waits_for_mapping")})})
    if result.errors or dry_run:
        if not result.errors:
            result.created = sum(1 for d in result.documents if d["action"] == "create")
            result.updated = sum(1 for d in result.documents if d["action"] == "update")
        return result
    with transaction.atomic():
        # New documents without a file are written in bulk; the rest (changes, files) one by one.
        new = [item for item in parsed if item.reference not in existing and item.values.get("attachment") is None]
        expense_documents_create(company=company, items=new, actor=actor)
        written_in_bulk = {item.reference for item in new}
        for item, summary in zip(parsed, result.documents, strict=True):
            if item.reference in written_in_bulk:
                outcome = "created"
            else:
                _document, outcome = expense_document_write(
                    company=company, reference=item.reference, values=item.values, lines=item.lines, actor=actor,
                    document=existing.get(item.reference))
            summary["action"] = outcome
            setattr(result, outcome, getattr(result, outcome) + 1)
        audit_record(action="expense:import", outcome=AuditEvent.Outcome.OK, company=company, actor=actor,
                     message=Msg("Imported %(created)s new, %(updated)s changed and %(unchanged)s unchanged expense "
                               "documents.", created=result.created, updated=result.updated, unchanged=result.unchanged))
    return result


def import_root() -> Path:
    """Where the admin import looks for attachment paths (files put there by staff or a scanner)."""
    return Path(django_settings.MEDIA_ROOT) / "imports"
