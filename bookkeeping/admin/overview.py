"""The overview — the admin's home page: per company the user serves, each integration with its state, the
remote company it reaches and its last successful sync, and what needs attention, each a count that
links to the filtered list; above it the last 30 days per target system (an SVG drawn here).

Flows add their own counts (payouts that need staff, documents on the error account …) with
``register_attention``, so the core need not know them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from integrations import registry
from integrations.models import IntegrationStatus

from ..models import Company
from ..selectors.companies import companies_for_user
from ..selectors.overview import daily_chart, integration_summaries, voucher_attention, vouchers_waiting_for_mappings


@dataclass(frozen=True)
class AttentionKind:
    key: str
    label: object
    system: str  # the integration row the count belongs to
    count: Callable[[list[int] | None], dict[int, int]]  # company ids (None: all) -> {company id: n}
    url: Callable[[int | None], str]  # company id (None: every company) -> the filtered list
    severity: str = "warning"  # error | warning | info


FLOW_ATTENTION: list[AttentionKind] = []


def register_attention(*, key: str, label, system: str, count, url, severity: str = "warning") -> None:
    """A flow's own count for the overview (e.g. payouts that need staff); see ``AttentionKind``."""
    FLOW_ATTENTION[:] = [kind for kind in FLOW_ATTENTION if kind.key != key]
    FLOW_ATTENTION.append(AttentionKind(key, label, system, count, url, severity))


def voucher_list_url(*, company_id: int | None = None, system: str | None = None, **filters) -> str:
    query = dict(filters)
    if system:
        query["system__exact"] = system
    if company_id:
        query["company__id__exact"] = company_id
    return reverse("admin:bookkeeping_voucher_changelist") + ("?" + urlencode(query) if query else "")


# The voucher counts of the core, in the order an accountant deals with them.
VOUCHER_KINDS = (
    ("failed", _("failed"), "error", {"attention": "failed"}),
    ("preflight", _("refused by the pre-flight check"), "error", {"attention": "preflight"}),
    ("awaiting_authorisation", _("awaiting authorisation"), "warning", {"attention": "awaiting"}),
    ("stuck", _("queued longer than expected"), "warning", {"attention": "stuck"}),
)


def _item(label, n, url, severity) -> dict:
    return {"label": label, "n": n, "url": url, "severity": severity}


def overview_context(request) -> dict:
    user = request.user
    companies = list(companies_for_user(user).order_by("name"))
    ids = None if user.is_superuser else [c.pk for c in companies]
    attention = voucher_attention(ids)
    flows = {kind.key: kind.count(ids) for kind in FLOW_ATTENTION}
    # What the page shows needs the permissions its lists need (issue 11: a named permission on every door).
    summaries = integration_summaries(ids) if user.has_perm("integrations.view_integration") else {}
    waiting_for_mappings = vouchers_waiting_for_mappings(ids)
    totals: dict[str, int] = {}
    rows = []
    for company in companies:
        integrations = []
        for summary in summaries.get(company.pk, []):
            system = summary.integration.system
            items = []
            counts = attention.get((company.pk, system))
            for key, label, severity, filters in VOUCHER_KINDS:
                n = getattr(counts, key, 0) if counts else 0
                if n:
                    items.append(_item(label, n, voucher_list_url(company_id=company.pk, system=system, **filters),
                                       severity))
                    totals[key] = totals.get(key, 0) + n
            mapping = waiting_for_mappings.get((company.pk, system), 0)
            if mapping:  # the unmapped-values page of issue 13: map the value, the vouchers go on by themselves
                items.append(_item(_("waiting for an account mapping"), mapping,
                                   reverse("admin:bookkeeping_accountmapping_unmapped") + f"?company={company.pk}",
                                   "warning"))
            for kind in FLOW_ATTENTION:
                n = flows[kind.key].get(company.pk, 0) if kind.system == system else 0
                if n:
                    items.append(_item(kind.label, n, kind.url(company.pk), kind.severity))
                    totals[kind.key] = totals.get(kind.key, 0) + n
            integrations.append({"summary": summary, "items": items,
                                 "status_colour": STATUS_COLOURS.get(summary.integration.status, "#555"),
                                 "url": reverse("admin:integrations_integration_change",
                                                args=[summary.integration.pk])})
        rows.append({"company": company, "integrations": integrations,
                     "attention": sum(len(i["items"]) for i in integrations)})
    rows.sort(key=lambda row: (row["attention"] == 0, row["company"].name.lower()))
    summary_items = []
    for key, label, severity, filters in VOUCHER_KINDS:
        if totals.get(key):
            summary_items.append(_item(label, totals[key], voucher_list_url(**filters), severity))
    for kind in FLOW_ATTENTION:
        if totals.get(kind.key):
            summary_items.append(_item(kind.label, totals[kind.key], kind.url(None), kind.severity))
    return {
        "rows": rows,
        "summary": summary_items,
        "charts": chart_panels(daily_chart(ids, systems=sorted(
            {s.integration.system for items in summaries.values() for s in items} & set(registry.TARGET_SYSTEMS))))
        if user.has_perm("bookkeeping.view_voucher") else [],
        "inbox_url": reverse("admin:bookkeeping_voucher_inbox"),
        "add_integration_url": reverse("admin:integrations_integration_add"),
        "companies_shown": len(companies),
        "all_companies": user.is_superuser,
    }


