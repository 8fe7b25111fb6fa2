import datetime as dt
from pathlib import Path

from django.core.management.base import CommandError

from bookkeeping.services.sie_export import sie_export_write

from ..base import KonteraCommand


class Command(KonteraCommand):
    help = "Write what was posted to Fortnox for a company and period as a SIE 4E file (PC8)."

    def add_command_arguments(self, parser):
        parser.add_argument("company")
        parser.add_argument("--from", dest="date_from", required=True)
        parser.add_argument("--to", dest="date_to", required=True)
        parser.add_argument("--output", required=True, help="File to write")

    def run(self, **options):
        company = self.company(options["company"])
        try:
            date_from = dt.date.fromisoformat(options["date_from"])
            date_to = dt.date.fromisoformat(options["date_to"])
        except ValueError:
            raise CommandError("--from and --to must be YYYY-MM-DD") from None
        path = Path(options["output"])
        # Into a file beside the target, renamed when complete: never a half-written export.
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as out:
                vouchers = sie_export_write(company=company, date_from=date_from, date_to=date_to, out=out)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return {"file": str(path), "bytes": path.stat().st_size, "vouchers": vouchers}
