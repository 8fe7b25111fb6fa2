"""The voucher's life: its state machine, the pre-flight check and the queue. The path to the target
(claim → call → record) and the dispatchers are in ``sending``."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from integrations import registry
from integrations.base import (
    VoucherDTO,
    VoucherRowDTO,
)
from integrations.models import Integration
from wording import Msg, english, restored, set_text, stored

from .. import rules
from ..models import AuditEvent, Voucher, VoucherState
from ..selectors.plans import plan_snapshot
from .audit import Actor, actor_parts, audit_record

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
    S.OPTED_OUT: frozenset({S.DRAFT, S.QUEUED, S.AWAITING_MAPPING}),
    S.AWAITING_MAPPING: frozenset({S.QUEUED, S.DRAFT, S.FAILED, S.OPTED_OUT, S.HANDLED_OUTSIDE}),
    # Staff booked it by hand (with a note); it can be taken back to draft if that was a mistake.
    S.HANDLED_OUTSIDE: frozenset({S.DRAFT}),
}
# Sending is attempted from these states (a waiting voucher goes on once its values are mapped).
QUEUEABLE = (S.DRAFT, S.FAILED, S.OPTED_OUT, S.NEEDS_UPDATE, S.AWAITING_AUTHORISATION, S.AWAITING_MAPPING)



class IllegalTransition(Exception):
    pass


def voucher_transition(*, voucher: Voucher, to: str, actor: Actor = None, message: str = "",
                       outcome: str = AuditEvent.Outcome.INFO, **fields) -> Voucher:
    """Move a voucher to ``to`` (it must be locked by the caller) and write the audit event.

    ``last_error`` (like ``message``) may be a ``wording.Msg``: it is kept as a code and shown in
    the reader's language.
    """
    current = voucher.state
    if to not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(
            Msg("A voucher cannot go from %(from)s to %(to)s.",
                **{"from": S(current).label, "to": S(to).label if to in S.values else to})
        )
    voucher.state = to
    changed = ["state", "updated_at"]
    if to == S.QUEUED and current != S.SENDING:  # a retry keeps its place in the queue
        fields.setdefault("queued_at", timezone.now())
        user, _label = actor_parts(actor)
        if user is not None:
            fields.setdefault("requested_by", user)
    for name, value in fields.items():
        if name in Voucher.coded_text_fields:
            changed += set_text(voucher, name, value)
        else:
            setattr(voucher, name, value)
            changed.append(name)
    if voucher.pk is None:
        voucher.save()
    else:
        voucher.save(update_fields=list(dict.fromkeys(changed)))
    audit_record(
        action=f"state:{current}->{to}", outcome=outcome, actor=actor, voucher=voucher,
        message=message or Msg("%(from)s → %(to)s", **{"from": S(current).label, "to": S(to).label}),
    )
    return voucher


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


def vouchers_queue(*, vouchers, actor: Actor = None) -> QueueResult:
    result = QueueResult()
    systems = set()
    for voucher in vouchers:
        before = voucher.state
        problems = voucher_queue(voucher=voucher, actor=actor, kick=False)
        voucher.refresh_from_db(fields=["state"])
        if problems and voucher.state == S.AWAITING_MAPPING:
            result.awaiting_mapping += 1
        elif problems:
            result.failed += 1
        elif voucher.state == S.QUEUED and before != S.QUEUED:
            result.queued += 1
            systems.add(voucher.system)
        else:
            result.skipped += 1
    for system in systems:
        transaction.on_commit(lambda system=system: _kick(system))
    return result


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

