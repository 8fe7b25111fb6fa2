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
from decimal import Decimal, InvalidOperation

from django.db import transaction

from bookkeeping import rules, sie
from bookkeeping.models import Voucher, VoucherKind, VoucherRow, VoucherState
from bookkeeping.selectors.plans import plan_snapshot
from bookkeeping.services.audit import Actor, actor_parts, audit_record
from bookkeeping.services.mappings import voucher_note_waiting
from bookkeeping.services.preflight import vouchers_preflight_refresh
from wording import Msg

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


@dataclass
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

    @property
    def unmapped_keys(self) -> list[tuple[str, str]]:
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
            reference=reference[:128], date=voucher.date,
            description=(voucher.text or Msg("Journal %(ref)s", ref=reference))[:200],
            series=_series_for(company, voucher.series, series, plan), line=voucher.line_no,
        )
        for row in voucher.rows:
            journal.rows.append(JournalRowData(
                account=row.account,
                debit=row.amount if row.amount > 0 else Decimal("0.00"),
                credit=-row.amount if row.amount < 0 else Decimal("0.00"),
                cost_centre=(row.cost_centre or "")[:6], project=(row.project or "")[:20], text=row.text[:100],
            ))
        journals.append(journal)
    return journals, parsed


def _amount(value: str, line: int, column: str, errors: list) -> Decimal:
    value = (value or "").strip().replace(" ", "").replace("\u00a0", "")
    if not value:
        return Decimal("0.00")
    if "," in value and "." not in value:
        value = value.replace(",", ".")  # decimal comma, as Swedish spreadsheets write it
    try:
        amount = Decimal(value)
    except InvalidOperation:
        errors.append((line, Msg("%(column)s '%(value)s' is not an amount.", column=column, value=value)))
        return Decimal("0.00")
    if amount != amount.quantize(Decimal("0.01")):
        errors.append((line, Msg("%(column)s has more than two decimals.", column=column)))
    return amount.quantize(Decimal("0.01"))


def _missing_columns(header: list[str]) -> list[str]:
    """Required: journal, date, debit, credit, and something that says the account (the source's
    account, a category, an add-on code or the Fortnox account itself)."""
    missing = [c for c in ("journal", "date", "debit", "credit") if c not in header]
    if not any(c in header for c in ("account", "category", "addon_code", "fortnox_account")):
        missing.insert(2, "account")
    return missing


def _source_values(row: dict, line: int, errors: list) -> dict | None:
    """The row's account-deciding values as the source gives them; None (with the error noted) when unreadable."""
    values = {name: (row.get(name) or "").strip()[:100] for name in ("account", *SOURCE_COLUMNS)}
    for name in ("account", "fortnox_account"):
        if values[name] and not values[name].isdigit():
            errors.append((line, Msg("Account '%(value)s' is not a number.", value=row.get(name))))
            return None
    if not any(values[name] for name in ("account", "category", "addon_code", "fortnox_account")):
        errors.append((line, Msg("The row names no account: give the account, a category, an add-on code or the "
                               "Fortnox account.")))
        return None
    return values


