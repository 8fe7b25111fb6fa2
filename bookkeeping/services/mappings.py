"""Writing account mappings, and what a change sets in motion.

Every change (the admin, the import, the unmapped-values page, the Nets Easy settings page) goes
through ``account_mapping_save`` / ``account_mapping_delete`` / ``account_mappings_set``: checked,
audited, and one re-evaluation task is queued per company once the change is committed. The task
(``mappings_reevaluate``) resolves again what has not been sent yet — a voucher waiting for a
mapping goes on by itself — and never touches what was posted: a correction of a posted voucher
is its own, explicit action.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from types import SimpleNamespace

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from wording import Msg

from ..models import AccountMapping, Voucher, VoucherState
from ..selectors.mappings import (
    FLOWS,
    SENT_STATES,
    MappingSnapshot,
    RowSource,
    mapping_problems,
    mapping_snapshot,
    normalise_key,
)
from .audit import Actor, audit_record, audit_record_many
from .vouchers import voucher_queue, voucher_transition

logger = logging.getLogger("kontera.mappings")
S = VoucherState


# Who is changing mappings right now (set by the services; the signal handler audits with it).
mapping_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("mapping_actor", default=None)


@contextlib.contextmanager
def acting(actor: Actor):
    token = mapping_actor.set(actor)
    try:
        yield
    finally:
        mapping_actor.reset(token)


def describe_mapping(mapping: AccountMapping) -> Msg:
    """The row in words, kept as a code so the audit trail reads it in the reader's language."""
    from ..models import MappingKind

    target = [str(mapping.account_number)] if mapping.account_number else []
    if mapping.cost_centre:
        target.append(Msg("cost centre %(value)s", value=mapping.cost_centre))
    if mapping.project:
        target.append(Msg("project %(value)s", value=mapping.project))
    if mapping.vat_code:
        target.append(Msg("VAT code %(value)s", value=mapping.vat_code))
    if mapping.series:
        target.append(Msg("series %(value)s", value=mapping.series))
    kind = MappingKind(mapping.kind).label if mapping.kind in MappingKind._value2member_map_ else mapping.kind
    return Msg("%(kind)s “%(key)s” → %(target)s", kind=kind, key=mapping.key,
               target=Msg.join(", ", target) if target else "–")


def account_mapping_save(*, company, system: str, kind: str, key: str, account_number=None, cost_centre: str = "",
                         project: str = "", vat_code: str = "", series: str = "", note: str | None = None,
                         actor: Actor = None) -> AccountMapping:
    """Create or change the row for (company, system, kind, key); raises ValidationError per field.
    Saving it audits the change and queues the re-evaluation (``bookkeeping.signals``)."""
    key = " ".join(str(key or "").split())
    values = {"account_number": int(account_number) if account_number not in (None, "") else None,
              "cost_centre": (cost_centre or "").strip(), "project": (project or "").strip(),
              "vat_code": (vat_code or "").strip(), "series": (series or "").strip().upper()}
    with transaction.atomic(), acting(actor):
        # The row of this source value, however its key was spelt (case and spaces do not matter).
        mapping = next((m for m in AccountMapping.objects.select_for_update().filter(
            company=company, system=system, kind=kind) if normalise_key(m.key) == normalise_key(key)), None)
        errors = mapping_problems(company=company, system=system, kind=kind, key=key,
                                  exclude_pk=mapping.pk if mapping else None, **values)
        if errors:
            raise ValidationError({name: [message] for name, message in errors.items()})
        mapping = mapping or AccountMapping(company=company, system=system, kind=kind, key=key)
        if mapping.pk and all(getattr(mapping, name) == value for name, value in values.items()) and (
                note is None or note == mapping.note):
            return mapping  # nothing changes: nothing to audit or re-evaluate
        for name, value in values.items():
            setattr(mapping, name, value)
        if note is not None:
            mapping.note = note[:200]
        mapping.full_clean()
        mapping.save()
    return mapping


def account_mapping_delete(*, mapping: AccountMapping, actor: Actor = None) -> None:
    with transaction.atomic(), acting(actor):
        mapping.delete()


def account_mappings_set(*, company, system: str, rows: dict[tuple[str, str], dict | None], actor: Actor = None
                         ) -> list[AccountMapping]:
    """Set several rows at once (a settings page): a dict of values saves the row, None deletes it.
    All or nothing: one bad row and nothing changes."""
    errors: dict[str, list[str]] = {}
    saved = []
    with transaction.atomic():
        for (kind, key), values in rows.items():
            if values is None:
                for mapping in AccountMapping.objects.filter(company=company, system=system, kind=kind):
                    if normalise_key(mapping.key) == normalise_key(key):
                        account_mapping_delete(mapping=mapping, actor=actor)
                continue
            try:
                saved.append(account_mapping_save(company=company, system=system, kind=kind, key=key, actor=actor,
                                                  **values))
            except ValidationError as exc:
                for name, messages in exc.message_dict.items():
                    errors.setdefault(f"{kind}:{key}:{name}", []).extend(messages)
        if errors:
            transaction.set_rollback(True)
            raise ValidationError(errors)
    return saved


