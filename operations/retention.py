"""Retention: what Kontera forgets, and when. Run daily by the scheduler (``retention_prune``).

Pruned after a configurable number of days (settings.KONTERA_RETENTION): django-q2's task results
(successes and failures), OAuth ``state`` rows, idle rate-limit rows, and technical audit events
(plumbing with no voucher: master-data imports, key checks, sync runs, …).

Kept: the bookkeeping audit trail — who sent which voucher where, with what result — for at least
as long as the accounting law asks, counted conservatively from the end of the calendar year after
the event (a financial year may end in the next calendar year):
- Sweden, Bokföringslagen (1999:1078) 7 kap. 2 §: until the end of the seventh year after the end
  of the calendar year in which the financial year ended.
- Denmark, Bogføringsloven (lov nr. 700 af 24. maj 2022) § 12: five years from the end of the
  financial year the material concerns.
An event whose company is unknown (deleted) is kept for the longest period.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

LEGAL_MINIMUM_YEARS = {"SE": 7, "DK": 5}

# Audit actions that record plumbing, not bookkeeping; pruned only when no voucher is attached.
TECHNICAL_ACTIONS = (
    "master_data:import",
    "netseasy:sync",
    "netseasy:key_check",
    "netseasy:test_voucher_mail",
    "fortnox:authorise_started",
)


@dataclass
class RetentionResult:
    task_successes: int = 0
    task_failures: int = 0
    oauth_states: int = 0
    rate_limit_rows: int = 0
    technical_audit_events: int = 0
    bookkeeping_audit_events: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def retention_years(country: str | None) -> int:
    """Years the bookkeeping audit trail is kept for a company in ``country`` (never under the law)."""
    configured = settings.KONTERA_RETENTION
    if country in LEGAL_MINIMUM_YEARS:
        years = configured.get(f"bookkeeping_audit_years_{country.lower()}", LEGAL_MINIMUM_YEARS[country])
        return max(years, LEGAL_MINIMUM_YEARS[country])
    return max(retention_years(c) for c in LEGAL_MINIMUM_YEARS)


def bookkeeping_cutoff(country: str | None, *, today: dt.date) -> dt.datetime:
    """Events before this instant are past their legal period: 1 January of (this year − years − 1)."""
    start = dt.date(today.year - retention_years(country) - 1, 1, 1)
    return timezone.make_aware(dt.datetime.combine(start, dt.time.min))


def _technical() -> Q:
    return Q(voucher__isnull=True, action__in=TECHNICAL_ACTIONS)


def retention_prune(*, now: dt.datetime | None = None) -> RetentionResult:
    """Delete what is past its retention; returns how many rows of each kind went."""
    from django_q.models import Task

    from bookkeeping.models import AuditEvent
    from integrations.models import OAuthState, RateLimitSlot

    now = now or timezone.now()
    days = settings.KONTERA_RETENTION
    result = RetentionResult()

    def older(key: str) -> dt.datetime:
        return now - dt.timedelta(days=days[key])

    result.task_successes = Task.objects.filter(success=True, stopped__lt=older("task_successes_days")).delete()[0]
    result.task_failures = Task.objects.filter(success=False, stopped__lt=older("task_failures_days")).delete()[0]
    result.oauth_states = OAuthState.objects.filter(created_at__lt=older("oauth_states_days")).delete()[0]
    idle_since = time.time() - days["rate_limit_rows_days"] * 86400
    result.rate_limit_rows = RateLimitSlot.objects.filter(next_at__lt=idle_since,
                                                          paused_until__lt=idle_since).delete()[0]

    # The audit trail is append-only for everyone else; retention is its only deletion.
    events = AuditEvent.objects.all()
    result.technical_audit_events = events.filter(
        _technical(), created_at__lt=older("technical_audit_days")).delete()[0]
    today = timezone.localdate(now)
    bookkeeping = events.exclude(_technical())
    for country in LEGAL_MINIMUM_YEARS:
        result.bookkeeping_audit_events += bookkeeping.filter(
            company__country=country, created_at__lt=bookkeeping_cutoff(country, today=today)).delete()[0]
    result.bookkeeping_audit_events += bookkeeping.filter(
        Q(company__isnull=True) | ~Q(company__country__in=list(LEGAL_MINIMUM_YEARS)),
        created_at__lt=bookkeeping_cutoff(None, today=today)).delete()[0]
    return result
