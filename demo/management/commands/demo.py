from bookkeeping.management.base import KonteraCommand

from ...services import demo_load


class Command(KonteraCommand):
    help = "Load demo data (idempotent): three client companies, staff users, journals, sandbox integrations."

    def add_command_arguments(self, parser):
        parser.add_argument("--no-sandboxes", action="store_true",
                            help="Skip the parts that talk to the local sandboxes (Dinero, Nets Easy).")

    def run(self, **options):
        return demo_load(with_sandbox_integrations=not options["no_sandboxes"])

    def render(self, result):
        self.stdout.write(f"Companies: {', '.join(result['companies'])}")
        for staff in result["staff"]:
            self.stdout.write(f"Staff {staff['username']} / {staff['password']}: {', '.join(staff['companies'])}")
        for key in ("dinero", "netseasy"):
            if key in result:
                self.stdout.write(f"{key}: {result[key]}")
