"""What a source value means in the books: the one resolution of (company, target system, kind,
source key) → account, and optionally cost centre, project, VAT code and voucher series. The
import previews, the pre-flight check and the flows all ask here.

Precedence, the same for every flow (README, "Account mappings"):

1. A value the source gives *explicitly for the target* wins over any mapping: a journal CSV's
   ``fortnox_account``, its ``cost_centre`` and ``project`` (the property guide keeps the cost-centre
   numbers the same in both systems), an expense line's own VAT code. A value in the source's own
   words (a category, an add-on code, the source's own account number) is never explicit.
2. The mapping row for the exact key (case and extra spaces ignored). A row that carries several
   source values tries the most specific first: add-on code, then category, then the source's account.
3. The key itself, when it is an account of the target's plan (identity) — for the source's own
   account and an expense category only. A journal row that already names a Fortnox account and
   has no mapping passes as before; the rules then check that account like any other.
4. The kind's default row (key ``*``): a specific key always wins over a default.
5. Otherwise the value is unmapped: the voucher or document waits with the reason, and the value
   is listed on the unmapped-values page until someone maps it.

``mapping_snapshot`` reads a company's rows for one target system in one query and answers every
lookup of an import or a batch from memory (the plan snapshot it uses is cached as well).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import rules
from ..models import DEFAULT_KEY, KINDS_WITHOUT_ACCOUNT, AccountMapping, MappingKind, VatCode, VoucherRow, VoucherState
from .plans import plan_snapshot

K = MappingKind
# Kinds whose key may itself be an account of the target (step 3 of the precedence).
IDENTITY_KINDS = frozenset({K.LEDGER_ACCOUNT, K.EXPENSE_CATEGORY})
# Vouchers in these states have been, or are being, sent: nothing here touches them.
SENT_STATES = frozenset({VoucherState.POSTED, VoucherState.SENDING, VoucherState.NEEDS_UPDATE})


def normalise_key(key) -> str:
    """How keys are compared: surrounding and repeated spaces and letter case do not matter."""
    return " ".join(str(key if key is not None else "").split()).casefold()


@dataclass(frozen=True)
class MappingRow:
    pk: int | None
    kind: str
    key: str
    account: int | None
    cost_centre: str = ""
    project: str = ""
    vat_code: str = ""
    series: str = ""


@dataclass(frozen=True)
class RowSource:
    """What the source said about one voucher row; kept on the row (``VoucherRow.source``)."""

    keys: tuple[tuple[str, str], ...] = ()  # account candidates (kind, key), most specific first
    account: str = ""  # the target account, only when the source names it explicitly
    cost_centre: str = ""  # explicit target cost centre
    cost_centre_keys: tuple[tuple[str, str], ...] = ()  # e.g. (("property", "Storgatan 1"),)
    project: str = ""
    vat_code: str = ""

    def as_json(self) -> dict:
        data = {"keys": [list(pair) for pair in self.keys]}
        for name in ("account", "cost_centre", "project", "vat_code"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        if self.cost_centre_keys:
            data["cost_centre_keys"] = [list(pair) for pair in self.cost_centre_keys]
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> RowSource | None:
        if not data or not ("keys" in data or "account" in data):
            return None
        return cls(
            keys=tuple((str(k), str(v)) for k, v in data.get("keys") or ()),
            account=str(data.get("account") or ""), cost_centre=str(data.get("cost_centre") or ""),
            cost_centre_keys=tuple((str(k), str(v)) for k, v in data.get("cost_centre_keys") or ()),
            project=str(data.get("project") or ""), vat_code=str(data.get("vat_code") or ""),
        )


@dataclass(frozen=True)
class RowResolution:
    """The row as it will be posted, and how each value was found."""

    account: int | None
    cost_centre: str = ""
    project: str = ""
    vat_code: str = ""
    kind: str = ""  # the kind of the key that decided the account ("" when the source named it)
    key: str = ""
    via: str = "none"  # explicit | mapping | identity | default | unmapped | none (no source value)
    unmapped: tuple[tuple[str, str], ...] = ()

    @property
    def complete(self) -> bool:
        return not self.unmapped

    def row_fields(self, source: RowSource) -> dict:
        """The ``VoucherRow`` fields for this resolution (what is posted, and what the source said)."""
        data = source.as_json()
        if self.unmapped:
            data["unmapped"] = [list(pair) for pair in self.unmapped]
        data["via"] = self.via
        return {
            "account": str(self.account) if self.account is not None else "",
            "cost_centre": self.cost_centre, "project": self.project, "vat_code": self.vat_code,
            "source_kind": self.kind, "source_key": self.key[:100], "source": data,
            "awaits_mapping": bool(self.unmapped),
        }


class MappingSnapshot:
    """One company's mapping rows for one target system, with the plan they point into."""

    def __init__(self, *, system: str, plan: rules.PlanSnapshot, rows: list[MappingRow]):
        self.system = system
        self.plan = plan
        self._rows: dict[tuple[str, str], MappingRow] = {}
        for row in sorted(rows, key=lambda r: (r.pk or 0)):
            # Keys differing only in case: the one spelled exactly as the source wins (see ``exact``).
            self._rows.setdefault((row.kind, normalise_key(row.key)), row)
        self._exact = {(row.kind, row.key): row for row in rows}

    def exact(self, kind: str, key: str) -> MappingRow | None:
        """The row for this very key (not the kind's default)."""
        if not str(key or "").strip() or normalise_key(key) == DEFAULT_KEY:
            return None
        return self._exact.get((kind, key)) or self._rows.get((kind, normalise_key(key)))

    def default(self, kind: str) -> MappingRow | None:
        return self._rows.get((kind, DEFAULT_KEY))

    def rows_of(self, kind: str) -> dict[str, MappingRow]:
        return {row.key: row for (row_kind, _key), row in self._rows.items() if row_kind == kind}

    def _identity(self, kind: str, key: str) -> int | None:
        if kind not in IDENTITY_KINDS:
            return None
        number = rules.account_key(key)
        if number is None:
            return None
        if not self.plan.imported:
            return number  # nothing to compare with yet: the pre-flight check says to import the plan
        return number if number in self.plan.accounts else None

    def account_for(self, kind: str, key: str = DEFAULT_KEY) -> int | None:
        """One key's account: its own row, the key itself where the kind allows it, the default row."""
        resolution = self.resolve_row(RowSource(keys=((kind, key),)))
        return resolution.account

    def row_for(self, kind: str, key: str = DEFAULT_KEY) -> MappingRow | None:
        return self.exact(kind, key) or self.default(kind)

    def series_for(self, owner: str) -> str:
        row = self.row_for(K.OWNER, owner) if owner else None
        return row.series if row else ""

    def resolve_row(self, source: RowSource) -> RowResolution:
        """Apply the precedence (module docstring) to one row's source values."""
        unmapped: list[tuple[str, str]] = []
        chosen: MappingRow | None = None
        account: int | None = None
        kind = key = ""
        via = "none"
        if source.account:
            account, via = rules.account_key(source.account), "explicit"
        elif source.keys:
            for candidate_kind, candidate_key in source.keys:
                chosen = self.exact(candidate_kind, candidate_key)
                if chosen is not None:
                    kind, key, via, account = candidate_kind, candidate_key, "mapping", chosen.account
                    break
            if via == "none":
                for candidate_kind, candidate_key in source.keys:
                    account = self._identity(candidate_kind, candidate_key)
                    if account is not None:
                        kind, key, via = candidate_kind, candidate_key, "identity"
                        break
            if via == "none":
                for candidate_kind, candidate_key in source.keys:
                    chosen = self.default(candidate_kind)
                    if chosen is not None:
                        kind, key, via, account = candidate_kind, candidate_key, "default", chosen.account
                        break
            if via == "none":
                kind, key, via = source.keys[0][0], source.keys[0][1], "unmapped"
                unmapped.extend(source.keys)

        cost_centre = source.cost_centre
        if not cost_centre:
            for cc_kind, cc_key in source.cost_centre_keys:
                row = self.row_for(cc_kind, cc_key)
                if row is not None and row.cost_centre:
                    cost_centre = row.cost_centre
                    break
                unmapped.append((cc_kind, cc_key))
        if not cost_centre and chosen is not None:
            cost_centre = chosen.cost_centre
        project = source.project or (chosen.project if chosen else "")
        vat_code = source.vat_code or (chosen.vat_code if chosen else "")
        return RowResolution(account=account, cost_centre=cost_centre, project=project, vat_code=vat_code,
                             kind=kind, key=key, via=via, unmapped=tuple(unmapped))


