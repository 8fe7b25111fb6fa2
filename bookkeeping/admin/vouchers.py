from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rangefilter.filters import DateRangeFilterBuilder

from wording import amount, render, text_of

from ..models import AuditEvent, Voucher, VoucherRow, VoucherState
from ..permissions import require_permission
from ..selectors.companies import scope_to_user
from ..selectors.mappings import flow_for_source, row_source_label
from ..selectors.overview import QUEUE_PATIENCE
from ..selectors.remote import remote_words, year_labels
from ..services import vouchers as voucher_services
from ..services.handling import HANDLEABLE, vouchers_mark_handled_outside
from ..services.mappings import vouchers_resolve_again
from ..services.preflight import vouchers_preflight_refresh
from ..services.voucher_totals import voucher_totals_refresh
from .audit import AuditTrailColumns
from .base import CompanyScopedAdmin, ReadOnlyAdminMixin
from .lists import CompanyFilter, LargeListMixin

EDITABLE_STATES = {VoucherState.DRAFT, VoucherState.FAILED, VoucherState.OPTED_OUT, VoucherState.AWAITING_MAPPING}
# What "Send" acts on (voucher_queue): anything else is posted, under way or handled outside.
SENDABLE_STATES = {VoucherState.DRAFT, VoucherState.FAILED, VoucherState.OPTED_OUT, VoucherState.NEEDS_UPDATE,
                   VoucherState.AWAITING_AUTHORISATION, VoucherState.AWAITING_MAPPING}

STATE_COLOURS = {
    VoucherState.POSTED: "#2e7d32",
    VoucherState.HANDLED_OUTSIDE: "#2e7d32",
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


class AuditEventInline(AuditTrailColumns, ReadOnlyAdminMixin, admin.TabularInline):
    model = AuditEvent
    fk_name = "voucher"
    extra = 0
    fields = ("when", "who", "what", "outcome", "http_status", "message_shown")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    verbose_name_plural = _("Audit trail")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "voucher", "integration")


class AttentionFilter(admin.SimpleListFilter):
    """The overview's counts, as a list filter (its links land here)."""

    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [
            ("failed", _("failed")),
            ("preflight", _("refused by the pre-flight check")),
            ("awaiting", _("awaiting authorisation")),
            ("stuck", _("queued longer than expected")),
        ]

    def queryset(self, request, queryset):
        S = VoucherState
        value = self.value()
        if value == "failed":
            return queryset.filter(state=S.FAILED).exclude(preflight_ok=False)
        if value == "preflight":
            return queryset.filter(state__in=[S.FAILED, S.DRAFT], preflight_ok=False)
        if value == "awaiting":
            return queryset.filter(state=S.AWAITING_AUTHORISATION)
        if value == "stuck":
            return queryset.filter(Q(state__in=[S.QUEUED, S.SENDING]),
                                   queued_at__lt=timezone.now() - QUEUE_PATIENCE)
        return queryset


class SourceFilter(admin.SimpleListFilter):
    """Where the vouchers came from, in words (the stored value is a short code)."""

    title = _("source")
    parameter_name = "source_system__exact"
    SOURCES = {"ledger": _("property system (CSV)"), "sie": _("SIE 4 file"), "expenses": _("expense documents"),
               "netseasy": _("Nets Easy card payments")}

    def lookups(self, request, model_admin):
        return list(self.SOURCES.items())

    def queryset(self, request, queryset):
        return queryset.filter(source_system=self.value()) if self.value() else queryset


class VoucherChangeList(ChangeList):
    """Reads the financial years of the vouchers on the page once, for "Fortnox A 25, financial year 2022"."""

    def get_results(self, request):
        super().get_results(request)
        labels = year_labels(self.result_list)
        for voucher in self.result_list:
            voucher.year_labels = labels


