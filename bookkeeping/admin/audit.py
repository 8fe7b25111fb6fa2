"""The audit trail in words: local time, what happened in human terms, who caused it (also when the worker
carried it out), the message in the reader's language, links instead of ids."""

from __future__ import annotations

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from rangefilter.filters import DateRangeFilterBuilder

from integrations.models import IntegrationStatus
from wording import text_of

from ..models import AuditEvent, VoucherState
from ..services.audit_export import audit_csv_lines, audit_events_for_export
from .base import CompanyScopedAdmin, ReadOnlyAdminMixin
from .lists import CompanyFilter, LargeListMixin

# What an action code means to an accountant; state changes are read from their target state.
ACTIONS = {
    "company:created": _("Company added"),
    "dinero:configured": _("Dinero settings chosen"),
    "dinero:connected": _("Connected to Dinero"),
    "dinero:created": _("Dinero integration created"),
    "dinero:authorise_started": _("Sent to Visma Connect to approve the connection"),
    "dinero:authorise_failed": _("Visma Connect connection failed"),
    "dinero:authorise_refused": _("Visma Connect did not grant access"),
    "dinero:authorised": _("Connection authorised"),
    "dinero:cvr_differs": _("Connected although the CVR differs (confirmed by staff)"),
    "dinero:organisation_chosen": _("Dinero organisation chosen"),
    "dinero:finished": _("Dinero setup finished"),
    "dinero:other_organisation": _("Connected to another organisation (confirmed by staff)"),
    "dinero:wrong_company": _("Dinero connection refused: another organisation"),
    "expense:import": _("Expense documents imported"),
    "expense:created": _("Expense document imported"),
    "expense:updated": _("Expense document changed by an import"),
    "expense:version": _("Document changed"),
    "expense:voucher_created": _("Voucher made from a document"),
    "fortnox:authorise_failed": _("Fortnox connection failed"),
    "fortnox:authorise_refused": _("Fortnox did not grant access"),
    "fortnox:authorise_started": _("Sent to Fortnox to approve the connection"),
    "fortnox:wrong_company": _("Fortnox connection refused: another company"),
    "fortnox:other_company": _("Connected to another company (confirmed by staff)"),
    "fortnox:other_organisation": _("Connected to another company (confirmed by staff)"),
    "fortnox:authorised": _("Connection authorised"),
    "integration:authorised": _("Connection authorised"),
    "integration:needs_reauthorisation": _("Connection lost: needs re-authorisation"),
    "journals:import": _("Journals imported"),
    "mapping:created": _("Account mapping added"),
    "mapping:changed": _("Account mapping changed"),
    "mapping:deleted": _("Account mapping deleted"),
    "mapping:applied": _("Resolved again after a mapping change"),
    "master_data:import": _("Master data imported"),
    "netseasy:confirmed": _("Automatic booking started (OK)"),
    "netseasy:key_check": _("Secret key checked with Nets Easy"),
    "netseasy:key_refused": _("Nets Easy refused the secret key"),
    "netseasy:payout_booked": _("Payout booked"),
    "netseasy:payout_handled_by_hand": _("Payout marked as booked by hand"),
    "netseasy:problem_report": _("Problem reported to support"),
    "netseasy:settings_saved": _("Nets Easy settings saved"),
    "netseasy:sync": _("Nets Easy payouts read"),
    "netseasy:test_voucher_mail": _("Test voucher e-mail sent"),
    "preflight:note": _("Text adjusted for the target"),
    "preflight:passes": _("Pre-flight check passes now"),
    "remote:lookup": _("Looked up in the target after an unknown outcome"),
    "remote:step": _("Step in the target"),
    "restore:outcome_unknown": _("Restored from a backup: looked up before any post"),
    "voucher:waiting": _("Waiting: the connection cannot be used"),
    "workflow_rule:created": _("Workflow rule added"),
    "workflow_rule:changed": _("Workflow rule changed"),
    "workflow_rule:deleted": _("Workflow rule deleted"),
}
STATE_ACTIONS = {
    VoucherState.QUEUED: _("Queued for sending"),
    VoucherState.SENDING: _("Sending"),
    VoucherState.DRAFT: _("Back to draft"),
    VoucherState.NEEDS_UPDATE: _("Changed after posting"),
    VoucherState.OPTED_OUT: _("Opted out by a workflow rule"),
    VoucherState.AWAITING_AUTHORISATION: _("Waiting for authorisation"),
    VoucherState.HANDLED_OUTSIDE: _("Handled outside Kontera"),
    VoucherState.AWAITING_MAPPING: _("Waiting for an account mapping"),
}
WORKER_LABELS = {"worker": _("the worker"), "sweeper": _("the worker"), "system": _("Kontera"),
                 "command": _("a command"), "demo": _("the demo")}


def action_label(event: AuditEvent) -> str:
    action = event.action or ""
    if action.startswith("state:") and "->" in action:
        to = action.split("->", 1)[1]
        system = event.voucher.get_system_display() if event.voucher_id and event.voucher else ""
        if to == VoucherState.POSTED:
            return _("Sent to %(system)s") % {"system": system or _("the target")}
        if to == VoucherState.FAILED:
            return _("Refused by the pre-flight check") if "Not sent" in (event.message or "")[:20] \
                else _("Refused or given up")
        if to in STATE_ACTIONS:
            return STATE_ACTIONS[to]
    if action.startswith("integration:") and "->" in action:
        to = action.split("->", 1)[1]
        return _("Connection: %(status)s") % {"status": IntegrationStatus(to).label} \
            if to in IntegrationStatus.values else action
    return ACTIONS.get(action, action)