def mapping_snapshot(company, system: str, *, plan: rules.PlanSnapshot | None = None) -> MappingSnapshot:
    """Every mapping row of ``company`` for ``system`` in one query, with the (cached) plan snapshot."""
    rows = [
        MappingRow(pk=pk, kind=kind, key=key, account=account, cost_centre=cost_centre, project=project,
                   vat_code=vat_code, series=series)
        for pk, kind, key, account, cost_centre, project, vat_code, series in AccountMapping.objects.filter(
            company=company, system=system).values_list(
            "pk", "kind", "key", "account_number", "cost_centre", "project", "vat_code", "series")
    ]
    return MappingSnapshot(system=system, plan=plan or plan_snapshot(company, system), rows=rows)


def row_source_label(row) -> str:
    """What the source said about a voucher row, in words ("Category “Hyra” → 3011 (mapping)")."""
    if not getattr(row, "source_kind", "") and not (row.source or {}).get("account"):
        return ""
    via = (row.source or {}).get("via", "")
    label = K(row.source_kind).label if row.source_kind in K.values else row.source_kind
    if via == "manual":
        said = f" ({label} “{row.source_key}”)" if row.source_key else ""
        return _("Entered by hand: %(account)s%(said)s") % {"account": row.account, "said": said}
    if via == "explicit":
        return _("Given by the source as %(account)s") % {"account": row.account}
    if via == "unmapped" or getattr(row, "awaits_mapping", False):
        missing = ", ".join(f"{K(k).label if k in K.values else k} “{v}”" for k, v in row.unmapped_keys)
        return _("%(what)s: no mapping yet") % {"what": missing or f"{label} “{row.source_key}”"}
    how = {"mapping": _("mapping"), "identity": _("the same account"), "default": _("default mapping")}.get(via, via)
    return _("%(kind)s “%(key)s” → %(account)s (%(how)s)") % {
        "kind": label, "key": row.source_key, "account": row.account, "how": how}


