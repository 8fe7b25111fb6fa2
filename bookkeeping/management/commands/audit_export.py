import datetime as dt
from pathlib import Path

from django.core.management.base import CommandError

from ...services.audit_export import audit_csv_lines, audit_events_for_export
from ..base import KonteraCommand


class Command(KonteraCommand):
    help = "Export the audit trail (who sent which voucher where, with what result) as CSV for an auditor."

    def add_command_arguments(self, parser):
        parser.add_argument("company", nargs="?", help="Company slug (all companies when left out)")
        parser.add_argument("--from", dest="date_from")
        parser.add_argument("--to", dest="date_to")
        parser.add_argument("--output", required=True, help="File to write")

    def run(self, **options):
        company = self.company(options["company"]) if options["company"] else None
        try:
            date_from = dt.date.fromisoformat(options["date_from"]) if options["date_from"] else None
            date_to = dt.date.fromisoformat(options["date_to"]) if options["date_to"] else None
        except ValueError:
            raise CommandError("--from and --to must be YYYY-MM-DD") from None
        events = audit_events_for_export(company=company, date_from=date_from, date_to=date_to)
        path = Path(options["output"])
        rows = -1  # the header is not an event
        with path.open("w", encoding="utf-8", newline="") as out:
            for line in audit_csv_lines(events):
                out.write(line)
                rows += 1
        return {"file": str(path), "events": rows}
