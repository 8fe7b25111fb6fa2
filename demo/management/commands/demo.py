from django.utils.translation import gettext as _

from bookkeeping.management.base import KonteraCommand
from integrations.models import IntegrationStatus

from ...services import demo_load


def status_words(status) -> str:
    """A stored status as staff read it ("Setting up"), never Python's name for it."""
    return str(IntegrationStatus(status).label) if status in IntegrationStatus.values else str(status)


class Command(KonteraCommand):
    help = "Load demo data (idempotent): three client companies, staff users, journals, sandbox integrations."

    def add_command_arguments(self, parser):
        parser.add_argument("--no-sandboxes", action="store_true",
                            help="Skip the parts that talk to the local sandboxes (Dinero, Nets Easy).")

    def run(self, **options):
        result = demo_load(with_sandbox_integrations=not options["no_sandboxes"])
        if "status" in result.get("netseasy", {}):
            result["netseasy"]["status"] = str(result["netseasy"]["status"])  # the value, e.g. "setting_up"
        return result

    def render(self, result):
        self.stdout.write(_("Companies: %(slugs)s") % {"slugs": ", ".join(result["companies"])})
        for staff in result["staff"]:
            self.stdout.write(_("Staff %(user)s / %(password)s: %(companies)s")
                              % {"user": staff["username"], "password": staff["password"],
                                 "companies": ", ".join(staff["companies"])})
        dinero = result.get("dinero")
        if dinero:
            self.stdout.write(_("Dinero (Demo ApS): %(n)s expense documents; %(state)s")
                              % {"n": dinero.get("documents", 0), "state": dinero.get("dinero", "–")})
        nets = result.get("netseasy")
        if nets:
            line = _("Nets Easy (Exempel Handel AB): %(status)s") % {"status": status_words(nets.get("status"))}
            if nets.get("waiting_for"):
                line += " — " + str(nets["waiting_for"])
            self.stdout.write(line)
