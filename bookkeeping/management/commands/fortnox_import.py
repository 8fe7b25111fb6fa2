from django.core.management.base import CommandError

from bookkeeping.management.base import KonteraCommand
from bookkeeping.services.integrations import integration_needs_reauthorisation
from bookkeeping.services.plans import chart_import
from integrations.base import AuthError, ConnectorError
from integrations.models import Integration


class Command(KonteraCommand):
    help = "Import Fortnox master data (all pages of accounts, cost centres, series, years, locked period)."

    def add_command_arguments(self, parser):
        parser.add_argument("company")

    def run(self, **options):
        company = self.company(options["company"])
        integration = Integration.objects.filter(company=company, system="fortnox").first()
        if integration is None:
            raise CommandError("This company has no Fortnox integration; run fortnox_connect first.")
        try:
            summary = chart_import(integration=integration, actor="command", progress=self.progress)
        except AuthError as exc:
            integration_needs_reauthorisation(integration=integration, reason=exc.message, actor="command")
            return {"ok": False, "error": exc.message}
        except ConnectorError as exc:
            return {"ok": False, "error": exc.message}
        return summary.__dict__
