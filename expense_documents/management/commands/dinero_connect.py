from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from bookkeeping.management.base import KonteraCommand
from integrations.tokens import NotConfigured

from ...services.common import SetupError, dinero_integration
from ...services.dinero_connection import dinero_organisations, visma_connect_url


class Command(KonteraCommand):
    help = ("Connect a company's Dinero through Visma Connect (how a bureau connects its clients' organisations): "
            "prints the authorisation URL. Open it within 10 minutes while logged in to the Kontera admin as a staff "
            "member serving the company; a Dinero user approves in Visma Connect, and you choose the organisation "
            "in the admin (or with dinero_setup COMPANY --organization-id ID …). --organisations lists the "
            "organisations the stored consent reaches. For a company's own Dinero with an API key (the personal "
            "integration) use dinero_setup --api-key instead.")

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="The company's slug.")
        parser.add_argument("--organisations", action="store_true",
                            help="List the Dinero organisations the stored Visma Connect consent reaches (with CVR).")

    def run(self, **options):
        company = self.company(options["company"])
        if options["organisations"]:
            integration = dinero_integration(company)
            if integration is None:
                raise CommandError(_("Connect Dinero through Visma Connect first."))
            try:
                choices = dinero_organisations(integration=integration)
            except SetupError as exc:
                raise CommandError(exc.message) from None
            return {"company": company.slug, "organisations": [
                {"organization_id": c.remote_id, "name": c.name, "cvr": c.cvr, "dinero_pro": c.usable,
                 "cvr_matches": c.cvr_matches, "problem": c.problem} for c in choices]}
        try:
            integration, url = visma_connect_url(company=company, actor="command")
        except NotConfigured as exc:
            raise CommandError(str(exc)) from None
        return {"company": company.slug, "integration": integration.pk, "authorisation_url": url, "valid_minutes": 10}

    def render(self, result):
        if "organisations" in result:
            for org in result["organisations"]:
                self.stdout.write(f"{org['organization_id']}\t{org['name']}\t{org['cvr'] or '–'}\t"
                                  f"{'Pro' if org['dinero_pro'] else _('no Dinero Pro')}")
            return
        self.stdout.write(result["authorisation_url"])
        self.stderr.write(_("Open the URL within 10 minutes, logged in to the Kontera admin; then choose the "
                            "organisation in the admin or with dinero_setup %(company)s --organization-id ID.")
                          % {"company": result["company"]})
