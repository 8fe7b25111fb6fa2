"""The property-ledger flow: journals per owner arrive (admin, SIE 4, CSV) and go to Fortnox.

A journal is a voucher of kind ``journal``; its id from the source (e.g. ``A25``) is the source
reference, so importing the same file again creates nothing twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction

from bookkeeping import rules, sie
from bookkeeping.limits import UnreadableFile, checked_amount, decode_text
from bookkeeping.models import Voucher, VoucherKind, VoucherRow, VoucherState
from bookkeeping.selectors.plans import plan_snapshot
from bookkeeping.services.audit import Actor, actor_parts, audit_record
from bookkeeping.services.bulk import vouchers_insert
from bookkeeping.services.mappings import voucher_note_waiting, waiting_note
from bookkeeping.services.preflight import vouchers_preflight_refresh
from bookkeeping.services.voucher_totals import rows_totals
from bookkeeping.services.vouchers import preflight_problems, preflight_values
from integrations.models import Integration
from wording import Msg

from .journal_checks import duplicate_voucher_numbers, journal_problems, source_value_problems
from .journal_mapping import journal_source, journals_resolve
from .series import _series_for

CSV_COLUMNS = ["journal", "date", "series", "account", "debit", "credit", "cost_centre", "project", "text"]
# Optional columns for a source that speaks its own language (see journal_mapping.py).
SOURCE_COLUMNS = ["category", "addon_code", "property", "owner", "fortnox_account"]
EDITABLE = (VoucherState.DRAFT, VoucherState.FAILED, VoucherState.OPTED_OUT, VoucherState.AWAITING_MAPPING)


class JournalImportError(ValueError):
    """The file is refused as a whole; ``errors`` lists (line, message)."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        super().__init__("; ".join(f"line {line}: {message}" if line else message for line, message in errors))


@dataclass(slots=True)  # a big file holds 100,000 of them at once
class JournalRowData:
    account: str  # as read: the source's own account; after resolving, the Fortnox account ("" while unmapped)
    debit: Decimal
    credit: Decimal
    cost_centre: str = ""
    project: str = ""
    text: str = ""
    # What the source said besides its account (optional CSV columns), and how the row was resolved.
    category: str = ""
    addon_code: str = ""
    property_key: str = ""  # the source's property (fastighet): maps to a cost centre
    fortnox_account: str = ""
    source_account: str = ""
    stored: dict = field(default_factory=dict)  # the VoucherRow source fields, once resolved
    line: int = 0  # where the row is in the file, for messages

    @property
    def unmapped_keys(self) -> list[tuple[str, str]]:
        if not self.stored.get("awaits_mapping"):
            return []  # asked of every row several times: the common answer without building a list
        return [tuple(pair) for pair in self.stored.get("source", {}).get("unmapped", [])]


@dataclass
class JournalData:
    reference: str
    date: dt.date
    description: str
    series: str
    rows: list[JournalRowData] = field(default_factory=list)
    line: int = 0
    owner: str = ""  # the property owner (CSV column ``owner``): may map to a voucher series
    series_given: bool = True  # the series came from the file or the import page, not a fallback


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    waiting: int = 0  # journals with a source value that has no mapping yet
    journals: list[str] = field(default_factory=list)


# --- reading ----------------------------------------------------------------------------------


def journals_from_sie(*, company, data: bytes, series: str | None = None) -> tuple[list[JournalData], sie.SieFile]:
    """SIE 4 (4E or 4I) → journals. Dimension 1 is the cost centre, dimension 6 the project."""
    try:
        parsed = sie.read(data)
    except sie.SieError as exc:
        raise JournalImportError(list(exc.errors)) from None
    errors = duplicate_voucher_numbers(parsed.vouchers)
    plan = plan_snapshot(company, "fortnox")
    journals: list[JournalData] = []
    seen: dict[str, int] = {}
    for voucher in parsed.vouchers:
        if voucher.number:
            reference = f"{voucher.series}{voucher.number}:{voucher.date.isoformat()}"
        else:
            digest = hashlib.sha1(repr((voucher.date, voucher.text, [
                (r.account, str(r.amount), r.objects, r.text) for r in voucher.rows])).encode()).hexdigest()[:10]
            reference = f"{voucher.series}-{voucher.date.isoformat()}-{digest}"
            # identical vouchers without numbers in one file stay distinct, and stable on re-import
            seen[reference] = seen.get(reference, 0) + 1
            if seen[reference] > 1:
                reference = f"{reference}#{seen[reference]}"
        journal = JournalData(
            reference=reference, date=voucher.date,
            description=voucher.text or Msg("Journal %(ref)s", ref=reference),
            series=_series_for(company, voucher.series, series, plan), line=voucher.line_no,
        )
        for row in voucher.rows:
            journal.rows.append(JournalRowData(
                account=row.account,
                debit=row.amount if row.amount > 0 else Decimal("0.00"),
                credit=-row.amount if row.amount < 0 else Decimal("0.00"),
                cost_centre=row.cost_centre or "", project=row.project or "", text=row.text, line=row.line_no,
            ))
        errors += journal_problems(journal, accounts=False)
        journals.append(journal)
    if errors:
        raise JournalImportError(sorted(errors))
    return journals, parsed


