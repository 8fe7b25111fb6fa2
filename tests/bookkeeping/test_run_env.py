"""`manage.py run` and Visma Connect: the demo's Visma Connect application in the local .env (also
added to one an earlier `run` wrote), its addresses following the ports, and the sandbox accepting
the Dinero callback on the chosen port only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from demo.management.commands import run
from integrations.management.commands.sandboxes import allow_redirect_uri, build_sandboxes
from integrations.sandboxes.base import ServerThread, mount
from integrations.sandboxes.dinero import DEMO_VISMA_CLIENT_ID, DEMO_VISMA_USER


def test_the_local_env_names_the_demo_visma_connect_application():
    lines = run.local_env().splitlines()
    assert "VISMA_CONNECT_CLIENT_ID=isv_kontera_demo" in lines
    env = run.port_env(8801, 8802)
    assert env["VISMA_CONNECT_AUTHORIZE_URL"] == "http://127.0.0.1:8802/dinero/connect/authorize"
    assert env["VISMA_CONNECT_TOKEN_URL"] == "http://127.0.0.1:8802/dinero/connect/token"


def test_an_env_written_by_an_earlier_run_gets_the_application_once(tmp_path):
    old = tmp_path / ".env"
    old.write_text(f"{run.ENV_HEADER}: the sandboxes stand in.\nDEBUG=true\nDINERO_CLIENT_ID=kontera-demo\n")
    assert run.add_visma_connect_client(old) is True
    assert "VISMA_CONNECT_CLIENT_SECRET=kontera-demo-visma-secret" in old.read_text().splitlines()
    assert run.add_visma_connect_client(old) is False
    operators = tmp_path / "operator.env"
    operators.write_text("DINERO_API_URL=https://api.dinero.dk\n")
    assert run.add_visma_connect_client(operators) is False  # not written by run: left alone
    assert "VISMA" not in operators.read_text()


@pytest.mark.parametrize("port", [8000, 8600])
def test_the_demo_visma_application_accepts_the_callback_on_the_chosen_port_only(tmp_path, port):
    sandboxes = build_sandboxes(tmp_path / "state.json")
    chosen, other = run.dinero_redirect_uri(port), run.dinero_redirect_uri(8000 if port != 8000 else 8600)
    allow_redirect_uri(sandboxes, run.redirect_uri(port), chosen)
    server = ServerThread(mount(sandboxes)).start()
    try:
        params = {"client_id": DEMO_VISMA_CLIENT_ID, "response_type": "code", "state": "s" * 20,
                  "scope": "dineropublicapi:read dineropublicapi:write offline_access",
                  "code_challenge": "c" * 43, "code_challenge_method": "S256"}
        url = f"{server.url}/dinero/connect/authorize"
        page = requests.get(url, params={**params, "redirect_uri": chosen}, timeout=5)
        answer = requests.post(url, data={**params, "redirect_uri": chosen, "email": DEMO_VISMA_USER[0],
                                          "password": DEMO_VISMA_USER[1], "decision": "accept"},
                               allow_redirects=False, timeout=5)
        assert page.status_code == 200 and "code" in parse_qs(urlsplit(answer.headers["Location"]).query)
        stale = requests.get(url, params={**params, "redirect_uri": other}, allow_redirects=False, timeout=5)
        assert stale.status_code == 400 and "Location" not in stale.headers
    finally:
        server.stop()