# The columns an import writes (besides the company, system and kind that identify a row).
IMPORTED_FIELDS = ("key", "account_number", "cost_centre", "project", "vat_code", "series", "note")


def account_mappings_import(*, created: list[dict], changed: list[dict], actor: Actor = None) -> None:
    """Write an import's checked rows in bulk: ``created`` are new rows (company_id, system, kind and the
    imported fields), ``changed`` stored ones (``pk`` and the imported fields). Each row is audited as a
    single save is — written in bulk too — and one re-evaluation per company is queued once committed
    (``enqueue_mappings_reevaluation``). Runs in the caller's transaction: all or nothing."""
    from .bulk import rows_append, rows_update

    actor = actor if actor is not None else mapping_actor.get()
    rows_append(AccountMapping, created)
    rows_update(AccountMapping, changed, fields=IMPORTED_FIELDS)
    audit_record_many(action="mapping:created", actor=actor, events=(
        (values["company_id"], describe_mapping(SimpleNamespace(**values))) for values in created))
    audit_record_many(action="mapping:changed", actor=actor, events=(
        (values["company_id"], Msg("Now: %(mapping)s", mapping=describe_mapping(SimpleNamespace(**values))))
        for values in changed))
    for company_id in sorted({values["company_id"] for values in (*created, *changed)}):
        enqueue_mappings_reevaluation(company_id)


# --- re-evaluation ------------------------------------------------------------------------------


def reevaluation_ticket(company_id: int) -> str:
    return f"kontera:mappings-reevaluate:{company_id}"


def enqueue_mappings_reevaluation(company_id: int) -> None:
    """Once the change is committed: one task for the company (never one per voucher or per row).

    Within one transaction (an import of many rows) one callback is registered per company; across
    transactions, a change made while a task is already queued rides along with it (the task gives
    its ticket back when it starts, so a later change queues a new one)."""
    # The callbacks of one transaction for one company share a flag: the first to run enqueues, the
    # rest do nothing (whichever of them survives a rolled-back savepoint).
    pending = [entry[1] for entry in transaction.get_connection().run_on_commit
               if getattr(entry[1], "kontera_company", None) == company_id]
    batch = pending[-1].kontera_batch if pending and not pending[-1].kontera_batch["done"] else {"done": False}

    def enqueue():
        if batch["done"]:
            return
        batch["done"] = True
        if not cache.add(reevaluation_ticket(company_id), 1, timeout=600):
            return
        from django_q.tasks import async_task

        async_task("bookkeeping.tasks.mappings_reevaluate", company_id, task_name=f"mappings-{company_id}",
                   group="mappings")

    enqueue.kontera_company, enqueue.kontera_batch = company_id, batch
    transaction.on_commit(enqueue)


def mappings_reevaluate(*, company, actor: Actor = "worker") -> dict:
    """Resolve again everything of the company that is not sent yet: each flow does its part; the
    vouchers of no registered flow (whose rows kept their source values) are re-resolved here."""
    outcome: dict[str, dict] = {}
    handled: set[str] = set()
    for flow in FLOWS.values():
        if flow.reevaluate is not None:
            outcome[flow.key] = flow.reevaluate(company=company, actor=actor)
            handled.update(flow.source_systems)
    others = (Voucher.objects.filter(company=company, rows__source_kind__gt="").exclude(state__in=SENT_STATES)
              .exclude(source_system__in=handled).values_list("source_system", flat=True).distinct())
    systems = sorted(set(others))
    if systems:
        outcome["vouchers"] = vouchers_remap(company=company, source_systems=systems, actor=actor)
    return outcome


def vouchers_remap(*, company, source_systems, actor: Actor = "worker", series_for=None) -> dict:
    """Re-resolve the rows of every voucher not sent yet from what their source said.

    ``series_for(voucher, snapshot)`` may give a new series (e.g. an owner's). One mapping snapshot
    per target system serves the whole batch.
    """
    counts: dict[str, int] = {}
    snapshots: dict[str, MappingSnapshot] = {}
    vouchers = (Voucher.objects.filter(company=company, source_system__in=list(source_systems), remote_id="")
                .exclude(state__in=SENT_STATES).order_by("date", "id"))
    requeued = False
    for voucher_id, system in vouchers.values_list("id", "system"):
        snapshot = snapshots.get(system) or snapshots.setdefault(system, mapping_snapshot(company, system))
        result = voucher_remap(voucher_id=voucher_id, snapshot=snapshot, actor=actor, series_for=series_for)
        counts[result] = counts.get(result, 0) + 1
        requeued = requeued or result == "queued"
    if requeued:
        from .dispatchers import kick_dispatch

        transaction.on_commit(kick_dispatch)
    return counts


