from bookkeeping.management.base import KonteraCommand

from ...retention import retention_prune


class Command(KonteraCommand):
    help = ("Prune task results, OAuth states, rate-limit rows and technical audit events past their retention "
            "(the scheduler runs this daily; the bookkeeping audit trail is kept as long as the law asks).")

    def run(self, **options):
        return {"deleted": retention_prune().as_dict()}

    def render(self, result):
        for kind, count in result["deleted"].items():
            self.stdout.write(f"{count:8} {kind.replace('_', ' ')}")
