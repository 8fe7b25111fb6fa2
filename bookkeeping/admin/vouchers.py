from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Sum
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import AuditEvent, Voucher, VoucherRow, VoucherState
from ..permissions import require_permission
from ..selectors.companies import scope_to_user
from ..selectors.mappings import flow_for_source, row_source_label
from ..services import vouchers as voucher_services
from ..services.mappings import vouchers_resolve_again
from .base import CompanyScopedAdmin, ReadOnlyAdminMixin

EDITABLE_STATES = {VoucherState.DRAFT, VoucherState.FAILED, VoucherState.OPTED_OUT, VoucherState.AWAITING_MAPPING}

STATE_COLOURS = {
    VoucherState.POSTED: "#2e7d32",
    VoucherState.FAILED: "#c62828",
    VoucherState.AWAITING_AUTHORISATION: "#ef6c00",
    VoucherState.AWAITING_MAPPING: "#ef6c00",
    VoucherState.NEEDS_UPDATE: "#ef6c00",
    VoucherState.SENDING: "#1565c0",
    VoucherState.QUEUED: "#1565c0",
}


# A progress page follows at most this many vouchers; ids beyond a 64-bit key cannot exist.
MAX_PROGRESS_IDS = 5000
MAX_ID = 2**63 - 1


def progress_ids(text: str) -> list[int]:
    """The voucher ids of ``?ids=1,2,3``: digits only, within the database's key range, at most 5,000."""
    ids = []
    for part in text.split(",")[:MAX_PROGRESS_IDS]:
        part = part.strip()
        if part.isascii() and part.isdigit() and len(part) <= 19 and 0 < int(part) <= MAX_ID:
            ids.append(int(part))
    return ids


def state_badge(voucher) -> str:
    colour = STATE_COLOURS.get(voucher.state, "#555")
    return format_html('<strong style="color:{}">{}</strong>', colour, voucher.get_state_display())


class VoucherRowInline(admin.TabularInline):
    model = VoucherRow
    extra = 0
    fields = ("position", "account", "debit", "credit", "cost_centre", "project", "text", "vat_code",
              "source_display")
    readonly_fields = ("source_display",)

    @admin.display(description=_("what the source said"))
    def source_display(self, row):
        return row_source_label(row) if row is not None and row.pk else ""

    def _editable(self, obj):
        return obj is None or obj.state in EDITABLE_STATES

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


class AuditEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AuditEvent
    fk_name = "voucher"
    extra = 0
    fields = ("created_at", "actor_label", "action", "outcome", "http_status", "message")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    verbose_name_plural = _("Audit trail")


