from pathlib import Path

from django.core.management.base import CommandError

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
        if not path.exists():
            raise CommandError(f"No such file: {path}")
        try:
            result = journals_import(company=company, data=path.read_bytes(), filename=path.name,
                                     series=options.get("series"), actor="command")
        except JournalImportError as exc:
            return {"ok": False, "imported": 0, "errors": [{"line": line, "message": msg} for line, msg in exc.errors]}
        return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged,
                "journals": result.journals}

    def render(self, result):
        if not result["ok"]:
            self.stderr.write("Nothing was imported:")
            for error in result["errors"]:
                self.stderr.write(f"  line {error['line']}: {error['message']}" if error["line"] else
                                  f"  {error['message']}")
            return
        self.stdout.write(f"{result['created']} new, {result['updated']} updated, "
                          f"{result['unchanged']} unchanged journals.")
