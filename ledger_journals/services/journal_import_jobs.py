"""Big journal files: confirmed in the admin, imported by a worker, followed on a page of their own.

The import itself is the same all-or-nothing ``journals_import`` the request runs for small files; only
where it runs changes. A job runs once: the worker claims it in a transaction of its own, and a claim
left by a worker that died (running longer than a task may live) is taken again — the import's own
transaction rolled back with the worker, so nothing was half written.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from bookkeeping.services.audit import Actor, audit_record
from wording import Msg, stored

from ..models import JournalImportJob
from .journal_import import JournalImportError, journals_import

J = JournalImportJob.State


def in_worker(size: int) -> bool:
    """Whether a confirmed file of ``size`` bytes is imported by a worker rather than in the request."""
    return size > settings.KONTERA_JOURNAL_IMPORT_IN_WORKER_BYTES


def journal_import_enqueue(*, company, data: bytes, filename: str, series: str | None, user) -> JournalImportJob:
    """Keep the file with the job and hand it to a worker once this transaction commits."""
    job = JournalImportJob.objects.create(company=company, requested_by=user, filename=filename[:255],
                                          series=series or "", data=data, size=len(data))
    audit_record(action="journals:import_queued", company=company, actor=user,
                 message=Msg("Journal file %(file)s (%(size)s bytes) handed to a worker for import.",
                             file=job.filename, size=job.size))
    transaction.on_commit(lambda: async_task("ledger_journals.tasks.journal_import_run", job.pk,
                                             task_name=f"journal-import-{job.pk}"))
    return job


def _stale_after() -> timedelta:
    return timedelta(seconds=int(settings.Q_CLUSTER.get("timeout", 300)) + 60)


def journal_import_run(*, job_id: int, actor: Actor = "worker") -> str:
    """Import a job's file; returns its state afterwards. Runs at most once to the end, whoever calls."""
    now = timezone.now()
    with transaction.atomic():
        # of=self: the requester may be gone (a nullable join cannot be locked on PostgreSQL)
        job = JournalImportJob.objects.select_for_update(of=("self",)).select_related("company", "requested_by") \
            .filter(pk=job_id).first()
        if job is None or job.finished:
            return job.state if job else "missing"
        if job.state == J.RUNNING and job.started_at and now - job.started_at < _stale_after():
            return job.state  # another worker is on it
        job.state, job.started_at, job.attempts = J.RUNNING, now, job.attempts + 1
        job.save(update_fields=["state", "started_at", "attempts"])
    data = bytes(job.data)
    who = job.requested_by or actor
    try:
        result = journals_import(company=job.company, data=data, filename=job.filename, series=job.series or None,
                                 actor=who)
    except JournalImportError as exc:
        job.state, job.errors = J.REFUSED, [[line, stored(message)] for line, message in exc.errors]
        audit_record(action="journals:import_refused", company=job.company, actor=who,
                     message=Msg("Journal file %(file)s refused; nothing was imported.", file=job.filename))
    else:
        job.state, job.result = J.DONE, {"created": result.created, "updated": result.updated,
                                         "unchanged": result.unchanged, "waiting": result.waiting}
    job.finished_at, job.data = timezone.now(), b""  # the file is not kept once imported
    job.save(update_fields=["state", "errors", "result", "finished_at", "data"])
    return job.state
