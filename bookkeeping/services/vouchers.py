"""The voucher's life: its state machine, the pre-flight check and the queue. The path to the target
(claim → call → record) and the dispatchers are in ``sending``."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation

from integrations import registry
from integrations.base import (
    VoucherDTO,
    VoucherRowDTO,
)
from integrations.models import Integration
from wording import Msg, english, restored, set_text, stored

from .. import rules
from ..models import AuditEvent, Voucher, VoucherRow, VoucherState
from ..selectors.plans import plan_snapshot
from .audit import Actor, actor_parts, audit_record, audit_record_vouchers
from .bulk import rows_update

logger = logging.getLogger("kontera.vouchers")

S = VoucherState

# The only legal moves; anything else raises IllegalTransition.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.QUEUED, S.FAILED, S.OPTED_OUT, S.AWAITING_MAPPING}),
    S.QUEUED: frozenset({S.SENDING, S.DRAFT, S.FAILED, S.OPTED_OUT, S.AWAITING_AUTHORISATION, S.AWAITING_MAPPING}),
    S.SENDING: frozenset({S.POSTED, S.QUEUED, S.FAILED, S.AWAITING_AUTHORISATION}),
    S.POSTED: frozenset({S.NEEDS_UPDATE}),
    S.NEEDS_UPDATE: frozenset({S.QUEUED, S.POSTED, S.FAILED, S.AWAITING_MAPPING}),
    S.FAILED: frozenset({S.QUEUED, S.DRAFT, S.OPTED_OUT, S.AWAITING_MAPPING, S.HANDLED_OUTSIDE}),
    S.AWAITING_AUTHORISATION: frozenset({S.QUEUED, S.FAILED, S.AWAITING_MAPPING, S.HANDLED_OUTSIDE}),
    # Sent after all (staff queue it): one that breaks a rule fails with the reason, as any other would.
    S.OPTED_OUT: frozenset({S.DRAFT, S.QUEUED, S.FAILED, S.AWAITING_MAPPING}),
    S.AWAITING_MAPPING: frozenset({S.QUEUED, S.DRAFT, S.FAILED, S.OPTED_OUT, S.HANDLED_OUTSIDE}),
    # Staff booked it by hand (with a note); it can be taken back to draft if that was a mistake.
    S.HANDLED_OUTSIDE: frozenset({S.DRAFT}),
}
# Sending is attempted from these states (a waiting voucher goes on once its values are mapped).
QUEUEABLE = (S.DRAFT, S.FAILED, S.OPTED_OUT, S.NEEDS_UPDATE, S.AWAITING_AUTHORISATION, S.AWAITING_MAPPING)



class IllegalTransition(Exception):
    pass


def transition_check(current: str, to: str) -> None:
    """Raise ``IllegalTransition`` unless TRANSITIONS allows ``current`` → ``to``."""
    if to not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(
            Msg("A voucher cannot go from %(from)s to %(to)s.",
                **{"from": S(current).label, "to": S(to).label if to in S.values else to})
        )


def voucher_transition(*, voucher: Voucher, to: str, actor: Actor = None, message: str = "",
                       outcome: str = AuditEvent.Outcome.INFO, **fields) -> Voucher:
    """Move a voucher to ``to`` (it must be locked by the caller) and write the audit event.

    ``last_error`` (like ``message``) may be a ``wording.Msg``: it is kept as a code and shown in
    the reader's language.
    """
    current = voucher.state
    transition_check(current, to)
    voucher.state = to
    changed = ["state", "updated_at"]
    if to == S.QUEUED and current != S.SENDING:  # a retry keeps its place in the queue
        fields.setdefault("queued_at", timezone.now())
        user, _label = actor_parts(actor)
        if user is not None:
            fields.setdefault("requested_by", user)
    changed += voucher_set_fields(voucher, fields)
    if voucher.pk is None:
        voucher.save()
    else:
        voucher.save(update_fields=list(dict.fromkeys(changed)))
    audit_record(
        action=f"state:{current}->{to}", outcome=outcome, actor=actor, voucher=voucher,
        message=message or transition_message(current, to),
    )
    return voucher


def voucher_set_fields(voucher, fields: dict) -> list[str]:
    """Set ``fields`` on the voucher in memory, coded texts as ``set_text`` keeps them; returns what to write."""
    changed = []
    for name, value in fields.items():
        if name in Voucher.coded_text_fields:
            changed += set_text(voucher, name, value)
        else:
            setattr(voucher, name, value)
            changed.append(name)
    return changed


def transition_message(before: str, after: str) -> Msg:
    """The audit message of a plain move from one state to another."""
    return Msg("%(from)s → %(to)s", **{"from": S(before).label, "to": S(after).label})


# --- building what a connector sees -----------------------------------------------------------


def voucher_fingerprint(voucher: Voucher) -> str:
    """A hash of everything that is posted: a change to it means the target's copy is out of date."""
    payload = {
        "date": voucher.date.isoformat(),
        "description": voucher.description,
        "series": voucher.series,
        "currency": voucher.currency,
        "rows": [
            [r.account, f"{r.debit:.2f}", f"{r.credit:.2f}", r.cost_centre, r.project, r.text, r.vat_code]
            for r in voucher.rows.all()
        ],
        "extra": {k: v for k, v in (voucher.extra or {}).items() if not k.startswith("_")},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def voucher_integration(voucher: Voucher) -> Integration | None:
    return Integration.objects.filter(company_id=voucher.company_id, system=voucher.system).first()


def voucher_dto(voucher: Voucher, *, integration: Integration | None = None, plan=None) -> VoucherDTO:
    """Our voucher as the connector sees it, on the date it will actually be posted."""
    plan = plan or plan_snapshot(voucher.company, voucher.system)
    policy = (integration.settings if integration else {}).get("locked_period_policy", "refuse")
    day, _problems = rules.posting_date(plan, voucher.date, policy=policy)
    description = voucher.description
    if day != voucher.date:
        # The original date stays visible in the target, in the voucher text.
        note = Msg(" (orig. date %(date)s)", date=voucher.date.isoformat())
        description = (description[: 200 - len(note)] + note)
    year = plan.financial_year_for(day)
    return VoucherDTO(
        reference=voucher.reference,
        kind=voucher.kind,
        date=day,
        description=description,
        series=voucher.series,
        currency=voucher.currency,
        rows=tuple(
            # A placeholder ('FEL') or a row still waiting for a mapping has no number: 0, which the
            # pre-flight check refuses before anything is sent (this keeps the admin's report readable).
            VoucherRowDTO(account=rules.account_key(r.account) or 0, debit=r.debit, credit=r.credit,
                          cost_centre=r.cost_centre,
                          project=r.project, text=r.text, vat_code=r.vat_code)
            for r in voucher.rows.all()
        ),
        financial_year=year[2] if year else "",
        extra=dict(voucher.extra or {}),
    )


def voucher_preflight(voucher: Voucher, *, integration: Integration | None = None, plan=None) -> list[rules.Problem]:
    """Every rule the voucher must pass before it may be sent, against the imported account plan."""
    integration = integration if integration is not None else voucher_integration(voucher)
    plan = plan or plan_snapshot(voucher.company, voucher.system)
    return preflight_problems(system=voucher.system, integration=integration, plan=plan, rows=list(voucher.rows.all()),
                              day=voucher.date, series=voucher.series, extra=voucher.extra)


def preflight_problems(*, system: str, integration: Integration | None, plan, rows, day, series: str,
                       extra: dict | None = None) -> list[rules.Problem]:
    """The pre-flight check of a voucher's content before it is stored (a bulk import checks what it holds
    in memory instead of reading every voucher back); ``voucher_preflight`` is this on a stored voucher."""
    connector = registry.connector_class(system)
    policy = (integration.settings if integration else {}).get("locked_period_policy", "refuse")
    problems = rules.preflight(
        plan, rows=rows, day=day, series=series,
        require_series=getattr(connector, "requires_series", False), locked_period_policy=policy,
    )
    if not getattr(connector, "reports_financial_years", True):
        # The target lists no financial years (Dinero): it refuses a date outside its years itself.
        problems = [p for p in problems if p.code != "no_financial_year"]
    problems += _blocking_problems(extra)
    return problems


def voucher_preflight_notes(voucher: Voucher, *, integration: Integration | None = None, plan=None,
                            dto: VoucherDTO | None = None) -> list[str]:
    """What will be changed on the way to the target — shown to staff, never a refusal (e.g. texts
    mapped into Fortnox's valid characters)."""
    notes_for = getattr(registry.connector_class(voucher.system), "preflight_notes", None)
    if notes_for is None:
        return []
    if dto is None:
        integration = integration if integration is not None else voucher_integration(voucher)
        dto = voucher_dto(voucher, integration=integration, plan=plan)
    return [str(note) for note in notes_for(dto)]


def _blocking_problems(extra: dict | None) -> list[rules.Problem]:
    """Problems a flow attached to the voucher before queueing it (e.g. 'no DKK amount yet')."""
    return [rules.Problem(code, restored(message)) for code, message in (extra or {}).get("_blocking", [])]


def problems_text(problems: list[rules.Problem]) -> str:
    return Msg.join("\n", [str(p) for p in problems])


def preflight_fields(voucher: Voucher, problems: list[rules.Problem]) -> list[str]:
    """Keep the pre-flight result on the voucher (shown from import on, counted on the overview).

    Only a source value without a mapping is not a refusal: ``preflight_ok`` stays None (the voucher waits
    for the mapping, and the overview counts it there)."""
    values = preflight_values(problems)
    for name, value in values.items():
        setattr(voucher, name, value)
    return list(values)


def preflight_values(problems: list[rules.Problem]) -> dict:
    """The voucher fields that keep a pre-flight result (see ``preflight_fields``)."""
    return {"preflight_ok": True if not problems else (None if only_unmapped(problems) else False),
            "preflight_problems": [{"code": p.code, "text": stored(str(p))} for p in problems]}


# --- queueing ---------------------------------------------------------------------------------


@dataclass
class QueueResult:
    queued: int = 0
    failed: int = 0
    skipped: int = 0
    awaiting_authorisation: int = 0
    awaiting_mapping: int = 0


def only_unmapped(problems: list[rules.Problem]) -> bool:
    """Nothing is wrong but a source value without a mapping: the voucher waits instead of failing."""
    return bool(problems) and all(p.code == "unmapped" for p in problems)


def voucher_wait_for_mapping(voucher: Voucher, problems: list[rules.Problem], actor: Actor) -> None:
    text = problems_text(problems)
    checked = preflight_fields(voucher, problems)
    if voucher.state != S.AWAITING_MAPPING:
        voucher_transition(voucher=voucher, to=S.AWAITING_MAPPING, actor=actor,
                           message=Msg("Waits for a mapping: %(reasons)s", reasons=text),
                           last_error=text, last_error_code="unmapped", next_attempt_at=None,
                           **{n: getattr(voucher, n) for n in checked})
    elif voucher.last_error != english(text):
        fields = set_text(voucher, "last_error", text)
        voucher.last_error_code = "unmapped"
        voucher.save(update_fields=[*fields, *checked, "last_error_code", "updated_at"])


def voucher_queue(*, voucher: Voucher, actor: Actor = None, kick: bool = True) -> list[rules.Problem]:
    """Check the voucher and put it in the queue; a voucher that breaks a rule fails with the reason,
    one that only lacks a mapping waits for it."""
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        if voucher.state not in QUEUEABLE:
            return []
        problems = voucher_preflight(voucher)
        checked = preflight_fields(voucher, problems)
        if only_unmapped(problems):
            voucher_wait_for_mapping(voucher, problems, actor)
            return problems
        if problems:
            if voucher.state != S.FAILED:
                voucher_transition(voucher=voucher, to=S.FAILED, actor=actor, outcome=AuditEvent.Outcome.ERROR,
                                   message=Msg("Not sent: %(reasons)s", reasons=problems_text(problems)),
                                   last_error=problems_text(problems), last_error_code=problems[0].code,
                                   **{name: getattr(voucher, name) for name in checked})
            else:
                fields = set_text(voucher, "last_error", problems_text(problems))
                voucher.last_error_code = problems[0].code
                voucher.save(update_fields=[*fields, *checked, "last_error_code", "updated_at"])
            return problems
        voucher_transition(voucher=voucher, to=S.QUEUED, actor=actor, next_attempt_at=None, last_error="",
                           last_error_code="", **{name: getattr(voucher, name) for name in checked})
        if kick:
            transaction.on_commit(lambda: _kick(voucher.system))
    return []


# Vouchers locked, checked and written together, each chunk in one short transaction: large enough that
# the statements per chunk are spread thin, small enough that the locks are brief and memory stays bounded.
QUEUE_CHUNK = 1000
# Distinct new values for one kind of change in a chunk up to which each gets its own UPDATE … WHERE id IN;
# beyond that (reasons that differ per voucher) one UPDATE by id is sent for all of them (executemany).
GROUPED_UPDATES = 8


def vouchers_queue(*, vouchers, actor: Actor = None, kick: bool = True) -> QueueResult:
    """``voucher_queue`` for many vouchers at once, with the same outcome for each — state, reasons,
    pre-flight result, its own ``state:X->Y`` audit event — but written a chunk at a time: one locked
    read of the chunk with its rows, the plan and integration read once per company and system, the
    changes in UPDATEs grouped by their values and the audit events in one bulk insert. One dispatcher
    kick per system once it is committed.

    ``vouchers`` may be Voucher objects, ids or a queryset; a queryset is read a chunk of ids at a time
    (tens of thousands are never held at once). Given objects get their new ``state``."""
    result = QueueResult()
    systems: set[str] = set()
    checks = _QueueChecks(actor)
    # English while the texts are made: they are stored as codes and English text, rendered once.
    with translation.override("en"):
        for chunk in _voucher_chunks(vouchers):
            with transaction.atomic():
                _queue_chunk(chunk, checks, result, systems)
    if kick:
        for system in sorted(systems):
            transaction.on_commit(lambda system=system: _kick(system))
    return result


def _voucher_chunks(vouchers) -> Iterator[list]:
    if isinstance(vouchers, QuerySet):
        ids = vouchers.prefetch_related(None).order_by("pk").values_list("pk", flat=True)
        if vouchers.query.is_sliced:  # a slice cannot be filtered again; it is bounded by its size
            ids = list(vouchers.values_list("pk", flat=True))
            for start in range(0, len(ids), QUEUE_CHUNK):
                yield ids[start:start + QUEUE_CHUNK]
            return
        # By id from the last one seen: queueing moves vouchers out of a filter by state without skipping any.
        last = None
        while page := list((ids if last is None else ids.filter(pk__gt=last))[:QUEUE_CHUNK]):
            yield page
            if len(page) < QUEUE_CHUNK:
                return
            last = page[-1]
        return
    items = iter(vouchers)
    while chunk := list(itertools.islice(items, QUEUE_CHUNK)):
        yield chunk


class _QueueChecks:
    """What the pre-flight check reads, once per (company, system) for the whole call (a plan imported
    meanwhile is seen by the sending path, which checks again) and the actor as the fields keep it."""

    def __init__(self, actor: Actor):
        self.actor = actor
        self.user, _label = actor_parts(actor)
        self.integrations: dict[tuple[int, str], Integration | None] = {}
        self.plans: dict[tuple[int, str], object] = {}
        self._moved: dict[tuple[str, str], Msg] = {}

    def load(self, pairs: set[tuple[int, str]]) -> None:
        missing = pairs - self.plans.keys()
        if not missing:
            return
        found = {(i.company_id, i.system): i for i in Integration.objects.filter(
            company_id__in={company for company, _system in missing}, system__in={system for _c, system in missing})}
        for company_id, system in missing:
            self.integrations[company_id, system] = found.get((company_id, system))
            self.plans[company_id, system] = plan_snapshot(company_id, system)

    def problems(self, voucher: SimpleNamespace, rows: list) -> list[rules.Problem]:
        pair = (voucher.company_id, voucher.system)
        return preflight_problems(system=voucher.system, integration=self.integrations[pair], plan=self.plans[pair],
                                  rows=rows, day=voucher.date, series=voucher.series, extra=voucher.extra)

    def moved(self, before: str, to: str) -> Msg:
        """The audit message of a plain move, made once per pair of states (a Msg costs more than its check)."""
        key = (before, to)
        if key not in self._moved:
            self._moved[key] = transition_message(before, to)
        return self._moved[key]


class _RowValues:
    """A voucher row as the pre-flight rules read it: a model instance per row costs more than the check."""

    __slots__ = ("account", "debit", "credit", "cost_centre", "source")
    unmapped_keys = VoucherRow.unmapped_keys

    def __init__(self, account, debit, credit, cost_centre, source):
        self.account, self.debit, self.credit, self.cost_centre, self.source = account, debit, credit, cost_centre, source


# What the check and the changes read of a locked voucher (the rest is never loaded; nor is a model instance
# built for each: the check and ``set_text`` need only the values).
_QUEUE_READS = ("pk", "company_id", "system", "state", "date", "series", "extra", "last_error", "coded_texts",
                "requested_by_id")


def _frozen(value):
    """A field's new value as part of a grouping key (JSON values as their text)."""
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value


def _queue_chunk(chunk: list, checks: _QueueChecks, result: QueueResult, systems: set[str]) -> None:
    given: dict[int, list[Voucher]] = {}
    ids = []
    for item in chunk:
        pk = item.pk if isinstance(item, Voucher) else int(item)
        if isinstance(item, Voucher):
            given.setdefault(pk, []).append(item)
        ids.append(pk)
    locked = {values[0]: SimpleNamespace(**dict(zip(_QUEUE_READS, values, strict=True)))
              for values in Voucher.objects.select_for_update().filter(pk__in=set(ids), state__in=QUEUEABLE)
              .order_by("pk").values_list(*_QUEUE_READS)}
    rows: dict[int, list[_RowValues]] = {pk: [] for pk in locked}
    # In the rows' own order (voucher, position, id), as voucher.rows.all() gives them: problems name row numbers.
    for voucher_id, *values in VoucherRow.objects.filter(voucher_id__in=list(locked)).order_by(
            "voucher_id", "position", "id").values_list("voucher_id", "account", "debit", "credit", "cost_centre",
                                                        "source"):
        rows[voucher_id].append(_RowValues(*values))
    checks.load({(voucher.company_id, voucher.system) for voucher in locked.values()})
    now = timezone.now()
    writes: dict[tuple[str, ...], dict[str, tuple[dict, list[int]]]] = {}
    events = []
    done = set()
    for pk in ids:
        voucher = locked.get(pk)
        if voucher is None or pk in done:  # gone, not queueable (under way, posted …) or named twice
            result.skipped += 1
            continue
        done.add(pk)
        before = voucher.state
        change, event = _queue_change(voucher, rows[pk], checks, now, result, systems)
        for other in given.get(pk, ()):
            other.state = voucher.state
        if change is None:
            continue
        names = tuple(sorted(change))
        values = {name: getattr(voucher, name) for name in names}
        key = tuple(_frozen(value) for value in values.values())
        writes.setdefault(names, {}).setdefault(key, (values, []))[1].append(pk)
        if event is not None:
            events.append((voucher, f"state:{before}->{voucher.state}", *event))
    for names, groups in writes.items():
        if len(groups) <= GROUPED_UPDATES:
            for values, group_ids in groups.values():
                Voucher.objects.filter(pk__in=group_ids).update(**values, updated_at=now)
        else:
            rows_update(Voucher, [{**values, "pk": pk} for values, group_ids in groups.values() for pk in group_ids],
                        fields=names)
    audit_record_vouchers(actor=checks.actor, events=events)


def _queue_change(voucher: SimpleNamespace, rows: list, checks: _QueueChecks, now, result: QueueResult, systems: set[str]):
    """What ``voucher_queue`` does to one locked voucher, applied to it in memory: the names of the fields
    to write (None: nothing) and the audit event's (outcome, message) when its state changes."""
    problems = checks.problems(voucher, rows)
    checked = preflight_values(problems)
    if only_unmapped(problems):
        result.awaiting_mapping += 1
        text = problems_text(problems)
        fields = {"last_error": text, "last_error_code": "unmapped", **checked}
        if voucher.state != S.AWAITING_MAPPING:
            return _apply(voucher, S.AWAITING_MAPPING, {**fields, "next_attempt_at": None}), (
                AuditEvent.Outcome.INFO, Msg("Waits for a mapping: %(reasons)s", reasons=text))
        if voucher.last_error != english(text):
            return _apply(voucher, None, fields), None
        return None, None
    if problems:
        result.failed += 1
        text = problems_text(problems)
        fields = {"last_error": text, "last_error_code": problems[0].code, **checked}
        if voucher.state != S.FAILED:
            return _apply(voucher, S.FAILED, fields), (
                AuditEvent.Outcome.ERROR, Msg("Not sent: %(reasons)s", reasons=problems_text(problems)))
        return _apply(voucher, None, fields), None
    result.queued += 1
    systems.add(voucher.system)
    before = voucher.state
    # As voucher_transition does on the way into the queue: when, and for whom (the worker acts for them).
    fields = {"next_attempt_at": None, "last_error": "", "last_error_code": "", **checked, "queued_at": now}
    if checks.user is not None:
        fields["requested_by_id"] = checks.user.pk
    return _apply(voucher, S.QUEUED, fields), (AuditEvent.Outcome.INFO, checks.moved(before, S.QUEUED))


def _apply(voucher: SimpleNamespace, to: str | None, fields: dict) -> list[str]:
    """Set ``fields`` (coded texts as ``set_text`` keeps them) and the state ``to`` if it changes, on the
    voucher in memory; returns the fields to write."""
    changed = []
    if to is not None:
        transition_check(voucher.state, to)
        voucher.state = to
        changed.append("state")
    changed += voucher_set_fields(voucher, fields)
    return list(dict.fromkeys(changed))


def _kick(system: str | None = None) -> None:
    from .dispatchers import kick_dispatch

    kick_dispatch()


# --- sending ----------------------------------------------------------------------------------


def voucher_mark_changed(*, voucher: Voucher, actor: Actor = None) -> bool:
    """Call after editing a posted voucher's content: it needs an update in the target if it changed."""
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        changed = voucher_fingerprint(voucher) != voucher.posted_fingerprint
        if voucher.state == S.POSTED and changed:
            voucher_transition(voucher=voucher, to=S.NEEDS_UPDATE, actor=actor,
                               message=Msg("Changed after posting; the target's copy will be updated."))
            return True
        if voucher.state == S.NEEDS_UPDATE and not changed:
            voucher_transition(voucher=voucher, to=S.POSTED, actor=actor,
                               message=Msg("The change was undone; the target's copy is up to date again."))
        return False


def voucher_reset_to_draft(*, voucher: Voucher, actor: Actor = None) -> None:
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
        voucher_transition(voucher=voucher, to=S.DRAFT, actor=actor, message=Msg("Back to draft for editing."))