def _amount(value: str, line: int, column: str, errors: list) -> Decimal:
    value = (value or "").strip().replace(" ", "").replace("\u00a0", "")
    if not value:
        return Decimal("0.00")
    if "," in value and "." not in value:
        value = value.replace(",", ".")  # decimal comma, as Swedish spreadsheets write it
    try:
        return checked_amount(value)  # a plain number that fits: no 1e30, Infinity or NaN
    except ValueError as exc:
        errors.append((line, Msg("%(column)s: %(problem)s", column=column, problem=str(exc))))
        return Decimal("0.00")


def _csv_text(data: bytes) -> tuple[str, str]:
    """The file's text and its delimiter (from the header line: comma, semicolon or tab)."""
    try:
        text = decode_text(data)
    except UnreadableFile as exc:
        raise JournalImportError([(0, str(exc))]) from None
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    return text.lstrip("\ufeff"), delimiter


def _missing_columns(header: list[str]) -> list[str]:
    """Required: journal, date, debit, credit, and something that says the account (the source's
    account, a category, an add-on code or the Fortnox account itself)."""
    missing = [c for c in ("journal", "date", "debit", "credit") if c not in header]
    if not any(c in header for c in ("account", "category", "addon_code", "fortnox_account")):
        missing.insert(2, "account")
    return missing


def _source_values(row: dict, line: int, errors: list) -> dict | None:
    """The row's account-deciding values as the source gives them; None (with the error noted) when unreadable."""
    values = {name: (row.get(name) or "").strip() for name in ("account", *SOURCE_COLUMNS)}
    problems = source_value_problems(values)
    if problems:
        errors.extend((line, problem) for problem in problems)
        return None
    for name in ("account", "fortnox_account"):
        if values[name] and not (values[name].isascii() and values[name].isdigit()):
            errors.append((line, Msg("Account '%(value)s' is not a number.", value=(row.get(name) or "")[:40])))
            return None
    if not any(values[name] for name in ("account", "category", "addon_code", "fortnox_account")):
        errors.append((line, Msg("The row names no account: give the account, a category, an add-on code or the "
                               "Fortnox account.")))
        return None
    return values


def journals_from_csv(*, company, data: bytes, series: str | None = None) -> list[JournalData]:
    """CSV with header ``journal,date,series,account,debit,credit,cost_centre,project,text``."""
    text, delimiter = _csv_text(data)
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise JournalImportError([(1, Msg("The file is not a readable CSV file: %(error)s", error=str(exc)))]) from None
    missing = _missing_columns(header)
    if missing:
        raise JournalImportError([(1, Msg("Missing columns: %(cols)s. Expected: %(all)s", cols=", ".join(missing), all=",".join(CSV_COLUMNS)))])
    reader.fieldnames = header
    errors: list[tuple[int, str]] = []
    journals: dict[str, JournalData] = {}
    try:
        for row in reader:
            _csv_row(row, reader.line_num, company=company, series=series, journals=journals, errors=errors)
    except csv.Error as exc:
        errors.append((reader.line_num, Msg("The file is not a readable CSV file: %(error)s", error=str(exc))))
    for journal in journals.values():
        for problem in rules.check_balance(journal.rows):
            errors.append((journal.line, Msg("Journal %(ref)s: %(problem)s", ref=journal.reference, problem=problem)))
        errors += journal_problems(journal, accounts=False)
    if errors:
        raise JournalImportError(sorted(errors))
    return list(journals.values())


