from pathlib import Path

from django.core.management.base import CommandError

from bookkeeping.management.base import KonteraCommand

from ...services.csv_import import documents_import


class Command(KonteraCommand):
    help = ("Import expense documents from CSV: documents_import COMPANY FILE [--dry-run] [--json]. Columns: "
            "reference,type,supplier,supplier_vat,date,due_date,description,amount,vat_code,category,currency,"
            "amount_dkk,payment_method,attachment (one row per line; attachment paths relative to the file). "
            "Nothing is written when any row is bad.")

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="The company's slug.")
        parser.add_argument("file", help="The CSV file.")
        parser.add_argument("--dry-run", action="store_true", help="Check and show what would change; write nothing.")

    def run(self, **options):
        company = self.company(options["company"])
        path = Path(options["file"])
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8 text.") from None
        result = documents_import(company=company, text=text, dry_run=options["dry_run"], actor="command",
                                  attachment_root=path.resolve().parent, allow_outside_root=True)
        return {"company": company.slug, **result.as_dict()}

    def render(self, result):
        verb = "would be" if result["dry_run"] else "were"
        for error in result["errors"]:
            self.stdout.write(f"line {error['line']}, {error['field']}: {error['message']}")
        if result["errors"]:
            self.stdout.write(f"Nothing was imported: {len(result['errors'])} problem(s).")
            return
        for doc in result["documents"]:
            self.stdout.write(f"{doc['action']:9} {doc['reference']} {doc['supplier']} {doc['total']} {doc['currency']}")
        self.stdout.write(f"{result['created']} created, {result['updated']} updated, "
                          f"{result['unchanged']} unchanged ({verb} written).")