# --- checking a mapping row ---------------------------------------------------------------------


def mapping_problems(*, company, system: str, kind: str, key: str, account_number=None, cost_centre: str = "",
                     project: str = "", vat_code: str = "", series: str = "", plan=None,
                     vat_codes: set[str] | None = None, exclude_pk: int | None = None,
                     stored_keys: dict[str, list[tuple[int, str]]] | None = None) -> dict[str, str]:
    """Everything wrong with one mapping row (per field); empty when it may be saved. ``exclude_pk`` is
    the row being changed (it may keep or respell its own key). ``stored_keys`` (an import's snapshot:
    the stored (pk, key) pairs of this company, system and kind by normalised key) spares the query."""
    errors: dict[str, str] = {}
    plan = plan or plan_snapshot(company, system)
    if not str(key or "").strip():
        errors["key"] = _("The source value is missing (use * for the kind's default).")
    else:
        if stored_keys is None:
            same = AccountMapping.objects.filter(company=company, system=system, kind=kind).exclude(pk=exclude_pk)
            other = next((m.key for m in same.only("key") if normalise_key(m.key) == normalise_key(key)), None)
        else:
            other = next((stored for pk, stored in stored_keys.get(normalise_key(key), ()) if pk != exclude_pk),
                         None)
        if other is not None:
            errors["key"] = _("“%(key)s” is already mapped as “%(other)s”; keys differing only in case or spaces "
                              "are the same source value.") % {"key": key, "other": other}
    wanted = KEYS_OF.get(kind)
    if wanted is not None and "key" not in errors and not wanted(normalise_key(key)):
        errors["key"] = KEY_HINTS[kind]
    if kind in KINDS_WITHOUT_ACCOUNT:
        if account_number not in (None, ""):
            errors["account_number"] = _("This kind (%(kind)s) gives no account; leave the account empty.") % {
                "kind": K(kind).label}
        if kind == K.PROPERTY and not cost_centre:
            errors["cost_centre"] = _("A property maps to a cost centre: give its code.")
        if kind == K.OWNER and not series:
            errors["series"] = _("An owner maps to a voucher series: give its code.")
    elif account_number in (None, ""):
        errors["account_number"] = _("Give the account in %(system)s.") % {"system": system}
    elif not plan.imported:
        errors["account_number"] = _("The %(system)s account plan of %(company)s is empty; import it first.") % {
            "system": system, "company": company}
    else:
        problems = rules.check_mapping_account(plan, kind, int(account_number))
        if problems:
            errors["account_number"] = "; ".join(str(p.message) for p in problems)
    if cost_centre and plan.imported and cost_centre not in plan.cost_centres:
        errors["cost_centre"] = _("Cost centre %(code)s does not exist.") % {"code": cost_centre}
    if series and plan.imported:
        found = rules.check_series(plan, series)
        if found:
            errors["series"] = str(found[0].message)
    if vat_code:
        codes = vat_codes if vat_codes is not None else plan_vat_codes(company, system)
        if codes and vat_code not in codes:
            errors["vat_code"] = _("%(system)s has no VAT code %(code)s.") % {"system": system, "code": vat_code}
    return errors