def _csv_row(row: dict, line: int, *, company, series, journals: dict, errors: list) -> None:
    """One CSV row into its journal (created at its first row)."""
    if row.get(None):
        # More fields than the header: usually an unquoted decimal comma in a comma-separated file.
        errors.append((line, Msg("The row has more fields than the header (%(expected)s); is a decimal comma "
                                 "unquoted?", expected=len(row) - 1)))
        return
    ref = (row.get("journal") or "").strip()
    if not ref:
        errors.append((line, Msg("The journal id is empty.")))
        return
    try:
        day = dt.date.fromisoformat((row.get("date") or "").strip())
    except ValueError:
        errors.append((line, Msg("Date '%(value)s' is not YYYY-MM-DD.", value=(row.get("date") or "")[:40])))
        return
    source = _source_values(row, line, errors)
    if source is None:
        return
    account = source.pop("account")
    journal = journals.get(ref)
    row_series = (row.get("series") or "").strip()
    if journal is None:
        journal = journals[ref] = JournalData(
            reference=ref, date=day, description=Msg("Journal %(ref)s", ref=ref),
            series=series or row_series or company.default_series or "A", line=line,
            owner=source["owner"], series_given=bool(series or row_series))
    elif journal.date != day:
        errors.append((line, Msg("Journal %(ref)s has rows with different dates.", ref=ref)))
    elif journal.owner != source["owner"]:
        errors.append((line, Msg("Journal %(ref)s has rows of different owners.", ref=ref)))
    journal.rows.append(JournalRowData(
        account=account, debit=_amount(row.get("debit"), line, "debit", errors),
        credit=_amount(row.get("credit"), line, "credit", errors),
        cost_centre=(row.get("cost_centre") or "").strip(), project=(row.get("project") or "").strip(),
        text=(row.get("text") or "").strip(), category=source["category"], line=line,
        addon_code=source["addon_code"], property_key=source["property"],
        fortnox_account=source["fortnox_account"],
    ))


# --- storing ----------------------------------------------------------------------------------


def _said(source: dict) -> dict:
    """What the source said about a row, without how it was resolved (that follows the mappings)."""
    return {k: v for k, v in (source or {}).items() if k not in ("via", "unmapped")}


def _same(voucher: Voucher, stored: list, journal: JournalData) -> bool:
    """The same journal as the source sent it before. Compared by what the source said, so a mapping
    changed since is no change of the journal (a posted one stays as it is; a waiting one is resolved
    again by the re-evaluation). Journals stored before rows kept their source compare as posted."""
    kept = (voucher.extra or {}).get("_source")
    if kept is None or any(not r.source for r in stored):
        existing = [(r.account, r.debit, r.credit, r.cost_centre, r.project, r.text) for r in stored]
        incoming = [(r.account, r.debit, r.credit, r.cost_centre, r.project, r.text) for r in journal.rows]
        return (voucher.date, voucher.series, existing) == (journal.date, journal.series, incoming)
    existing = [(r.debit, r.credit, r.text, _said(r.source)) for r in stored]
    incoming = [(r.debit, r.credit, r.text, _said(r.stored.get("source", {}))) for r in journal.rows]
    series = (voucher.series if kept.get("series_given", True) else kept.get("owner"),
              journal.series if journal.series_given else journal.owner)
    return voucher.date == journal.date and series[0] == series[1] and existing == incoming


BATCH = 2000  # journals looked up per query: a year of a big property owner is tens of thousands


def journals_store(*, company, journals: list[JournalData], source_system: str, actor: Actor = None) -> ImportResult:
    """Create or update the journals, all or nothing. Posted journals are never rewritten.

    New journals (nearly all of a big file) are checked in memory and written in bulk (COPY on
    PostgreSQL) with their pre-flight result and waiting note; a journal that was there before is
    compared, and rewritten and checked again only when its content changed."""
    result = ImportResult()
    errors: list[tuple[int, str]] = []
    created_by = actor_parts(actor)[0]
    new_journals: list[JournalData] = []
    rewritten: list[tuple[Voucher, JournalData]] = []
    with transaction.atomic():
        for start in range(0, len(journals), BATCH):
            batch = journals[start:start + BATCH]
            existing = {v.source_reference: v for v in Voucher.objects.select_for_update().filter(
                company=company, source_system=source_system, source_reference__in=[j.reference for j in batch])}
            existing_rows: dict[int, list] = {v.pk: [] for v in existing.values()}
            if existing:
                for row in VoucherRow.objects.filter(voucher__in=list(existing.values())).order_by(
                        "voucher", "position", "id"):
                    existing_rows[row.voucher_id].append(row)
            for journal in batch:
                voucher = existing.get(journal.reference)
                if voucher is None:
                    new_journals.append(journal)
                    result.created += 1
                elif _same(voucher, existing_rows[voucher.pk], journal):
                    result.unchanged += 1
                    continue
                elif voucher.state not in EDITABLE:
                    errors.append((journal.line, Msg("Journal %(ref)s is already on its way to Fortnox or posted there "
                                                     "(status: %(state)s) with other content; post a correcting "
                                                     "journal instead.", ref=journal.reference,
                                                     state=voucher.get_state_display())))
                    continue
                else:
                    rewritten.append((voucher, journal))
                    result.updated += 1
                result.waiting += any(r.unmapped_keys for r in journal.rows)
                result.journals.append(journal.reference)
        if errors:
            transaction.set_rollback(True)
            raise JournalImportError(errors)
        try:
            _store_new(company=company, journals=new_journals, source_system=source_system, created_by=created_by)
        except IntegrityError:
            # The same journals were stored meanwhile (the same file imported twice at once): nothing of
            # this import is kept; importing it again finds them and reports them as unchanged.
            raise JournalImportError([(0, Msg("The same journals were being imported at the same time; nothing "
                                              "was imported by this attempt. Import the file again."))]) from None
        for voucher, journal in rewritten:
            voucher.date, voucher.series = journal.date, journal.series
            voucher.description = journal.description
            voucher.extra = {**(voucher.extra or {}), "_source": journal_source(journal)}
            # The rows below are rewritten from these journal rows: the stored totals follow them.
            voucher.debit_total, voucher.credit_total = rows_totals(_row_values(r) for r in journal.rows)
            voucher.save()
        VoucherRow.objects.filter(voucher__in=[voucher for voucher, _journal in rewritten]).delete()
        VoucherRow.objects.bulk_create([
            VoucherRow(voucher=voucher, position=i, **_row_values(r))
            for voucher, journal in rewritten for i, r in enumerate(journal.rows)
        ], batch_size=1000)
        for voucher, _journal in rewritten:
            voucher_note_waiting(voucher=voucher)
        audit_record(action="journals:import", actor=actor, company=company, outcome="ok",
                     message=Msg("%(created)s new, %(updated)s updated, %(unchanged)s unchanged journals; %(waiting)s "
                                 "wait for a mapping.", created=result.created, updated=result.updated,
                                 unchanged=result.unchanged, waiting=result.waiting))
        # A rewritten journal says from now on whether it can be sent, and why not (the pre-flight check;
        # one refused before that passes now is a ready draft again). In slices: SQLite takes at most
        # 32,766 values in one query.
        rewritten_ids = [voucher.pk for voucher, _journal in rewritten]
        for start in range(0, len(rewritten_ids), 10 * BATCH):
            vouchers_preflight_refresh(company=company, system="fortnox",
                                       voucher_ids=rewritten_ids[start:start + 10 * BATCH], actor=actor,
                                       queue_fixed=False)
    return result