STATUS_COLOURS = {
    IntegrationStatus.ACTIVE: "#2e7d32",
    IntegrationStatus.NEEDS_REAUTHORISATION: "#c62828",
    IntegrationStatus.AWAITING_CONFIRMATION: "#ef6c00",
    IntegrationStatus.SETTING_UP: "#ef6c00",
    IntegrationStatus.PAUSED: "#555",
}

# The chart: one panel per target system, 30 stacked bars (posted, failed, waiting), drawn as SVG.
CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_BOTTOM = 620, 170, 34, 22
BAR_COLOURS = {"posted": "#2e7d32", "failed": "#c62828", "waiting": "#ef8f00"}


def chart_panels(series: dict) -> list[dict]:
    panels = []
    for system in sorted(series, key=lambda s: (s not in registry.TARGET_SYSTEMS, s)):
        days = series[system]
        peak = max([day.total for day in days] + [1])
        plot_width = CHART_WIDTH - CHART_LEFT - 6
        plot_height = CHART_HEIGHT - CHART_BOTTOM - 8
        step = plot_width / len(days)
        bars = []
        for index, day in enumerate(days):
            x = CHART_LEFT + index * step + 1
            y = CHART_HEIGHT - CHART_BOTTOM
            parts = []
            for name in ("posted", "failed", "waiting"):
                value = getattr(day, name)
                height = plot_height * value / peak
                if value:
                    y -= height
                    parts.append({"name": name, "y": round(y, 1), "height": round(height, 1),
                                  "colour": BAR_COLOURS[name]})
            bars.append({"day": day, "x": round(x, 1), "width": round(step - 2, 1), "parts": parts,
                         # a date every week, and the last day (unless a weekly label sits right next to it)
                         "label": day.day.strftime("%m-%d") if (index % 7 == 0 and index < len(days) - 4)
                         or index == len(days) - 1 else "",
                         "label_x": round(x + (step - 2) / 2, 1)})
        panels.append({
            "system": system, "label": dict(registry.TARGET_CHOICES).get(system, system), "bars": bars,
            "peak": peak, "width": CHART_WIDTH, "height": CHART_HEIGHT, "axis_y": CHART_HEIGHT - CHART_BOTTOM,
            "top_y": CHART_HEIGHT - CHART_BOTTOM - plot_height, "left": CHART_LEFT, "plot_height": plot_height,
            "scale_x": CHART_LEFT - 4, "peak_y": CHART_HEIGHT - CHART_BOTTOM - plot_height + 4,
            "label_y": CHART_HEIGHT - 6,
            "totals": {name: sum(getattr(day, name) for day in days) for name in ("posted", "failed", "waiting")},
        })
    return panels


def company_label(company: Company) -> str:
    return f"{company.name} ({company.org_number})" if company.org_number else company.name