class VoucherAdmin(LargeListMixin, CompanyScopedAdmin):
    change_list_template = "admin/bookkeeping/voucher/change_list.html"
    # Seven columns that fit at 1366 px with the menu and the filters open; why a voucher waits or failed is
    # read under its description.
    list_display = ("date_shown", "company_shown", "reference_display", "description_short", "total", "state_display",
                    "remote_display")
    list_display_links = ("reference_display",)
    list_filter = (AttentionFilter, ("date", DateRangeFilterBuilder(title=_("period"))), "state", "system", "kind",
                   CompanyFilter, SourceFilter)
    # Each through an index at a million vouchers: the reference and the description by word (trigram
    # indexes on PostgreSQL), the number and id in the target exactly.
    search_fields = ("source_reference", "description", "=remote_number", "=remote_id")
    search_help_text = _("A reference or words of the description; a number or id in the target exactly.")
    list_select_related = ("company",)
    inlines = [VoucherRowInline, AuditEventInline]
    actions = ["send_selected", "retry_selected", "back_to_draft", "mark_handled_outside"]
    readonly_fields = ("state_display", "preflight_report", "attempts", "next_attempt_at", "last_error_shown",
                       "remote_display", "posted_at", "pending_since", "requested_by")
    fieldsets = (
        (None, {"fields": ("company", "system", "kind", "source_system", "source_reference", "date", "description",
                           "series", "currency")}),
        (_("State"), {"fields": ("state_display", "preflight_report", "attempts", "next_attempt_at",
                                 "last_error_shown", "pending_since", "requested_by")}),
        (_("In the target"), {"fields": ("remote_display", "posted_at")}),
    )

    def get_changelist(self, request, **kwargs):
        return VoucherChangeList

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        voucher = form.instance
        voucher_totals_refresh(voucher=voucher)
        # The rows may now pass (or fail) the pre-flight check: the stored result follows the edit.
        vouchers_preflight_refresh(company=voucher.company, system=voucher.system, voucher_ids=[voucher.pk],
                                   actor=request.user, queue_fixed=False)

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.state not in EDITABLE_STATES:
            fields += ["company", "system", "kind", "source_system", "source_reference", "date", "description",
                       "series", "currency"]
        return fields

    @admin.display(description=_("state"), ordering="state")
    def state_display(self, voucher):
        return state_badge(voucher)

    class Media:
        css = {"all": ("kontera/lists.css",)}

    @admin.display(description=_("company"), ordering="company_id")
    def company_shown(self, voucher):
        # Sorted by the stored company (an index), not by name: a join and a sort of every voucher.
        return voucher.company

    @admin.display(description=_("date"), ordering="date")
    def date_shown(self, voucher):
        return voucher.date.isoformat()

    @admin.display(description=_("reference"), ordering="source_reference")
    def reference_display(self, voucher):
        return format_html('{}<br><span class="quiet">{}</span>', voucher.source_reference[:40],
                           voucher.get_kind_display())

    @admin.display(description=_("description"), ordering="description")
    def description_short(self, voucher):
        text = voucher.description
        shown = format_html('<span title="{}">{}</span>', text, text[:40] + ("…" if len(text) > 40 else ""))
        why = self.short_error(voucher)
        if why:
            return format_html('{}<br><span class="why" style="color:#b71c1c;font-size:.85em">{}</span>', shown, why)
        return shown

    @admin.display(description=_("in target"))
    def remote_display(self, voucher):
        words = remote_words(voucher, getattr(voucher, "year_labels", None) or year_labels([voucher]))
        return format_html('<span style="white-space:normal">{}</span>', words)

    @admin.display(description=_("total"), ordering="debit_total")
    def total(self, voucher):
        return format_html('<span style="white-space:nowrap">{}</span>', amount(voucher.debit_total))

    @admin.display(description=_("why"))
    def short_error(self, voucher):
        if voucher.preflight_ok is False and voucher.state in (VoucherState.DRAFT, VoucherState.FAILED):
            problems = voucher.preflight_problems or []
            text = render(problems[0]["text"]) if problems else ""
            more = len(problems) - 1
            if more > 0:
                text += " " + ngettext("(and %(n)s more)", "(and %(n)s more)", more) % {"n": more}
        else:
            text = text_of(voucher, "last_error")
        if not text:
            return ""
        short = (text[:70] + "…") if len(text) > 70 else text
        return format_html('<span title="{}">{}</span>', text, short)

    @admin.display(description=_("last error"))
    def last_error_shown(self, voucher):
        return format_html("{}", text_of(voucher, "last_error")) if voucher and voucher.last_error else "–"

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
        if request.POST.get("confirm") == "yes":
            # The selection as a queryset: it is read and queued a chunk at a time, whatever its size.
            result = voucher_services.vouchers_queue(vouchers=queryset, actor=request.user)
            self.message_user(request, _("%(queued)s queued, %(failed)s refused by the pre-flight check, "
                                         "%(awaiting_mapping)s waiting for a mapping, %(skipped)s already under "
                                         "way or posted.") % result.__dict__,
                              messages.SUCCESS if not (result.failed or result.awaiting_mapping) else messages.WARNING)
            ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
            return HttpResponseRedirect(reverse("admin:bookkeeping_voucher_progress") + f"?ids={ids}")
        queryset = queryset.select_related("company").prefetch_related("rows")
        rows = []
        for voucher in queryset:
            sendable = voucher.state in SENDABLE_STATES
            problems = voucher_services.voucher_preflight(voucher) if sendable else []
            notes = voucher_services.voucher_preflight_notes(voucher) if sendable else []
            status = ("refused" if problems else "ready") if sendable else (
                "under_way" if voucher.state in (VoucherState.QUEUED, VoucherState.SENDING) else "not_sent")
            rows.append({"voucher": voucher, "problems": problems, "notes": notes, "total": voucher.totals()[0],
                         "status": status})
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send vouchers"),
            "rows": rows,
            "ready": sum(1 for r in rows if r["status"] == "ready"),
            "refused": sum(1 for r in rows if r["status"] == "refused"),
            "left_alone": sum(1 for r in rows if r["status"] in ("under_way", "not_sent")),
            "queryset": queryset,
            "opts": self.model._meta,
            "action_name": "send_selected",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/bookkeeping/voucher/confirm_send.html", context)

    @admin.action(description=_("Retry failed or waiting vouchers"), permissions=["send"])
    def retry_selected(self, request, queryset):
        waiting = queryset.filter(state__in=[VoucherState.FAILED, VoucherState.AWAITING_AUTHORISATION])
        result = voucher_services.vouchers_queue(vouchers=waiting, actor=request.user)
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

    def has_handle_outside_permission(self, request):
        return request.user.has_perm("bookkeeping.handle_outside_voucher")

    @admin.action(description=_("Mark as handled outside Kontera (with a note)…"), permissions=["handle_outside"])
    def mark_handled_outside(self, request, queryset):
        chosen = queryset.filter(state__in=HANDLEABLE)
        if request.POST.get("confirm") == "yes":
            try:
                count = vouchers_mark_handled_outside(vouchers=list(chosen), note=request.POST.get("note", ""),
                                                      actor=request.user)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, ngettext("%(n)s voucher marked as handled outside Kontera.",
                                                    "%(n)s vouchers marked as handled outside Kontera.", count)
                                  % {"n": count})
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Handled outside Kontera"),
            "vouchers": chosen.select_related("company"),
            "skipped": queryset.count() - chosen.count(),
            "queryset": queryset,
            "opts": self.model._meta,
            "action_name": "mark_handled_outside",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/bookkeeping/voucher/confirm_handled_outside.html", context)

    # --- progress page ------------------------------------------------------------------------

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        from .inbox import inbox_view

        return [
            path("inbox/", self.admin_site.admin_view(lambda r: inbox_view(self, r)), name="%s_%s_inbox" % info),
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
