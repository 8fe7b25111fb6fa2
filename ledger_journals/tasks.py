"""Background tasks of the ledger-journal flow: thin shells over its services."""

from __future__ import annotations

from .services.journal_import_jobs import journal_import_run as run


def journal_import_run(job_id: int) -> str:
    return run(job_id=job_id)