def _row_values(row: JournalRowData) -> dict:
    return {"debit": row.debit, "credit": row.credit, "text": row.text,
            **(row.stored or {"account": row.account, "cost_centre": row.cost_centre, "project": row.project})}


def _store_new(*, company, journals: list[JournalData], source_system: str, created_by) -> None:
    """New journals as drafts, each with its pre-flight result (checked here, as ``vouchers_preflight_refresh``
    checks a stored one) and, when a row waits for a mapping, the note that says so."""
    if not journals:
        return
    plan = plan_snapshot(company, "fortnox", fresh=True)
    integration = Integration.objects.filter(company=company, system="fortnox").first()
    vouchers = []
    for journal in journals:
        problems = preflight_problems(system="fortnox", integration=integration, plan=plan, rows=journal.rows,
                                      day=journal.date, series=journal.series)
        waiting = any(r.unmapped_keys for r in journal.rows)
        vouchers.append({
            "company_id": company.pk, "system": "fortnox", "kind": VoucherKind.JOURNAL, "source_system": source_system,
            "source_reference": journal.reference, "date": journal.date, "description": journal.description,
            "series": journal.series, "currency": company.base_currency or "SEK", "created_by_id": created_by.pk
            if created_by else None, "extra": {"_source": journal_source(journal)},
            "last_error": waiting_note(journal.rows) if waiting else "", "last_error_code": "unmapped" if waiting else "",
            **preflight_values(problems),
        })
    vouchers_insert(vouchers=vouchers, rows=((_row_values(r) for r in journal.rows) for journal in journals))


def is_sie(data: bytes, filename: str = "") -> bool:
    """SIE 4 or CSV, told apart by content: a SIE file's lines start with '#'."""
    return data.lstrip()[:1] == b"#" or filename.lower().endswith((".se", ".si", ".sie"))


def journals_read(*, company, data: bytes, filename: str = "", series: str | None = None) -> list[JournalData]:
    """Read a file and resolve every row through the mappings (the preview and the import alike)."""
    if is_sie(data, filename):
        journals, _parsed = journals_from_sie(company=company, data=data, series=series)
    else:
        journals = journals_from_csv(company=company, data=data, series=series)
    journals = journals_resolve(company=company, journals=journals)
    # What the mappings made of each row (a Fortnox account, cost centre, project, series) must fit too.
    problems = [problem for journal in journals for problem in journal_problems(journal)]
    if problems:
        raise JournalImportError(sorted(problems))
    return journals


def journals_import(*, company, data: bytes, filename: str = "", series: str | None = None,
                    actor: Actor = None) -> ImportResult:
    journals = journals_read(company=company, data=data, filename=filename, series=series)
    return journals_store(company=company, journals=journals, source_system="sie" if is_sie(data, filename)
                          else "ledger", actor=actor)
