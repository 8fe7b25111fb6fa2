"""Nets Easy in the admin: payouts with their payment actions and reconciliation; the flow's pages.

Every list and page is company-scoped (``CompanyScopedAdmin``; the pages check ``user_can_act_on``).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rangefilter.filters import DateRangeFilterBuilder

from bookkeeping.admin.base import CompanyScopedAdmin, ReadOnlyAdminMixin
from bookkeeping.admin.integrations import register_integration_page
from bookkeeping.admin.overview import register_attention
from bookkeeping.selectors.companies import companies_for_user
from integrations.models import IntegrationStatus
from wording import amount, text_of

from . import views
from .models import NetsPaymentAction, NetsPayout, PayoutState, ProblemReport
from .services.settings import SOURCE, integration_settings_check

STATE_COLOURS = {
    PayoutState.BOOKED: "#2e7d32",
    PayoutState.HANDLED_MANUALLY: "#2e7d32",
    PayoutState.WAITING_CURRENCY: "#ef6c00",
    PayoutState.NEEDS_ATTENTION: "#c62828",
    PayoutState.RESIDUAL_ERROR: "#c62828",
}


def _voucher_link(voucher) -> str:
    if voucher is None:
        return "–"
    url = reverse("admin:bookkeeping_voucher_change", args=[voucher.pk])
    where = voucher.remote_label or voucher.get_state_display()
    return format_html('<a href="{}">{}</a> ({})', url, voucher.source_reference[:24], where)


class NetsPaymentActionInline(admin.TabularInline):
    model = NetsPaymentAction
    extra = 0
    can_delete = False
    fields = ("action", "booking_date", "reference", "country", "region", "amount", "vat_amount", "fee",
              "voucher_display", "flag_shown", "problem_shown")
    readonly_fields = fields
    ordering = ("timestamp", "id")
    verbose_name_plural = _("Payment actions")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("voucher"))
    def voucher_display(self, action):
        return _voucher_link(action.voucher)

    @admin.display(description=_("check"))
    def flag_shown(self, action):
        return format_html('<span style="white-space:pre-line">{}</span>', text_of(action, "flag")) or "–"

    @admin.display(description=_("why not booked"))
    def problem_shown(self, action):
        return text_of(action, "problem") or "–"


@admin.register(NetsPayout)
class NetsPayoutAdmin(CompanyScopedAdmin):
    class Media:
        css = {"all": ("kontera/lists.css",)}

    list_display = ("date", "company", "reference", "currency", "amount_display", "fees_display", "state_display",
                    "residual_display")
    list_filter = (("date", DateRangeFilterBuilder(title=_("period"))), "state", "currency",
                   ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("reference", "nets_id", "actions__reference", "actions__payment_id")
    list_select_related = ("company", "voucher")
    inlines = [NetsPaymentActionInline]
    actions = ["mark_handled_by_hand", "sync_companies"]
    change_list_template = "admin/card_payments/payout_change_list.html"
    fieldsets = (
        (None, {"fields": ("company", "date", "reference", "nets_id", "currency", "state_display",
                           "state_message_shown")}),
        (_("Nets' numbers"), {"fields": ("charged_amount", "refunded_amount", "deposited_amount", "fees", "amount",
                                         "number_of_actions")}),
        (_("Reconciliation"), {"fields": ("reconciliation",)}),
    )
    readonly_fields = ("company", "date", "reference", "nets_id", "currency", "state_display", "state_message_shown",
                       "charged_amount", "refunded_amount", "deposited_amount", "fees", "amount", "number_of_actions",
                       "reconciliation")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # Nets' payouts are facts; staff act through the actions and pages

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("state"), ordering="state")
    def state_display(self, payout):
        return format_html('<strong style="color:{}">{}</strong>', STATE_COLOURS.get(payout.state, "#555"),
                           payout.get_state_display())

    @admin.display(description=_("why"))
    def state_message_shown(self, payout):
        return text_of(payout, "state_message") or "–"

    @admin.display(description=_("residual"), ordering="residual")
    def residual_display(self, payout):
        if payout.residual is None:
            return "–"
        colour = "#2e7d32" if payout.residual == 0 else "#c62828"
        return format_html('<span style="color:{}">{}</span>', colour, amount(payout.residual))

    @admin.display(description=_("payout amount"), ordering="amount")
    def amount_display(self, payout):
        return format_html('<span style="white-space:nowrap">{}</span>', amount(payout.amount))

    @admin.display(description=_("fees"), ordering="fees")
    def fees_display(self, payout):
        return format_html('<span style="white-space:nowrap">{}</span>', amount(payout.fees))

    @admin.display(description=_("expected vs booked"))
    def reconciliation(self, payout):
        from .selectors import payout_reconciliation

        rec = payout_reconciliation(payout)
        if rec is None:
            return _("Nothing booked yet.")
        colour = "#2e7d32" if rec.balanced else "#c62828"
        rows = [
            (_("Expected payout (Nets)"), amount(rec.expected)),
            (_("Booked on the reconciliation account by sales, refunds and deposits"), amount(rec.gross)),
            (_("Fees"), amount(rec.fees)),
            (_("Booked payout (gross − fees)"), amount(rec.booked)),
            (_("Cleared from the reconciliation account by the payout voucher"), amount(rec.cleared)),
        ]
        table = format_html_join("", "<tr><td>{}</td><td style='text-align:right'>{}</td></tr>", rows)
        vouchers = format_html_join("", "<li>{}</li>", ((_voucher_link(v),) for v in rec.vouchers))
        return format_html(
            "<table>{}<tr><th>{}</th><th id='residual' style='text-align:right;color:{}'>{}</th></tr></table>"
            "<p>{}</p><ul>{}</ul>",
            table, _("Residual (must be 0.00)"), colour, amount(rec.residual),
            _("%(posted)s of %(total)s vouchers are in Fortnox; %(failed)s failed.") % {
                "posted": rec.posted, "total": len(rec.vouchers), "failed": rec.failed},
            vouchers)

    # --- actions ------------------------------------------------------------------------------

    def has_mark_handled_permission(self, request):
        return request.user.has_perm("card_payments.mark_payout_handled")

    def has_sync_permission(self, request):
        return request.user.has_perm("card_payments.sync_netseasy")

    @admin.action(description=_("Mark as booked by hand (e.g. a payout in another currency)"),
                  permissions=["mark_handled"])
    def mark_handled_by_hand(self, request, queryset):
        from .services.payout_booking import payout_mark_handled

        count = sum(payout_mark_handled(payout=p, actor=request.user) for p in queryset)
        self.message_user(request, ngettext("%(n)s payout marked as booked by hand.",
                                            "%(n)s payouts marked as booked by hand.", count) % {"n": count})

    @admin.action(description=_("Sync Nets Easy now for the companies of the selected payouts"),
                  permissions=["sync"])
    def sync_companies(self, request, queryset):
        from .selectors import nets_integration
        from .services.sync import enqueue_sync

        companies = {p.company for p in queryset.select_related("company")}
        started = [c for c in companies if (i := nets_integration(c)) and enqueue_sync(
            i.pk, actor=request.user.get_username())]
        self.message_user(request, ngettext("Sync started for %(n)s company.", "Sync started for %(n)s companies.",
                                            len(started)) % {"n": len(started)})
        if len(companies) == 1:
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(views.url("progress", next(iter(companies)).pk))

    # --- pages ----------------------------------------------------------------------------------

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        wrap = self.admin_site.admin_view
        return [
            path("company/<int:company_id>/settings/", wrap(views.settings_view), name="%s_%s_settings" % info),
            path("company/<int:company_id>/confirm/", wrap(views.confirm_view), name="%s_%s_confirm" % info),
            path("company/<int:company_id>/sync/", wrap(views.sync_view), name="%s_%s_sync" % info),
            path("company/<int:company_id>/progress/", wrap(views.progress_view), name="%s_%s_progress" % info),
            path("company/<int:company_id>/report/", wrap(views.report_view), name="%s_%s_report" % info),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        from integrations.models import Integration

        companies = companies_for_user(request.user).order_by("name")
        with_nets = dict(Integration.objects.filter(company__in=companies, system="netseasy")
                         .values_list("company_id", "status"))
        setup = [{"company": c, "url": views.url("settings", c.pk), "configured": c.pk in with_nets}
                 for c in companies if c.country == "SE"]
        return super().changelist_view(request, {**(extra_context or {}), "netseasy_companies": setup})


@admin.register(ProblemReport)
class ProblemReportAdmin(ReadOnlyAdminMixin, CompanyScopedAdmin):
    list_display = ("created_at", "company", "user", "short_text", "emailed_to")
    list_filter = (("company", admin.RelatedOnlyFieldListFilter),)
    fields = ("created_at", "company", "integration", "user", "text", "emailed_to", "diagnostics")
    readonly_fields = fields

    @admin.display(description=_("what happened"))
    def short_text(self, report):
        return report.text[:80] + ("…" if len(report.text) > 80 else "")


def integration_tools(integration, request) -> list[tuple[str, str]]:
    """The buttons on the Nets Easy integration's page."""
    def url(name):
        return reverse(f"admin:card_payments_netspayout_{name}", args=[integration.company_id])

    from .services.activation import activation_status

    may = request.user.has_perm
    tools = [(_("Nets Easy settings"), url("settings"))]
    # Offered only when OK would be accepted (the test voucher is in Fortnox and Nets accepts the key),
    # and to those who may give it.
    if (integration.status == IntegrationStatus.AWAITING_CONFIRMATION and may(views.CONFIRM)
            and activation_status(integration).can_confirm):
        tools.append((_("OK – start automatic booking"), url("confirm")))
    if may(views.SYNC):
        tools.append((_("Sync payouts now"), url("sync")))
    if may(views.SEE_PAYOUTS):
        tools.append((_("Payouts and reconciliation"), reverse("admin:card_payments_netspayout_changelist")
                      + f"?company__id__exact={integration.company_id}"))
    if may(views.REPORT):
        tools.append((_("Report a problem"), url("report")))
    return tools