def _is_rate(key: str) -> bool:
    try:
        return key == DEFAULT_KEY or 0 <= float(key.replace(",", ".")) < 100
    except ValueError:
        return False


# The card-payment kinds' keys are Kontera's own words: a region or a VAT rate, or the default.
KEYS_OF = {
    K.SALES_REGION: lambda key: key in ("se", "eu", "world", "eu_b2b", DEFAULT_KEY),
    K.OUTPUT_VAT: _is_rate,
    K.FEE: lambda key: key == DEFAULT_KEY,
    K.RECEIVABLE: lambda key: key == DEFAULT_KEY,
    K.BANK: lambda key: key == DEFAULT_KEY,
}
KEY_HINTS = {
    K.SALES_REGION: gettext_lazy("A sales region is se, eu, world or eu_b2b (or * for all)."),
    K.OUTPUT_VAT: gettext_lazy("An output VAT key is the rate in per cent, e.g. 25, 12 or 6."),
    K.FEE: gettext_lazy("This kind has one row, with the key *."),
    K.RECEIVABLE: gettext_lazy("This kind has one row, with the key *."),
    K.BANK: gettext_lazy("This kind has one row, with the key *."),
}


def plan_vat_codes(company, system: str) -> set[str]:
    return set(VatCode.objects.filter(plan__company=company, plan__system=system).values_list("code", flat=True))


def mapping_account_choices(plan: rules.PlanSnapshot, kind: str) -> list[rules.AccountInfo]:
    """The accounts a row of ``kind`` may point at: active, of the right kind (P&L only for a Dinero category)."""
    return [account for number, account in sorted(plan.accounts.items())
            if not rules.check_mapping_account(plan, kind, number)]


# BAS defaults for the card-payment kinds, offered as suggestions (see the Swedish bookkeeping notes).
BAS_SUGGESTIONS = {
    (K.SALES_REGION, "se"): 3001, (K.SALES_REGION, "eu"): 3106, (K.SALES_REGION, "world"): 3105,
    (K.SALES_REGION, "eu_b2b"): 3108, (K.OUTPUT_VAT, "25"): 2611, (K.OUTPUT_VAT, "12"): 2621,
    (K.OUTPUT_VAT, "6"): 2631, (K.FEE, DEFAULT_KEY): 6040, (K.RECEIVABLE, DEFAULT_KEY): 1580,
    (K.BANK, DEFAULT_KEY): 1930,
}


@dataclass(frozen=True)
class Suggestion:
    account: int
    name: str
    reason: str


def mapping_suggestions(snapshot: MappingSnapshot, kind: str, key: str) -> list[Suggestion]:
    """Accounts worth proposing for an unmapped value: the value itself when it is a valid account,
    an account whose name matches it, the BAS account for a card-payment key."""
    plan = snapshot.plan
    allowed = {account.number: account for account in mapping_account_choices(plan, kind)}
    found: dict[int, Suggestion] = {}
    number = rules.account_key(key)
    if number in allowed:
        found[number] = Suggestion(number, allowed[number].name, _("the value is this account's number"))
    wanted = normalise_key(key)
    names = {normalise_key(account.name): account for account in allowed.values()}
    if wanted in names:
        account = names[wanted]
        found.setdefault(account.number, Suggestion(account.number, account.name, _("same name")))
    if len(wanted) >= 4:
        for name, account in names.items():
            if len(found) < 5 and wanted in name:
                found.setdefault(account.number, Suggestion(account.number, account.name, _("the name contains it")))
    for close in difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.75):
        account = names[close]
        found.setdefault(account.number, Suggestion(account.number, account.name, _("similar name")))
    bas = BAS_SUGGESTIONS.get((kind, normalise_key(key)))
    if bas in allowed:
        found.setdefault(bas, Suggestion(bas, allowed[bas].name, _("BAS account")))
    return list(found.values())


