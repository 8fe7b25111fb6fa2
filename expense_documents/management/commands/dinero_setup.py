from django.core.management.base import CommandError

from bookkeeping.management.base import KonteraCommand

from ...services.dinero_setup import SetupError, dinero_setup


class Command(KonteraCommand):
    help = ("Set up the Dinero integration of a company (the admin wizard's twin): dinero_setup COMPANY "
            "--organization-id ID --error-account N [--import-chart] --invoice-payment-method ACCOUNT|NAME "
            "--receipt-payment-methods LIST. Without --api-key the organisation is chosen from those a Visma Connect "
            "consent reaches (run dinero_connect COMPANY first): how a bureau connects its clients. --api-key is "
            "Dinero's personal integration, only for a company's own Dinero; the key is stored encrypted and never "
            "printed.")

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="The company's slug.")
        parser.add_argument("--api-key", default=None,
                            help="Personal integration only (the company's own Dinero): the organisation's API key. "
                                 "Leave out to use the Visma Connect consent given through dinero_connect.")
        parser.add_argument("--organization-id", required=True, help="Dinero's firma-ID (a number).")
        parser.add_argument("--accept-other-cvr", action="store_true",
                            help="Connect although the organisation's CVR differs from the company's (recorded).")
        parser.add_argument("--error-account", required=True, type=int,
                            help="Default category / error account for documents without a category.")
        parser.add_argument("--import-chart", action="store_true",
                            help="Import the whole Dinero chart as categories (otherwise keep manual categories).")
        parser.add_argument("--invoice-payment-method", required=True,
                            help="Default payment method / counter account for invoices (account number or name).")
        parser.add_argument("--receipt-payment-methods", required=True,
                            help="The payment-method list for receipts (its name or id).")
        parser.add_argument("--no-booking", action="store_true", help="Leave vouchers as drafts in Dinero.")
        parser.add_argument("--rate-limit", type=int, default=None, help="Requests per minute (at most 100).")
        parser.add_argument("--connect-anyway", default="", metavar="NOTE",
                            help="Connect even though the organisation's CVR is not the company's; the note (why "
                                 "this is right) goes into the audit trail.")

    def run(self, **options):
        company = self.company(options["company"])
        try:
            return dinero_setup(
                company=company, api_key=options["api_key"], organization_id=options["organization_id"],
                error_account=options["error_account"], import_chart=options["import_chart"],
                invoice_payment_method=options["invoice_payment_method"],
                receipt_payment_list=options["receipt_payment_methods"], book_vouchers=not options["no_booking"],
                rate_limit_per_minute=options["rate_limit"], accept_other_cvr=options["accept_other_cvr"],
                actor="command", connect_anyway=options["connect_anyway"],
            )
        except SetupError as exc:
            raise CommandError(exc.message) from None
