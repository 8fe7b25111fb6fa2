"""After restoring an older backup: what was sent after the backup must never be sent again.

The restored database does not know what left after the backup was taken. Two things keep the
"nothing posted twice" promise:
- every voucher not known as posted is marked "outcome unknown" (``pending_since``), so its next
  attempt first looks it up in the target by our reference, as after a lost answer;
- the voucher numbering jumps ahead, so a new voucher never gets the reference (``KONTERA-<id>``)
  of one that was created and sent after the backup — a look-up would mistake one for the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from bookkeeping.models import AuditEvent, Voucher, VoucherState
from bookkeeping.services.audit import audit_record

NOT_KNOWN_AS_POSTED = (VoucherState.DRAFT, VoucherState.QUEUED, VoucherState.SENDING, VoucherState.FAILED,
                       VoucherState.AWAITING_AUTHORISATION)
ID_GAP = 1_000_000


@dataclass
class RestoreResult:
    marked_outcome_unknown: int
    next_voucher_id: int

    def as_dict(self) -> dict:
        return asdict(self)


def _advance_voucher_ids(gap: int) -> int:
    table = Voucher._meta.db_table
    start = (Voucher.objects.aggregate(top=Max("id"))["top"] or 0) + gap
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)", [table, start])
        elif connection.vendor == "sqlite":
            # Django's SQLite primary keys are AUTOINCREMENT: the counter lives in sqlite_sequence.
            cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [start - 1, table])
            if cursor.rowcount == 0:
                cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, start - 1])
        else:  # pragma: no cover - Kontera runs on PostgreSQL and SQLite
            raise NotImplementedError(connection.vendor)
    return start


def after_restore(*, actor: str = "operator", gap: int = ID_GAP) -> RestoreResult:
    """Run once after a restore, before the workers start."""
    now = timezone.now()
    marked = 0
    with transaction.atomic():
        waiting = Voucher.objects.select_for_update().filter(state__in=NOT_KNOWN_AS_POSTED, pending_since__isnull=True)
        for voucher in waiting:
            voucher.pending_since = now
            voucher.save(update_fields=["pending_since", "updated_at"])
            audit_record(action="restore:outcome_unknown", outcome=AuditEvent.Outcome.INFO, actor=actor,
                         voucher=voucher, message=_("Restored from a backup: looked up in the target before any post."))
            marked += 1
        next_id = _advance_voucher_ids(gap)
    return RestoreResult(marked_outcome_unknown=marked, next_voucher_id=next_id)
