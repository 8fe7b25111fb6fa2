"""The audit trail as CSV for an auditor: who did what to which voucher, where, with what result.

Formula-safe: a cell a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) gets a leading apostrophe, as OWASP advises for CSV injection
(https://owasp.org/www-community/attacks/CSV_Injection). Messages are stored redacted already.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import AuditEvent

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def audit_events_for_export(*, queryset: QuerySet[AuditEvent] | None = None, company=None,
                            date_from: dt.date | None = None, date_to: dt.date | None = None) -> QuerySet[AuditEvent]:
    events = (queryset if queryset is not None else AuditEvent.objects.all()).select_related(
        "company", "voucher", "integration")
    if company is not None:
        events = events.filter(company=company)
    if date_from:
        events = events.filter(created_at__date__gte=date_from)
    if date_to:
        events = events.filter(created_at__date__lte=date_to)
    return events.order_by("created_at", "id")


def audit_csv_header() -> list[str]:
    return [_("time"), _("company"), _("organisation number"), _("user"), _("action"), _("outcome"),
            _("HTTP status"), _("voucher"), _("our reference"), _("target system"), _("target voucher"),
            _("message")]


def _row(event: AuditEvent) -> list[str]:
    voucher = event.voucher
    target = ""
    if voucher is not None and voucher.remote_id:
        target = " ".join(p for p in (voucher.remote_series, voucher.remote_number, voucher.remote_year) if p) \
            or voucher.remote_id
    system = voucher.get_system_display() if voucher is not None else (
        event.integration.get_system_display() if event.integration is not None else "")
    return [
        timezone.localtime(event.created_at).isoformat(timespec="seconds"),
        event.company.name if event.company else "",
        event.company.org_number if event.company else "",
        event.actor_label,
        event.action,
        event.get_outcome_display(),
        event.http_status or "",
        voucher.pk if voucher is not None else "",
        voucher.reference if voucher is not None else "",
        system,
        target,
        event.message,
    ]


class _Line:
    """A file-like that hands back what csv.writer wrote (for streaming)."""

    def write(self, value: str) -> str:
        return value


def audit_csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """CSV lines (header first), formula-safe; made lazily, so a seven-year trail streams."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow([formula_safe(c) for c in audit_csv_header()])  # BOM: Excel reads UTF-8
    for event in events.iterator(chunk_size=2000) if isinstance(events, QuerySet) else events:
        yield writer.writerow([formula_safe(cell) for cell in _row(event)])