def settings_summary(integration) -> list[tuple[str, str]]:
    """The Nets Easy settings in words; changed on the Nets Easy settings page (a new test voucher, then OK)."""
    conf = integration.settings or {}
    vat = ", ".join(f"{rate} %: {account}" for rate, account in sorted((conf.get("vat_accounts") or {}).items()))
    modes = {"per_sale": _("one voucher per sale"), "per_day": _("one summary voucher per day")}
    return [
        (_("Book sales from"), conf.get("start_date") or "–"),
        (_("Sales accounts (Sweden / EU / outside the EU)"), " / ".join(
            str(conf.get(k) or "–") for k in ("sales_account_se", "sales_account_eu", "sales_account_world"))),
        (_("Reconciliation account"), conf.get("receivable_account") or "–"),
        (_("Bank account"), conf.get("bank_account") or "–"),
        (_("Fee account"), conf.get("fee_account") or "–"),
        (_("Output VAT accounts"), vat or "–"),
        (_("Voucher series for sales and payouts"), f"{conf.get('sales_series') or '–'} / "
                                                     f"{conf.get('payout_series') or '–'}"),
        (_("Vouchers"), modes.get(conf.get("mode"), conf.get("mode") or "–")),
        (_("Change them"), _("on the Nets Easy settings page (the button above)")),
    ]


register_integration_page(SOURCE, settings_check=integration_settings_check, tools=integration_tools,
                          settings_summary=settings_summary)


def _payouts_url(company_id=None) -> str:
    from .selectors import NEEDS_STAFF

    url = reverse("admin:card_payments_netspayout_changelist") + "?state__in=" + ",".join(NEEDS_STAFF)
    return url + (f"&company__id__exact={company_id}" if company_id else "")


def _payouts_needing_staff(company_ids):
    from .selectors import payouts_needing_staff

    return payouts_needing_staff(company_ids)


register_attention(key="payouts_need_staff", label=_("payouts that need staff"), system=SOURCE,
                   count=_payouts_needing_staff, url=_payouts_url, severity="error")
