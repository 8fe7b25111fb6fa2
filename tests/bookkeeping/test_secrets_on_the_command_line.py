"""Secrets for the setup commands come from a file, standard input, the environment or a prompt; one on
the command line still works but is warned about (it shows in /proc/<pid>/cmdline) — issue 11."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from bookkeeping.management.base import read_secret
from expense_documents.services.common import dinero_integration
from tests.dinero_fixtures import DINERO_KEY, DINERO_ORG

OPTIONS = {"flag": "--api-key", "env_var": "KONTERA_TEST_SECRET", "what": "the test key"}


class Command(BaseCommand):
    pass


def secret(monkeypatch, *, value=None, file=None, stdin="", env=None, tty=False, required=True):
    command = Command(stdout=io.StringIO(), stderr=io.StringIO())
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    monkeypatch.setattr("sys.stdin.isatty", lambda: tty, raising=False)
    if env is None:
        monkeypatch.delenv("KONTERA_TEST_SECRET", raising=False)
    else:
        monkeypatch.setenv("KONTERA_TEST_SECRET", env)
    found = read_secret(command, {"secret_value": value, "secret_file": file}, required=required, **OPTIONS)
    return found, command.stderr.getvalue()


def test_each_source(monkeypatch, tmp_path):
    path = tmp_path / "key.txt"
    path.write_text("from-a-file\nignored\n")
    assert secret(monkeypatch, file=str(path)) == ("from-a-file", "")
    assert secret(monkeypatch, value="-", stdin="from-stdin\n") == ("from-stdin", "")
    assert secret(monkeypatch, env="from-the-environment") == ("from-the-environment", "")
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed-at-the-prompt")
    assert secret(monkeypatch, tty=True) == ("typed-at-the-prompt", "")


def test_an_inline_secret_works_with_a_warning(monkeypatch):
    found, warning = secret(monkeypatch, value="on-the-command-line")
    assert found == "on-the-command-line"
    assert "visible to every user of this machine" in warning and "--api-key-file" in warning
    assert "on-the-command-line" not in warning


def test_missing_or_doubled_sources_are_refused(monkeypatch, tmp_path):
    with pytest.raises(CommandError, match="missing"):
        secret(monkeypatch)  # no tty: nobody to ask
    path = tmp_path / "key.txt"
    path.write_text("x")
    with pytest.raises(CommandError, match="not both"):
        secret(monkeypatch, value="y", file=str(path))
    with pytest.raises(CommandError, match="Cannot read"):
        secret(monkeypatch, file=str(tmp_path / "nope.txt"))
    assert secret(monkeypatch, required=False) == (None, "")


def test_dinero_setup_reads_the_key_from_a_file(dinero_sandbox, dk_company, tmp_path):
    path = tmp_path / "dinero.key"
    path.write_text(DINERO_KEY + "\n")
    out, err = io.StringIO(), io.StringIO()
    call_command("dinero_setup", dk_company.slug, "--api-key-file", str(path), "--organization-id", str(DINERO_ORG),
                 "--error-account", "7480", "--invoice-payment-method", "63000", "--receipt-payment-methods",
                 "Kvitteringer", "--json", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["status"] == "active" and not err.getvalue()
    assert dinero_integration(dk_company).credentials["api_key"] == DINERO_KEY


def test_netseasy_setup_takes_the_key_from_the_environment(connected_fortnox, nets_sandbox, monkeypatch):
    from tests.netseasy_fixtures import NETS_KEY, days_ago

    monkeypatch.setenv("NETS_EASY_SECRET_KEY", NETS_KEY)
    out, err = io.StringIO(), io.StringIO()
    call_command("netseasy_setup", connected_fortnox.company.slug, "--start-date", days_ago(30).isoformat(),
                 "--sales-account-se", "3001", "--sales-account-eu", "3106", "--sales-account-world", "3105",
                 "--json", stdout=out, stderr=err)
    result = json.loads(out.getvalue())
    assert result["key_check"] == "Nets Easy accepts the secret key." and not err.getvalue()
