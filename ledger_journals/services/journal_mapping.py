"""What a property-ledger row means in Fortnox: the source's own account, category or add-on code
through the account mappings, a property to its cost centre, an owner to its voucher series.

The order, most specific first (the core's precedence, ``bookkeeping.selectors.mappings``):
``fortnox_account`` (the Fortnox account, named explicitly) wins; else the add-on code's mapping,
the category's, the source account's; else the source account itself when Fortnox has it (a file
that already speaks Fortnox passes as before); else a kind's default row; else the row waits for a
mapping. The cost centre: the row's own ``cost_centre`` (the guide keeps the numbers the same in
both systems), else the property's mapping, else the account mapping's. The series: the one chosen
on the import page or given in the file, else the owner's mapping, else the company's default.
"""

from __future__ import annotations

from bookkeeping.models import MappingKind
from bookkeeping.selectors.mappings import MappingSnapshot, RowSource, mapping_snapshot
from bookkeeping.services.audit import Actor
from bookkeeping.services.mappings import vouchers_remap

SYSTEM = "fortnox"
SOURCE_SYSTEMS = ("ledger", "sie")
K = MappingKind


def row_source(row) -> RowSource:
    keys = []
    if row.addon_code:
        keys.append((K.ADDON_CODE.value, row.addon_code))
    if row.category:
        keys.append((K.LEDGER_CATEGORY.value, row.category))
    if row.source_account:
        keys.append((K.LEDGER_ACCOUNT.value, row.source_account))
    return RowSource(keys=tuple(keys), account=row.fortnox_account, cost_centre=row.cost_centre,
                     cost_centre_keys=((K.PROPERTY.value, row.property_key),) if row.property_key else (),
                     project=row.project)


def journal_series(*, company, snapshot: MappingSnapshot, owner: str, series: str, series_given: bool) -> str:
    if series_given or not owner:
        return series
    return snapshot.series_for(owner) or company.default_series or "A"


def journal_source(journal) -> dict:
    """What the voucher keeps of the journal's source (for resolving its series again)."""
    return {"owner": journal.owner, "series_given": journal.series_given}


def journals_resolve(*, company, journals: list, snapshot: MappingSnapshot | None = None) -> list:
    """Resolve every row of the journals in place (one mapping snapshot for the whole file)."""
    snapshot = snapshot or mapping_snapshot(company, SYSTEM)
    # A file repeats a few combinations of source values many times: each is resolved once.
    resolved: dict[tuple, dict] = {}
    for journal in journals:
        journal.series = journal_series(company=company, snapshot=snapshot, owner=journal.owner,
                                        series=journal.series, series_given=journal.series_given)
        for row in journal.rows:
            row.source_account = row.source_account or row.account
            said = (row.addon_code, row.category, row.source_account, row.fortnox_account, row.cost_centre,
                    row.property_key, row.project)
            fields = resolved.get(said)
            if fields is None:
                source = row_source(row)
                fields = resolved[said] = snapshot.resolve_row(source).row_fields(source)
            row.stored = fields  # shared by the rows that said the same: read, never changed
            row.account, row.cost_centre, row.project = fields["account"], fields["cost_centre"], fields["project"]
    return journals


def _series_after_change(voucher, snapshot: MappingSnapshot) -> str | None:
    source = (voucher.extra or {}).get("_source") or {}
    if not source.get("owner") or source.get("series_given", True):
        return None
    return journal_series(company=voucher.company, snapshot=snapshot, owner=source["owner"], series=voucher.series,
                          series_given=False)


def journals_reevaluate(*, company, actor: Actor = "worker") -> dict:
    """After a mapping change: journals not sent yet are resolved again; a waiting one goes on by itself."""
    return vouchers_remap(company=company, source_systems=SOURCE_SYSTEMS, actor=actor,
                          series_for=_series_after_change)
