import datetime as dt
import time

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from bookkeeping.management.base import KonteraCommand
from bookkeeping.models import Voucher, VoucherState
from bookkeeping.services.sending import vouchers_dispatch

from ...selectors import journals_selection
from ...services.journal_push import journals_push

FINAL = (VoucherState.POSTED, VoucherState.FAILED, VoucherState.AWAITING_AUTHORISATION, VoucherState.AWAITING_MAPPING)


class Command(KonteraCommand):
    help = ("Send a company's journals to Fortnox: by journal id, by date, or all of them. "
            "Prints progress; exits non-zero if any journal failed or waits for authorisation.")

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="Company slug")
        parser.add_argument("--journal", action="append", default=[], help="Journal id (repeatable), e.g. A25")
        parser.add_argument("--date", help="Only journals of this date (YYYY-MM-DD)")
        parser.add_argument("--all", action="store_true", help="Every journal not yet posted")
        parser.add_argument("--no-wait", action="store_true", help="Queue for the worker and return at once")

    def run(self, **options):
        company = self.company(options["company"])
        day = None
        if options.get("date"):
            try:
                day = dt.date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError("--date must be YYYY-MM-DD") from None
        if not (options["journal"] or day or options["all"]):
            raise CommandError("Choose what to send: --journal ID, --date YYYY-MM-DD or --all")
        selected = journals_selection(company=company, references=options["journal"], day=day,
                                      everything=options["all"])
        ids = list(selected.values_list("id", flat=True))
        missing = sorted(set(options["journal"]) - set(selected.values_list("source_reference", flat=True)))
        queued = journals_push(company=company, references=options["journal"], day=day,
                               everything=options["all"], actor="command")
        if not options["no_wait"]:
            self._send_with_progress(ids)
        vouchers = Voucher.objects.filter(id__in=ids).order_by("date", "id")
        rows = [{"journal": v.source_reference, "date": v.date, "state": v.state, "fortnox": v.remote_label,
                 "error": v.last_error} for v in vouchers]
        held_back = queued.failed + queued.awaiting_mapping
        ok = not missing and all(r["state"] == VoucherState.POSTED for r in rows) if not options["no_wait"] else \
            not missing and held_back == 0
        # "refused": held back by the pre-flight check, whether for good or until a value is mapped.
        return {"ok": ok, "queued": queued.queued, "refused": held_back,
                "waiting_for_mapping": queued.awaiting_mapping, "unknown_journals": missing, "journals": rows}

    def _send_with_progress(self, ids):
        total = len(ids)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            vouchers_dispatch(max_seconds=30)
            done = Voucher.objects.filter(id__in=ids, state__in=FINAL).count()
            self.progress(f"{done}/{total} done")
            pending = Voucher.objects.filter(id__in=ids, state__in=[VoucherState.QUEUED, VoucherState.SENDING])
            if not pending.exists():
                return
            if not pending.filter(next_attempt_at__isnull=True).exists():
                return  # only scheduled retries remain; the worker takes them from here

    def render(self, result):
        for row in result["journals"]:
            line = f"{row['journal']:<12} {row['date']} {row['state']:<24} {row['fortnox'] or ''}"
            self.stdout.write(line + (f"  {row['error']}" if row["error"] and row["state"] != "posted" else ""))
        for ref in result["unknown_journals"]:
            self.stderr.write(f"No journal {ref} for this company.")
        self.stdout.write(_("queued %(queued)s, refused by the pre-flight check %(refused)s") % result)
        if result["waiting_for_mapping"]:
            self.stdout.write(_("%(n)s of them wait for a mapping: map the values with manage.py import "
                                "bookkeeping.resources.AccountMappingResource FILE or on the admin page “Values "
                                "without a mapping”; they are sent by themselves afterwards.")
                              % {"n": result["waiting_for_mapping"]})
