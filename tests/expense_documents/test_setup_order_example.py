"""The README's worked example of setting up Dinero from the command line, run line by line as written.

The lines are read from the README itself (between the ``dinero-cli-example`` markers), so the
documentation cannot drift from what works: ``cat > FILE <<'CSV'`` blocks write their file into a
scratch folder, ``python3 manage.py …`` lines run the command. The Dinero sandbox stands in for
Dinero, as it does under ``manage.py run``.
"""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

from django.core.management import call_command

from bookkeeping.models import AccountMapping, PaymentMethod
from expense_documents.services.common import dinero_integration
from integrations.models import IntegrationStatus
from tests.dinero_fixtures import DINERO_KEY, DINERO_ORG

README = Path(__file__).resolve().parents[2] / "README.md"


def example_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- dinero-cli-example -->\s*```bash\n(.*?)```\s*<!-- /dinero-cli-example -->", text, re.S)
    assert block, "the README's worked example is missing"
    return block.group(1).splitlines()


def run_example(lines: list[str], folder: Path) -> list[tuple[str, int, str]]:
    """Run each line as a shell would (for the two forms it uses); returns (command, exit code, output)."""
    ran = []
    pending_file, body = None, []
    for line in lines:
        if pending_file is not None:
            if line.strip() == pending_file[1]:
                (folder / pending_file[0]).write_text("\n".join(body) + "\n", encoding="utf-8")
                pending_file, body = None, []
            else:
                body.append(line)
            continue
        heredoc = re.fullmatch(r"cat > (\S+) <<'(\w+)'", line.strip())
        if heredoc:
            pending_file = heredoc.groups()
            continue
        words = shlex.split(line)
        assert words[:2] == ["python3", "manage.py"], f"the example has a line this test cannot run: {line}"
        args = [str(folder / w) if (folder / w).exists() else w for w in words[2:]]
        out = io.StringIO()
        try:
            call_command(*args, stdout=out, stderr=io.StringIO())
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        ran.append((words[2], code, out.getvalue()))
    assert pending_file is None, "an unterminated file in the example"
    return ran


def test_the_readme_example_sets_up_a_new_company_in_the_wizards_order(db, dinero_sandbox, tmp_path):
    lines = example_lines()
    # the example uses the sandbox's demo organisation, as the fixtures here do
    assert any(DINERO_KEY in line and str(DINERO_ORG) in line for line in lines)
    ran = run_example(lines, tmp_path)
    assert [(command, code) for command, code, _out in ran] == [
        ("company_add", 0), ("dinero_setup", 0), ("import", 0), ("import", 0), ("dinero_setup", 0)]
    connect_output = ran[1][2]
    assert "Next:" in connect_output and "PaymentMethodResource" in connect_output

    from bookkeeping.models import Company

    company = Company.objects.get(slug="nordlys")
    integration = dinero_integration(company)
    assert integration.status == IntegrationStatus.ACTIVE
    assert integration.settings["error_account"] == 7480 and integration.settings["import_chart"] is True
    assert sorted(PaymentMethod.objects.filter(payment_list__company=company).values_list("name", "account_number")) \
        == [("Firmakort", 55010), ("Kontant", 55040)]
    assert set(AccountMapping.objects.filter(company=company).values_list("key", "account_number", "vat_code")) == {
        ("Kontorartikler", 7200, "I25"), ("Rejser", 4280, "")}
    assert "Dinero is set up for nordlys" in ran[-1][2]


def test_without_the_key_first_the_command_says_what_to_do(db, tmp_path):
    call_command("company_add", "tidlig", "--name", "Tidlig ApS", "--country", "DK", stdout=io.StringIO())
    out = io.StringIO()
    try:
        call_command("dinero_setup", "tidlig", "--error-account", "7480", "--json", stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        assert exc.code == 1
    assert "Connect Dinero first" in out.getvalue()


def test_a_bureau_client_goes_the_same_order_through_visma_connect(dinero_sandbox, dk_company):
    from expense_documents.services.dinero_connection import visma_connect_start
    from tests.dinero_fixtures import visma_consent

    visma_consent(dinero_sandbox, visma_connect_start(company=dk_company))
    out = io.StringIO()
    call_command("dinero_setup", dk_company.slug, "--organization-id", str(DINERO_ORG), "--json", stdout=out)
    import json

    first = json.loads(out.getvalue())
    assert (first["status"], first["connection"], first["steps_done"]) == ("setting_up", "Visma Connect", ["connect"])
    assert first["accounts"] > 100 and first["next"]  # the chart is there; the choices come next
    out = io.StringIO()
    call_command("dinero_setup", dk_company.slug, "--error-account", "7480", "--invoice-payment-method", "63000",
                 "--receipt-payment-methods", "Kvitteringer", "--json", stdout=out)
    last = json.loads(out.getvalue())
    assert (last["status"], last["finished"], last["steps_done"]) == ("active", True, ["choices", "finish"])