def vouchers_resolve_again(*, vouchers, actor: Actor = None) -> dict:
    """Staff's "Retry" for vouchers waiting for a mapping: resolve them now (one snapshot per company and
    system), and what is complete goes on — without waiting for the re-evaluation task."""
    counts: dict[str, int] = {}
    snapshots: dict[tuple[int, str], MappingSnapshot] = {}
    for voucher in vouchers:
        key = (voucher.company_id, voucher.system)
        if key not in snapshots:
            snapshots[key] = mapping_snapshot(voucher.company, voucher.system)
        result = voucher_remap(voucher_id=voucher.pk, snapshot=snapshots[key], actor=actor)
        counts[result] = counts.get(result, 0) + 1
    if counts.get("queued"):
        from .dispatchers import kick_dispatch

        transaction.on_commit(kick_dispatch)
    return counts


def voucher_remap(*, voucher_id: int, snapshot: MappingSnapshot, actor: Actor = "worker", series_for=None) -> str:
    """One voucher: new row values where the mappings now say otherwise, and the state that follows
    (waiting → queued when every value is mapped, queued → waiting when one no longer is)."""
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().filter(pk=voucher_id).first()
        if voucher is None or voucher.state in SENT_STATES or voucher.remote_id or voucher.posted_at:
            return "untouched"
        changes = []
        rows = list(voucher.rows.all())
        for position, row in enumerate(rows, start=1):
            source = RowSource.from_json(row.source)
            if source is None:
                continue
            fields = snapshot.resolve_row(source).row_fields(source)
            changed = {name: value for name, value in fields.items() if getattr(row, name) != value}
            if not changed:
                continue
            if "account" in changed or "cost_centre" in changed:
                changes.append(Msg("row %(n)s: %(before)s → %(after)s", n=position,
                                   before=f"{row.account or '–'} {row.cost_centre}".strip(),
                                   after=f"{fields['account'] or '–'} {fields['cost_centre']}".strip()))
            for name, value in changed.items():
                setattr(row, name, value)
            row.save(update_fields=list(changed))
        series = series_for(voucher, snapshot) if series_for else None
        if series and series != voucher.series:
            changes.append(Msg("series %(before)s → %(after)s", before=voucher.series, after=series))
            voucher.series = series
            voucher.save(update_fields=["series", "updated_at"])
        if changes:
            audit_record(action="mapping:applied", voucher=voucher, actor=actor,
                         message=Msg("Resolved again after a mapping change: %(changes)s",
                                     changes=Msg.join("; ", changes)))
        waiting = any(row.awaits_mapping for row in rows)
        return _follow_up(voucher, waiting=waiting, changed=bool(changes), actor=actor)


def _follow_up(voucher: Voucher, *, waiting: bool, changed: bool, actor: Actor) -> str:
    if voucher.state == S.AWAITING_MAPPING and not waiting:
        problems = voucher_queue(voucher=voucher, actor=actor, kick=False)
        voucher.refresh_from_db(fields=["state"])
        return "queued" if not problems and voucher.state == S.QUEUED else "checked"
    if voucher.state == S.QUEUED and waiting:
        voucher_transition(voucher=voucher, to=S.AWAITING_MAPPING, actor=actor,
                           message=Msg("A mapping it relied on is gone; it waits for a mapping again."))
        return "waiting"
    if voucher.state == S.FAILED and changed and not waiting:
        problems = voucher_queue(voucher=voucher, actor=actor, kick=False)
        return "queued" if not problems else "checked"
    if voucher.state == S.DRAFT:
        _note_waiting(voucher, waiting=waiting)
    return "waiting" if waiting else ("changed" if changed else "unchanged")


def waiting_note(rows) -> str:
    """What a draft says while rows wait for a mapping (its ``last_error``, code ``unmapped``)."""
    from .. import rules

    return "\n".join(str(p) for p in rules.check_mapped(rows))


def _note_waiting(voucher: Voucher, *, waiting: bool) -> None:
    """A draft says why it would wait, so staff see it before they send it."""
    if waiting:
        text = waiting_note(list(voucher.rows.all()))
        if (voucher.last_error, voucher.last_error_code) != (text, "unmapped"):
            voucher.last_error, voucher.last_error_code = text, "unmapped"
            voucher.save(update_fields=["last_error", "last_error_code", "updated_at"])
    elif voucher.last_error_code == "unmapped":
        voucher.last_error, voucher.last_error_code = "", ""
        voucher.save(update_fields=["last_error", "last_error_code", "updated_at"])


def voucher_note_waiting(*, voucher: Voucher) -> None:
    """After a flow stored a draft: note the values it waits on (or clear the note)."""
    _note_waiting(voucher, waiting=voucher.rows.filter(awaits_mapping=True).exists())