class VoucherAdmin(CompanyScopedAdmin):
    change_list_template = "admin/bookkeeping/voucher/change_list.html"
    list_display = ("date", "company", "kind", "source_reference", "description", "series", "total",
                    "state_display", "remote_display", "short_error")
    list_filter = ("state", "system", "kind", ("company", admin.RelatedOnlyFieldListFilter), "source_system")
    search_fields = ("source_reference", "description", "remote_number", "remote_id")
    date_hierarchy = "date"
    list_select_related = ("company",)
    inlines = [VoucherRowInline, AuditEventInline]
    actions = ["send_selected", "retry_selected", "back_to_draft"]
    readonly_fields = ("state_display", "preflight_report", "attempts", "next_attempt_at", "last_error",
                       "remote_display", "posted_at", "pending_since")
    fieldsets = (
        (None, {"fields": ("company", "system", "kind", "source_system", "source_reference", "date", "description",
                           "series", "currency")}),
        (_("State"), {"fields": ("state_display", "preflight_report", "attempts", "next_attempt_at", "last_error",
                                 "pending_since")}),
        (_("In the target"), {"fields": ("remote_display", "posted_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(debit_total=Sum("rows__debit"))

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.state not in EDITABLE_STATES:
            fields += ["company", "system", "kind", "source_system", "source_reference", "date", "description",
                       "series", "currency"]
        return fields

    @admin.display(description=_("state"), ordering="state")
    def state_display(self, voucher):
        return state_badge(voucher)

    @admin.display(description=_("in target"))
    def remote_display(self, voucher):
        return voucher.remote_label or "–"

    @admin.display(description=_("total"), ordering="debit_total")
    def total(self, voucher):
        return f"{voucher.debit_total or 0:.2f}"

    @admin.display(description=_("last error"))
    def short_error(self, voucher):
        return (voucher.last_error[:80] + "…") if len(voucher.last_error) > 80 else voucher.last_error

    def save_formset(self, request, form, formset, change):
        # An account typed in by staff is explicit: a later mapping change does not override it.
        if formset.model is VoucherRow:
            for row_form in formset.forms:
                row = row_form.instance
                if row_form.has_changed() and "account" in row_form.changed_data and row.source:
                    row.source = {**row.source, "account": row.account, "via": "manual"}
                    row.source.pop("unmapped", None)
                    row.awaits_mapping = False
        super().save_formset(request, form, formset, change)

    @admin.display(description=_("pre-flight check"))
    def preflight_report(self, voucher):
        if voucher is None or voucher.pk is None:
            return "–"
        if voucher.state == VoucherState.POSTED:
            return _("Posted.")
        problems = voucher_services.voucher_preflight(voucher)
        notes = format_html_join("", '<li style="color:#8a5a00">{}</li>',
                                 ((n,) for n in voucher_services.voucher_preflight_notes(voucher)))
        if not problems:
            return format_html('<span style="color:#2e7d32">✔ {}</span><ul style="margin:0">{}</ul>',
                               _("Ready to send: every rule holds against the imported account plan."), notes)
        unmapped = ""
        if any(p.code == "unmapped" for p in problems):
            url = reverse("admin:bookkeeping_accountmapping_unmapped") + "?" + urlencode(
                {"company": voucher.company_id, "flow": getattr(flow_for_source(voucher.source_system), "key", "")})
            unmapped = format_html('<li><a href="{}">{}</a></li>', url, _("Map the missing values"))
        return format_html('<ul style="color:#c62828;margin:0">{}{}{}</ul>',
                           format_html_join("", "<li>{}</li>", ((str(p),) for p in problems)), unmapped, notes)

    # --- actions ------------------------------------------------------------------------------

    def has_send_permission(self, request):
        return request.user.has_perm("bookkeeping.send_voucher")

    def has_reset_permission(self, request):
        return request.user.has_perm("bookkeeping.reset_voucher")

    @admin.action(description=_("Send selected vouchers to the target…"), permissions=["send"])
    def send_selected(self, request, queryset):
        queryset = queryset.select_related("company").prefetch_related("rows")
        if request.POST.get("confirm") == "yes":
            result = voucher_services.vouchers_queue(vouchers=list(queryset), actor=request.user)
            self.message_user(request, _("%(queued)s queued, %(failed)s refused by the pre-flight check, "
                                         "%(awaiting_mapping)s waiting for a mapping, %(skipped)s already under "
                                         "way or posted.") % result.__dict__,
                              messages.SUCCESS if not (result.failed or result.awaiting_mapping) else messages.WARNING)
            ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
            return HttpResponseRedirect(reverse("admin:bookkeeping_voucher_progress") + f"?ids={ids}")
        rows = []
        for voucher in queryset:
            problems = [] if voucher.state == VoucherState.POSTED else voucher_services.voucher_preflight(voucher)
            notes = [] if voucher.state == VoucherState.POSTED else voucher_services.voucher_preflight_notes(voucher)
            rows.append({"voucher": voucher, "problems": problems, "notes": notes, "total": voucher.totals()[0]})
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send vouchers"),
            "rows": rows,
            "ready": sum(1 for r in rows if not r["problems"] and r["voucher"].state in EDITABLE_STATES),
            "queryset": queryset,
            "opts": self.model._meta,
            "action_name": "send_selected",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/bookkeeping/voucher/confirm_send.html", context)

    @admin.action(description=_("Retry failed or waiting vouchers"), permissions=["send"])
    def retry_selected(self, request, queryset):
        waiting = queryset.filter(state__in=[VoucherState.FAILED, VoucherState.AWAITING_AUTHORISATION])
        result = voucher_services.vouchers_queue(vouchers=list(waiting), actor=request.user)
        # Waiting for a mapping: resolved again now (the mapping may have been added meanwhile).
        remapped = vouchers_resolve_again(
            vouchers=list(queryset.filter(state=VoucherState.AWAITING_MAPPING).select_related("company")),
            actor=request.user)
        queued = result.queued + remapped.get("queued", 0)
        self.message_user(request, ngettext("%(n)s voucher queued again.", "%(n)s vouchers queued again.",
                                            queued) % {"n": queued})

    @admin.action(description=_("Back to draft (for editing)"), permissions=["reset"])
    def back_to_draft(self, request, queryset):
        count = 0
        for voucher in queryset.filter(state__in=[VoucherState.FAILED, VoucherState.QUEUED, VoucherState.OPTED_OUT,
                                                  VoucherState.AWAITING_MAPPING]):
            voucher_services.voucher_reset_to_draft(voucher=voucher, actor=request.user)
            count += 1
        self.message_user(request, ngettext("%(n)s voucher back to draft.", "%(n)s vouchers back to draft.", count)
                          % {"n": count})

    # --- progress page ------------------------------------------------------------------------

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("progress/", self.admin_site.admin_view(self.progress_view), name="%s_%s_progress" % info),
            path("export-sie/", self.admin_site.admin_view(self.sie_export_view), name="%s_%s_export_sie" % info),
            *super().get_urls(),
        ]

    def sie_export_view(self, request):
        from .sie_export import sie_export_view

        require_permission(request.user, "bookkeeping.export_sie")
        return sie_export_view(self, request)

    def progress_view(self, request):
        if not self.has_view_permission(request):
            require_permission(request.user, "bookkeeping.view_voucher")
        ids = progress_ids(request.GET.get("ids", ""))
        vouchers = scope_to_user(Voucher.objects.filter(pk__in=ids), request.user)
        counts: dict[str, int] = {}
        for state in vouchers.values_list("state", flat=True):
            counts[state] = counts.get(state, 0) + 1
        total = sum(counts.values())
        done = sum(counts.get(s, 0) for s in (VoucherState.POSTED, VoucherState.FAILED,
                                              VoucherState.AWAITING_AUTHORISATION))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Transfer progress"),
            "opts": self.model._meta,
            "counts": [(VoucherState(s).label, n) for s, n in sorted(counts.items())],
            "total": total,
            "done": done,
            "percent": int(100 * done / total) if total else 100,
            "finished": done >= total,
            "vouchers": vouchers.order_by("date", "id")[:500],
        }
        return TemplateResponse(request, "admin/bookkeeping/voucher/progress.html", context)


admin.site.register(Voucher, VoucherAdmin)
