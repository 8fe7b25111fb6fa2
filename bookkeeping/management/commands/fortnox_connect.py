from django.core.management.base import CommandError

from bookkeeping.management.base import KonteraCommand
from integrations import tokens
from integrations.models import Integration


class Command(KonteraCommand):
    help = ("Print the Fortnox authorisation URL for a company. Open it while logged in to the admin "
            "as a staff member serving the company; Fortnox sends you back to the callback.")

    def add_command_arguments(self, parser):
        parser.add_argument("company")

    def run(self, **options):
        company = self.company(options["company"])
        integration, created = Integration.objects.get_or_create(company=company, system="fortnox")
        try:
            url = tokens.fortnox_authorisation_url(integration=integration, user=None)
        except tokens.NotConfigured as exc:
            raise CommandError(str(exc)) from None
        return {"integration": integration.pk, "authorisation_url": url, "valid_minutes": 10}

    def render(self, result):
        self.stdout.write(result["authorisation_url"])
        self.stderr.write("Open the URL within 10 minutes, logged in to the Kontera admin.")
