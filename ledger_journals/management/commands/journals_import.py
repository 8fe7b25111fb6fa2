from pathlib import Path

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from bookkeeping.limits import FileTooLarge, check_upload_size
from bookkeeping.management.base import KonteraCommand

from ...services.journal_import import JournalImportError, journals_import


class Command(KonteraCommand):
    help = ("Import journals for a company from a SIE 4 file (4E/4I) or a CSV file "
            "(journal,date,series,account,debit,credit,cost_centre,project,text). All or nothing.")

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="Company slug")
        parser.add_argument("file")
        parser.add_argument("--series", help="Voucher series for every journal (default: the file's, if Fortnox "
                                             "has it, else the company's default series)")

    def run(self, **options):
        company = self.company(options["company"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(_("No such file: %(path)s") % {"path": path})
        try:
            check_upload_size("journals", path.stat().st_size)  # before reading it
        except FileTooLarge as exc:
            return {"ok": False, "imported": 0, "errors": [{"line": 0, "message": str(exc)}]}
        try:
            result = journals_import(company=company, data=path.read_bytes(), filename=path.name,
                                     series=options.get("series"), actor="command")
        except JournalImportError as exc:
            return {"ok": False, "imported": 0, "errors": [{"line": line, "message": msg} for line, msg in exc.errors]}
        return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged,
                "journals": result.journals}

    def render(self, result):
        if not result["ok"]:
            self.stderr.write(_("Nothing was imported:"))
            for error in result["errors"]:
                self.stderr.write("  " + (_("line %(line)s: %(message)s") % error if error["line"] else
                                          error["message"]))
            return
        self.stdout.write(_("%(created)s new, %(updated)s updated, %(unchanged)s unchanged journals.") % result)
