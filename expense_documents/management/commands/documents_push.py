from bookkeeping.management.base import KonteraCommand

from ...services.sync import documents_push


class Command(KonteraCommand):
    help = ("Sync a company's expense documents to Dinero now: documents_push COMPANY [--json]. Applies the workflow "
            "rules, queues new and changed documents and sends them; exits non-zero when any was refused or is "
            "still waiting to be sent.")

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="The company's slug.")

    def run(self, **options):
        company = self.company(options["company"])
        result = documents_push(company=company, actor="command")
        return {"ok": result.ok, "company": company.slug, "counts": result.counts, "documents": result.documents}

    def render(self, result):
        for doc in result["documents"]:
            where = f" → Dinero {doc['number'] or doc['dinero']}" if doc["dinero"] else ""
            self.stdout.write(f"{doc['reference']:20} {doc['label']}{where}" + (f": {doc['detail']}" if doc["detail"] else ""))
        self.stdout.write(", ".join(f"{n} {state}" for state, n in sorted(result["counts"].items())) or "no documents")
