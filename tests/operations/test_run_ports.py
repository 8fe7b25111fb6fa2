"""`manage.py run --port/--sandbox-port` with other ports than last time: issue 12 found the sandbox
knowing the redirect URI on port 8000 only and `.env` keeping the first run's ports."""

import pytest
import requests

from demo.management.commands import run
from integrations.management.commands.sandboxes import allow_redirect_uri, build_sandboxes
from integrations.sandboxes.fortnox import DEMO_CLIENT_ID
from integrations.tokens import FORTNOX_SCOPES

PORT_KEYS = set(run.PORT_KEYS)


def test_the_local_env_pins_no_port():
    written = run.local_env()
    assert not PORT_KEYS & {line.split("=", 1)[0] for line in written.splitlines()}
    assert "SECRET_KEY=" in written and "KONTERA_ENCRYPTION_KEYS=" in written


def test_every_start_gets_the_addresses_of_its_own_ports():
    env = run.port_env(8600, 8601)
    assert env["FORTNOX_REDIRECT_URI"] == "http://127.0.0.1:8600/integrations/fortnox/callback"
    assert env["FORTNOX_API_URL"] == "http://127.0.0.1:8601/fortnox/3"
    assert env["VISMA_CONNECT_REDIRECT_URI"] == "http://127.0.0.1:8600/integrations/dinero/callback"
    assert all("8601" in value for key, value in env.items() if not key.endswith("_REDIRECT_URI"))
    assert set(env) == PORT_KEYS


def test_an_env_written_by_an_earlier_run_forgets_its_ports(tmp_path):
    old = tmp_path / ".env"
    old.write_text(f"{run.ENV_HEADER}: the sandboxes stand in.\nDEBUG=true\nSECRET_KEY=abc\n"
                   "FORTNOX_API_URL=http://127.0.0.1:8100/fortnox/3\n"
                   "FORTNOX_REDIRECT_URI=http://127.0.0.1:8000/integrations/fortnox/callback\n")
    assert run.forget_pinned_ports(old) is True
    assert old.read_text().splitlines()[1:] == ["DEBUG=true", "SECRET_KEY=abc"]
    assert run.forget_pinned_ports(old) is False

    operators = tmp_path / "operator.env"
    operators.write_text("FORTNOX_API_URL=https://api.fortnox.se/3\n")
    assert run.forget_pinned_ports(operators) is False  # not written by run: left alone
    assert operators.read_text() == "FORTNOX_API_URL=https://api.fortnox.se/3\n"


@pytest.mark.parametrize("port", [8000, 8600])
def test_the_sandbox_accepts_the_callback_on_the_chosen_port_only(tmp_path, port):
    sandboxes = build_sandboxes(tmp_path / "state.json")
    fortnox = sandboxes["/fortnox"]
    chosen = run.redirect_uri(port)
    allow_redirect_uri(sandboxes, chosen)
    assert fortnox.authorize(DEMO_CLIENT_ID, 1046823, FORTNOX_SCOPES, chosen)
    other = run.redirect_uri(8000 if port != 8000 else 8600)
    with pytest.raises(ValueError, match="redirect"):
        fortnox.authorize(DEMO_CLIENT_ID, 1046823, FORTNOX_SCOPES, other)


def test_the_sandboxes_command_registers_the_redirect_uri(tmp_path):
    """The consent page of a sandbox started as `run` starts it answers for the chosen callback."""
    import subprocess
    import sys
    import time

    from .processes import ROOT, base_env, free_port

    port = free_port()
    chosen = run.redirect_uri(8642)
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "sandboxes", "--port", str(port),
                                "--state", str(tmp_path / "state.json"), "--redirect-uri", chosen],
                               cwd=ROOT, env=base_env(DATABASE_URL="sqlite:///:memory:"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        params = {"client_id": DEMO_CLIENT_ID, "scope": " ".join(FORTNOX_SCOPES), "state": "s" * 32,
                  "response_type": "code", "access_type": "offline"}
        ok = None
        for _ in range(600):  # on a shared, loaded machine the process may need far more than 10 s to start
            try:
                ok = requests.get(f"http://127.0.0.1:{port}/fortnox/oauth-v1/auth",
                                  params={**params, "redirect_uri": chosen}, timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        assert ok is not None, "the sandboxes did not answer within a minute"
        assert ok.status_code == 200 and "Godkänn behörighet" in ok.text
        stale = requests.get(f"http://127.0.0.1:{port}/fortnox/oauth-v1/auth",
                             params={**params, "redirect_uri": run.redirect_uri(8000)}, timeout=10)
        assert "Godkänn behörighet" not in stale.text
    finally:
        process.terminate()
        process.wait(timeout=20)