def journals_from_csv(*, company, data: bytes, series: str | None = None) -> list[JournalData]:
    """CSV with header ``journal,date,series,account,debit,credit,cost_centre,project,text``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252")
    sample = text[:2048]
    dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = _missing_columns(header)
    if missing:
        raise JournalImportError([(1, Msg("Missing columns: %(cols)s. Expected: %(all)s", cols=", ".join(missing), all=",".join(CSV_COLUMNS)))])
    reader.fieldnames = header
    errors: list[tuple[int, str]] = []
    journals: dict[str, JournalData] = {}
    for row in reader:
        line = reader.line_num
        ref = (row.get("journal") or "").strip()
        if not ref:
            errors.append((line, Msg("The journal id is empty.")))
            continue
        try:
            day = dt.date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            errors.append((line, Msg("Date '%(value)s' is not YYYY-MM-DD.", value=row.get("date"))))
            continue
        source = _source_values(row, line, errors)
        if source is None:
            continue
        account = source.pop("account")
        journal = journals.get(ref)
        row_series = (row.get("series") or "").strip()
        if journal is None:
            journal = journals[ref] = JournalData(
                reference=ref[:128], date=day, description=Msg("Journal %(ref)s", ref=ref),
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
            text=(row.get("text") or "").strip()[:100], category=source["category"],
            addon_code=source["addon_code"], property_key=source["property"],
            fortnox_account=source["fortnox_account"],
        ))
    for journal in journals.values():
        for problem in rules.check_balance(journal.rows):
            errors.append((journal.line, Msg("Journal %(ref)s: %(problem)s", ref=journal.reference, problem=problem)))
    if errors:
        raise JournalImportError(sorted(errors))
    return list(journals.values())


# --- storing ----------------------------------------------------------------------------------


def _said(source: dict) -> dict:
    """What the source said about a row, without how it was resolved (that follows the mappings)."""
    return {k: v for k, v in (source or {}).items() if k not in ("via", "unmapped")}


def _same(voucher: Voucher, journal: JournalData) -> bool:
    """The same journal as the source sent it before. Compared by what the source said, so a mapping
    changed since is no change of the journal (a posted one stays as it is; a waiting one is resolved
    again by the re-evaluation). Journals stored before rows kept their source compare as posted."""
    stored = list(voucher.rows.all())
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


def journals_store(*, company, journals: list[JournalData], source_system: str, actor: Actor = None) -> ImportResult:
    """Create or update the journals, all or nothing. Posted journals are never rewritten."""
    result = ImportResult()
    errors: list[tuple[int, str]] = []
    with transaction.atomic():
        for journal in journals:
            voucher = Voucher.objects.select_for_update().filter(
                company=company, source_system=source_system, source_reference=journal.reference).first()
            if voucher is None:
                voucher = Voucher.objects.create(
                    company=company, system="fortnox", kind=VoucherKind.JOURNAL, source_system=source_system,
                    source_reference=journal.reference, date=journal.date, description=journal.description,
                    series=journal.series, currency=company.base_currency or "SEK",
                    created_by=actor_parts(actor)[0],
                )
                result.created += 1
            elif _same(voucher, journal):
                result.unchanged += 1
                continue
            elif voucher.state not in EDITABLE:
                errors.append((journal.line, Msg("Journal %(ref)s is already on its way to Fortnox or posted there "
                                               "(status: %(state)s) with other content; post a correcting journal "
                                               "instead.", ref=journal.reference, state=voucher.get_state_display())))
                continue
            else:
                voucher.date, voucher.series, voucher.description = journal.date, journal.series, journal.description
                voucher.save()
                voucher.rows.all().delete()
                result.updated += 1
            VoucherRow.objects.bulk_create([
                VoucherRow(voucher=voucher, position=i, debit=r.debit, credit=r.credit, text=r.text,
                           **(r.stored or {"account": r.account, "cost_centre": r.cost_centre, "project": r.project}))
                for i, r in enumerate(journal.rows)
            ])
            voucher.extra = {**(voucher.extra or {}), "_source": journal_source(journal)}
            voucher.save(update_fields=["extra", "updated_at"])
            voucher_note_waiting(voucher=voucher)
            result.waiting += any(r.unmapped_keys for r in journal.rows)
            result.journals.append(journal.reference)
        if errors:
            transaction.set_rollback(True)
            raise JournalImportError(errors)
        audit_record(action="journals:import", actor=actor, company=company, outcome="ok",
                     message=Msg("%(created)s new, %(updated)s updated, %(unchanged)s unchanged journals; %(waiting)s "
                                 "wait for a mapping.", created=result.created, updated=result.updated,
                                 unchanged=result.unchanged, waiting=result.waiting))
        # Each journal says from now on whether it can be sent, and why not (the pre-flight check).
        stored_ids = list(Voucher.objects.filter(company=company, source_system=source_system,
                                                 source_reference__in=result.journals).values_list("id", flat=True))
        vouchers_preflight_refresh(company=company, system="fortnox", voucher_ids=stored_ids, actor=actor,
                                   queue_fixed=False)
    return result


def is_sie(data: bytes, filename: str = "") -> bool:
    """SIE 4 or CSV, told apart by content: a SIE file's lines start with '#'."""
    return data.lstrip()[:1] == b"#" or filename.lower().endswith((".se", ".si", ".sie"))


def journals_read(*, company, data: bytes, filename: str = "", series: str | None = None) -> list[JournalData]:
    """Read a file and resolve every row through the mappings (the preview and the import alike)."""
    if is_sie(data, filename):
        journals, _parsed = journals_from_sie(company=company, data=data, series=series)
    else:
        journals = journals_from_csv(company=company, data=data, series=series)
    return journals_resolve(company=company, journals=journals)


def journals_import(*, company, data: bytes, filename: str = "", series: str | None = None,
                    actor: Actor = None) -> ImportResult:
    journals = journals_read(company=company, data=data, filename=filename, series=series)
    return journals_store(company=company, journals=journals, source_system="sie" if is_sie(data, filename)
                          else "ledger", actor=actor)