# --- the flows that use mappings, and what waits on them ----------------------------------------


@dataclass
class WaitingItem:
    """A voucher, document or payout that waits for a mapping."""

    kind: str  # "voucher" or what a flow names it ("payout" …)
    pk: int
    label: str
    state: str = ""
    url: str = ""


@dataclass
class Gap:
    """One source value seen without a mapping, with how often and what waits on it."""

    system: str
    kind: str
    key: str
    occurrences: int = 0
    items: list[WaitingItem] = field(default_factory=list)

    @property
    def kind_label(self) -> str:
        return str(K(self.kind).label) if self.kind in K.values else self.kind


@dataclass(frozen=True)
class MappedFlow:
    """A flow that takes its accounts from the mappings (registered by the flow's app)."""

    key: str
    label: str
    system: str
    kinds: tuple[str, ...]
    source_systems: tuple[str, ...] = ()  # its vouchers: those of these source systems
    gaps: Callable | None = None  # company -> list[Gap] it knows of beyond voucher rows (e.g. payouts)
    reevaluate: Callable | None = None  # (company=, actor=) -> dict; re-evaluates what is not sent yet
    item_url: Callable | None = None  # WaitingItem -> URL of what staff know it as (e.g. the document)


FLOWS: dict[str, MappedFlow] = {}


def register_mapped_flow(flow: MappedFlow) -> None:
    FLOWS[flow.key] = flow


def flow_for_source(source_system: str) -> MappedFlow | None:
    return next((flow for flow in FLOWS.values() if source_system in flow.source_systems), None)


def unmapped_voucher_gaps(*, company, source_systems=None) -> list[Gap]:
    """Source values without a mapping on vouchers not sent yet, with the vouchers waiting on them."""
    rows = VoucherRow.objects.filter(voucher__company=company, awaits_mapping=True).exclude(
        voucher__state__in=SENT_STATES).exclude(Q(voucher__remote_id__gt=""))
    if source_systems is not None:
        rows = rows.filter(voucher__source_system__in=list(source_systems))
    gaps: dict[tuple[str, str, str], Gap] = {}
    for voucher_id, system, reference, state, source in rows.values_list(
            "voucher_id", "voucher__system", "voucher__source_reference", "voucher__state", "source").order_by(
            "voucher__date", "voucher_id", "position"):
        for kind, key in (source or {}).get("unmapped", []):
            gap = gaps.setdefault((system, kind, normalise_key(key)), Gap(system=system, kind=kind, key=key))
            gap.occurrences += 1
            if not any(item.pk == voucher_id for item in gap.items):
                gap.items.append(WaitingItem("voucher", voucher_id, reference, VoucherState(state).label))
    return sorted(gaps.values(), key=lambda g: (g.kind, normalise_key(g.key)))


def unmapped_gaps(*, company, flow: MappedFlow) -> list[Gap]:
    """Everything of one flow that waits for a mapping, per source value."""
    gaps = unmapped_voucher_gaps(company=company, source_systems=flow.source_systems) if flow.source_systems else []
    if flow.gaps is not None:
        by_key = {(g.system, g.kind, normalise_key(g.key)): g for g in gaps}
        for extra in flow.gaps(company):
            known = by_key.get((extra.system, extra.kind, normalise_key(extra.key)))
            if known is None:
                by_key[(extra.system, extra.kind, normalise_key(extra.key))] = extra
                gaps.append(extra)
            else:
                known.occurrences += extra.occurrences
                known.items.extend(extra.items)
    return sorted(gaps, key=lambda g: (g.kind, normalise_key(g.key)))
