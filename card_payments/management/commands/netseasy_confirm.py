"""``manage.py netseasy_confirm COMPANY``: the OK button — automatic booking starts."""

from django.core.management.base import CommandError

from bookkeeping.management.base import KonteraCommand

from ...selectors import nets_integration
from ...services.activation import netseasy_confirm


class Command(KonteraCommand):
    help = "Confirm the Nets Easy test voucher looked right in Fortnox: automatic booking starts."

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="The company's slug.")

    def run(self, **options):
        company = self.company(options["company"])
        integration = nets_integration(company)
        if integration is None:
            raise CommandError(f"Nets Easy is not set up for {company.slug}. Run: manage.py netseasy_setup")
        ok, message = netseasy_confirm(integration=integration, actor="manage.py netseasy_confirm")
        integration.refresh_from_db()
        return {"ok": ok, "company": company.slug, "status": integration.status, "message": message}
