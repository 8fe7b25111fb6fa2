"""Retention: technical rows pruned after their configured days; the bookkeeping audit trail kept at
least as long as the accounting law asks (Sweden 7 years, Denmark 5), then pruned too."""

import datetime as dt
import time
import uuid

from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule, Task

from bookkeeping.models import AuditEvent
from bookkeeping.schedules import SCHEDULES
from bookkeeping.services.audit import audit_record
from integrations.models import OAuthState, RateLimitSlot
from operations.checks import retention_within_the_law
from operations.retention import bookkeeping_cutoff, retention_prune
from tests.factories import CompanyFactory, IntegrationFactory, balanced_voucher

NOW = timezone.make_aware(dt.datetime(2026, 6, 15, 12, 0))


def aged(obj, field: str, when: dt.datetime):
    type(obj).objects.filter(pk=obj.pk).update(**{field: when})
    return obj


def task(success: bool, days_ago: int) -> Task:
    stopped = NOW - dt.timedelta(days=days_ago)
    return Task.objects.create(id=uuid.uuid4().hex, name=uuid.uuid4().hex, func="x.y", started=stopped,
                               stopped=stopped, success=success)


def event(days_ago: float = 0, *, years_ago: int = 0, **kwargs) -> AuditEvent:
    when = NOW.replace(year=NOW.year - years_ago) - dt.timedelta(days=days_ago)
    return aged(audit_record(**kwargs), "created_at", when)


def test_legal_periods_count_from_the_end_of_the_year():
    today = dt.date(2026, 6, 15)
    # Sweden: kept to the end of the 7th year after the year the financial year ended (which may be next year)
    assert bookkeeping_cutoff("SE", today=today).date() == dt.date(2018, 1, 1)
    assert bookkeeping_cutoff("DK", today=today).date() == dt.date(2020, 1, 1)
    assert bookkeeping_cutoff(None, today=today).date() == dt.date(2018, 1, 1)  # unknown: the longest


def test_prune_forgets_technical_rows_and_keeps_the_bookkeeping_trail(db, settings):
    settings.KONTERA_RETENTION = {**settings.KONTERA_RETENTION, "task_successes_days": 14, "task_failures_days": 90,
                                  "oauth_states_days": 7, "rate_limit_rows_days": 30, "technical_audit_days": 180}
    old_success, new_success = task(True, 15), task(True, 13)
    old_failure, new_failure = task(False, 91), task(False, 89)
    integration = IntegrationFactory(company=CompanyFactory(), system="fortnox")
    old_state = aged(OAuthState.objects.create(state="a" * 20, integration=integration), "created_at",
                     NOW - dt.timedelta(days=8))
    new_state = aged(OAuthState.objects.create(state="b" * 20, integration=integration), "created_at",
                     NOW - dt.timedelta(days=6))
    idle = RateLimitSlot.objects.create(key="fortnox:idle", next_at=time.time() - 31 * 86400,
                                        paused_until=time.time() - 40 * 86400)
    busy = RateLimitSlot.objects.create(key="fortnox:busy", next_at=time.time() - 31 * 86400,
                                        paused_until=time.time() - 86400)

    se = CompanyFactory(country="SE")
    dk = CompanyFactory(country="DK", base_currency="DKK")
    se_voucher = balanced_voucher(se)
    technical_old = event(181, action="master_data:import", company=se, message="imported")
    technical_new = event(179, action="master_data:import", company=se, message="imported")
    technical_with_voucher = event(400, action="master_data:import", voucher=se_voucher, message="kept: a voucher")
    se_9_years_ago = event(years_ago=9, action="state:sending->posted", voucher=se_voucher, message="Posted")
    se_8_years_ago = event(years_ago=8, action="state:sending->posted", voucher=se_voucher, message="Posted")
    dk_7_years_ago = event(years_ago=7, action="expense:voucher_created", company=dk, message="Created")
    dk_6_years_ago = event(years_ago=6, action="expense:voucher_created", company=dk, message="Created")
    nobody_8_years_ago = event(years_ago=8, action="company:created", message="no company")

    result = retention_prune(now=NOW)

    assert result.as_dict() == {"task_successes": 1, "task_failures": 1, "oauth_states": 1, "rate_limit_rows": 1,
                                "technical_audit_events": 1, "bookkeeping_audit_events": 2}
    assert set(Task.objects.values_list("id", flat=True)) == {new_success.id, new_failure.id}
    assert not Task.objects.filter(id__in=[old_success.id, old_failure.id]).exists()
    assert list(OAuthState.objects.values_list("pk", flat=True)) == [new_state.pk]
    assert not OAuthState.objects.filter(pk=old_state.pk).exists()
    assert list(RateLimitSlot.objects.values_list("pk", flat=True)) == [busy.pk] and idle.pk != busy.pk
    remaining = set(AuditEvent.objects.values_list("pk", flat=True))
    assert {technical_new.pk, technical_with_voucher.pk, se_8_years_ago.pk, dk_6_years_ago.pk, nobody_8_years_ago.pk} <= remaining
    assert not remaining & {technical_old.pk, se_9_years_ago.pk, dk_7_years_ago.pk}


def test_settings_below_the_law_are_an_error_and_never_shorten_the_trail(db, settings):
    assert retention_within_the_law(None) == []
    settings.KONTERA_RETENTION = {**settings.KONTERA_RETENTION, "bookkeeping_audit_years_se": 3}
    assert [e.id for e in retention_within_the_law(None)] == ["kontera.E001"]
    assert bookkeeping_cutoff("SE", today=dt.date(2026, 6, 15)).date() == dt.date(2018, 1, 1)


def test_the_scheduler_runs_it_daily(db):
    spec = next(spec for spec in SCHEDULES if spec.func == "operations.tasks.prune")
    assert spec.minutes == 24 * 60
    call_command("setup_schedules")
    assert Schedule.objects.get(name=spec.name).func == "operations.tasks.prune"
    from operations.tasks import prune

    assert set(prune()) == {"task_successes", "task_failures", "oauth_states", "rate_limit_rows",
                            "technical_audit_events", "bookkeeping_audit_events"}
