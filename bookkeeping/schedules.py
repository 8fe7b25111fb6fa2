"""Every recurring job, declared in one place; ``manage.py setup_schedules`` makes the database match."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: int
    description: str


SCHEDULES: list[ScheduleSpec] = [
    ScheduleSpec("kontera: sweep vouchers", "bookkeeping.tasks.sweep", 1,
                 "Recover interrupted sends and start dispatchers for retries that came due."),
    ScheduleSpec("kontera: refresh idle OAuth connections", "bookkeeping.tasks.refresh_idle_tokens", 24 * 60,
                 "Refresh Fortnox and Visma Connect (Dinero) connections idle for a week, well before their "
                 "refresh tokens expire."),
    ScheduleSpec("kontera: sync expense documents", "expense_documents.tasks.sync_documents", 1,
                 "Apply workflow rules to new and changed expense documents and queue them for Dinero."),
    ScheduleSpec("kontera: sync Nets Easy payouts", "card_payments.tasks.sync_all", 60,
                 "Read new Nets Easy payouts of every active integration and book them in Fortnox."),
    ScheduleSpec("kontera: Nets Easy test-voucher e-mail", "card_payments.tasks.test_voucher_followups", 1,
                 "E-mail staff the Fortnox number (or the failure) of a Nets Easy test voucher once known."),
    ScheduleSpec("kontera: retention", "operations.tasks.prune", 24 * 60,
                 "Prune task results, OAuth states, rate-limit rows and technical audit events past their "
                 "retention; the bookkeeping audit trail is kept as long as the accounting law asks."),
]
