from django.core.management.base import CommandError
from django.db import IntegrityError

from ...models import Country
from ...services.companies import company_create
from ..base import KonteraCommand


class Command(KonteraCommand):
    help = "Add a client company: company_add SLUG --name NAME --country SE|DK [--org-number N]"

    def add_command_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--country", required=True, choices=Country.values)
        parser.add_argument("--org-number", default="")
        parser.add_argument("--member", action="append", default=[], help="Username of a staff member (repeatable).")

    def run(self, **options):
        try:
            company = company_create(slug=options["slug"], name=options["name"], country=options["country"],
                                     org_number=options["org_number"], members=options["member"], actor="command")
        except (IntegrityError, ValueError) as exc:
            raise CommandError(f"Could not add the company: {exc}") from None
        return {"company": company.slug, "id": company.pk, "name": company.name, "country": company.country,
                "base_currency": company.base_currency}
