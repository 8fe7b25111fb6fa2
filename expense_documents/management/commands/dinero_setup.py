from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from bookkeeping.management.base import KonteraCommand, add_secret_arguments, read_secret

from ...services.dinero_setup import SetupError, dinero_setup_steps


class Command(KonteraCommand):
    help = ("Set up the Dinero integration of a company in the wizard's order (README, 'Setting up each flow'). "
            "First the connection, which imports the chart: dinero_setup COMPANY --organization-id ID, the "
            "organisation chosen from those a Visma Connect consent reaches (run dinero_connect COMPANY first) — how "
            "a bureau connects its clients; or an API key and --organization-id ID, Dinero's personal integration, "
            "only for a company's own Dinero: the key from --api-key-file PATH, --api-key - (standard input) or "
            "DINERO_API_KEY (on the command line every local user can read it); stored encrypted, never printed. Then import the payment "
            "methods; then dinero_setup COMPANY --error-account N [--import-chart] --invoice-payment-method "
            "ACCOUNT|NAME --receipt-payment-methods LIST, which finishes. All options in one call do everything at "
            "once.")

    secret = {"flag": "--api-key", "env_var": "DINERO_API_KEY",
              "what": "the organisation's Dinero API key (personal integration only)"}

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="The company's slug.")
        add_secret_arguments(parser, flag=self.secret["flag"], env_var=self.secret["env_var"],
                             what=self.secret["what"])
        parser.add_argument("--organization-id", help="Dinero's firma-ID (a number): the connection step.")
        parser.add_argument("--accept-other-cvr", action="store_true",
                            help="Connect although the organisation's CVR differs from the company's (recorded).")
        parser.add_argument("--error-account", type=int,
                            help="Default category / error account for documents without a category.")
        parser.add_argument("--import-chart", action="store_true",
                            help="With --error-account: the whole Dinero chart serves as categories (otherwise "
                                 "manual categories).")
        parser.add_argument("--invoice-payment-method",
                            help="Default payment method / counter account for invoices (account number or name).")
        parser.add_argument("--receipt-payment-methods",
                            help="The payment-method list for receipts (its name or id).")
        parser.add_argument("--no-booking", action="store_true", help="Leave vouchers as drafts in Dinero.")
        parser.add_argument("--rate-limit", type=int, default=None, help="Requests per minute (at most 100).")
        parser.add_argument("--connect-anyway", default="", metavar="NOTE",
                            help="Connect even though the organisation's CVR is not the company's; the note (why "
                                 "this is right) goes into the audit trail.")

    def run(self, **options):
        company = self.company(options["company"])
        # Optional: without a key the Visma Connect consent is used (so nothing is prompted for).
        api_key = read_secret(self, options, required=False, **self.secret)
        try:
            return dinero_setup_steps(
                company=company, api_key=api_key, organization_id=options["organization_id"],
                error_account=options["error_account"], import_chart=options["import_chart"],
                invoice_payment_method=options["invoice_payment_method"],
                receipt_payment_list=options["receipt_payment_methods"], book_vouchers=not options["no_booking"],
                rate_limit_per_minute=options["rate_limit"], accept_other_cvr=options["accept_other_cvr"],
                actor="command", connect_anyway=options["connect_anyway"],
            )
        except SetupError as exc:
            raise CommandError(exc.message) from None

    def render(self, result):
        if result["finished"]:
            self.stdout.write(_("Dinero is set up for %(company)s (%(organisation)s): documents are synced from now "
                                "on.") % result)
        else:
            self.stdout.write(_("Dinero setup of %(company)s: done so far: %(done)s.")
                              % {"company": result["company"], "done": ", ".join(result["steps_done"]) or "–"})
        for key in ("organisation", "connection", "api_key", "error_account", "import_chart",
                    "invoice_counter_account", "receipt_payment_list", "accounts", "vat_codes"):
            self.stdout.write(f"{key}: {result[key]}")
        for step in result["next"]:
            self.stdout.write(_("Next: %(step)s") % {"step": step})