def who_label(event: AuditEvent) -> str:
    """The staff member who caused it; "anna (by the worker)" when the worker carried it out for them."""
    user = event.actor
    name = (user.get_full_name() or user.get_username()) if user is not None else ""
    machine = WORKER_LABELS.get(event.actor_label)
    if name and machine and event.actor_label != (user.get_username() if user else ""):
        return _("%(person)s (by %(machine)s)") % {"person": name, "machine": machine}
    return name or machine or event.actor_label or "–"


class AuditTrailColumns:
    """Readable columns for the audit trail, shared by its list and the voucher page's inline."""

    @admin.display(description=_("when"), ordering="created_at")
    def when(self, event):
        return timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S") if event.created_at else "–"

    @admin.display(description=_("who"))
    def who(self, event):
        return who_label(event)

    @admin.display(description=_("what"), ordering="action")
    def what(self, event):
        return action_label(event)

    @admin.display(description=_("message"))
    def message_shown(self, event):
        return format_html('<span style="white-space:pre-line">{}</span>', text_of(event, "message"))

    @admin.display(description=_("voucher"))
    def voucher_link(self, event):
        if not event.voucher_id:
            return "–"
        voucher = event.voucher
        return format_html('<a href="{}">{}</a>', reverse("admin:bookkeeping_voucher_change", args=[voucher.pk]),
                           voucher.source_reference[:32])

    @admin.display(description=_("integration"))
    def integration_link(self, event):
        if not event.integration_id:
            return "–"
        return format_html('<a href="{}">{}</a>', reverse("admin:integrations_integration_change",
                                                          args=[event.integration_id]),
                           event.integration.get_system_display())


def _state_changes_to(state: str) -> dict:
    """Every ``state:<from>-><state>`` code, listed: equal to one of them is an index lookup on millions of
    events, where "ends with" reads them all."""
    return {"action__in": [f"state:{before}->{state}" for before in VoucherState.values if before != state]}


class WhatFilter(admin.SimpleListFilter):
    """What happened, in groups an accountant looks for — not the internal action codes."""

    title = _("what")
    parameter_name = "what"
    GROUPS = {
        "posted": (_("Sent to the target"), _state_changes_to(VoucherState.POSTED)),
        "failed": (_("Refused or given up"), _state_changes_to(VoucherState.FAILED)),
        "queued": (_("Queued for sending"), _state_changes_to(VoucherState.QUEUED)),
        "awaiting": (_("Waiting for authorisation"), _state_changes_to(VoucherState.AWAITING_AUTHORISATION)),
        "handled": (_("Handled outside Kontera"), _state_changes_to(VoucherState.HANDLED_OUTSIDE)),
        "connections": (_("Connections"), {"action__regex": r"^(integration|fortnox|dinero|netseasy:key)"}),
        "imports": (_("Imports"), {"action__in": ["journals:import", "expense:import", "master_data:import"]}),
        "payouts": (_("Nets Easy payouts"), {"action__startswith": "netseasy:payout"}),
        "rules": (_("Workflow rules"), {"action__startswith": "workflow_rule:"}),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _lookup) in self.GROUPS.items()]

    def queryset(self, request, queryset):
        group = self.GROUPS.get(self.value())
        return queryset.filter(**group[1]) if group else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(AuditTrailColumns, ReadOnlyAdminMixin, LargeListMixin, CompanyScopedAdmin):
    """Read-only; seen (and exported) with the named permission view_auditevent, for the companies one serves."""

    class Media:
        css = {"all": ("kontera/lists.css",)}

    list_display = ("when", "company", "who", "what", "outcome", "voucher_link", "integration_link", "message_shown")
    list_filter = (("created_at", DateRangeFilterBuilder(title=_("period"))), WhatFilter, "outcome", CompanyFilter)
    # Each through an index at millions of events: the message by word (a trigram index on PostgreSQL), who
    # exactly; what happened is the "what" filter.
    search_fields = ("message", "=actor_label")
    search_help_text = _("Words of the message, or a user name exactly.")
    list_select_related = ("company", "voucher", "integration", "actor")
    fields = ("when", "company", "who", "what", "outcome", "http_status", "voucher_link", "integration_link",
              "message_shown", "data")
    readonly_fields = fields
    actions = ["export_csv"]

    def has_export_permission(self, request):
        # The named permission, not just staff status: an export leaves the building.
        return request.user.has_perm("bookkeeping.view_auditevent")

    @admin.action(description=_("Export selected events (CSV, for the auditor)"), permissions=["export"])
    def export_csv(self, request, queryset):
        # ``queryset`` is already limited to the user's companies (CompanyScopedAdmin.get_queryset).
        events = audit_events_for_export(queryset=queryset)
        response = StreamingHttpResponse(audit_csv_lines(events), content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="kontera-audit-{stamp}.csv"'
        return response
