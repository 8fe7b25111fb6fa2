"""``manage.py netseasy_sync COMPANY [--from DATE] [--json]``: read Nets Easy payouts and book them now."""

import datetime as dt

from django.core.management.base import CommandError

from bookkeeping.management.base import KonteraCommand

from ...selectors import nets_integration
from ...services.sync import payouts_sync


class Command(KonteraCommand):
    help = "Read the company's Nets Easy payouts (all pages) and book those not booked yet. Exit 1 on any problem."

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="The company's slug.")
        parser.add_argument("--from", dest="from_date", help="Read payouts from this date (default: the start date).")

    def run(self, **options):
        company = self.company(options["company"])
        integration = nets_integration(company)
        if integration is None:
            raise CommandError(f"Nets Easy is not set up for {company.slug}. Run: manage.py netseasy_setup")
        from_date = None
        if options["from_date"]:
            try:
                from_date = dt.date.fromisoformat(options["from_date"])
            except ValueError:
                raise CommandError("--from takes a date as YYYY-MM-DD.") from None
        result = payouts_sync(integration=integration, from_date=from_date, actor="manage.py netseasy_sync",
                              progress=lambda message, **_n: self.progress(str(message)))
        return result.as_dict()
