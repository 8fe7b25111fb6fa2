"""`manage.py run`'s local .env: the sandboxes' Visma Connect settings, also added to an older one."""

from __future__ import annotations

from demo.management.commands.run import local_env, upgrade_local_env


def _values(text: str) -> dict:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def test_a_fresh_env_points_visma_connect_at_the_dinero_sandbox():
    values = _values(local_env(8801, 8802))
    assert values["VISMA_CONNECT_AUTHORIZE_URL"] == "http://127.0.0.1:8802/dinero/connect/authorize"
    assert values["VISMA_CONNECT_TOKEN_URL"] == "http://127.0.0.1:8802/dinero/connect/token"
    assert values["VISMA_CONNECT_CLIENT_ID"] == "isv_kontera_demo"
    assert values["VISMA_CONNECT_REDIRECT_URI"] == "http://127.0.0.1:8801/integrations/dinero/callback"


def test_an_older_env_written_by_run_gets_the_visma_lines_once(tmp_path):
    old = "\n".join(line for line in local_env(8000, 8100).splitlines() if not line.startswith("VISMA_")) + "\n"
    env = tmp_path / ".env"
    env.write_text(old)
    assert upgrade_local_env(env, 8000) is True
    assert _values(env.read_text())["VISMA_CONNECT_AUTHORIZE_URL"] == "http://127.0.0.1:8100/dinero/connect/authorize"
    assert upgrade_local_env(env, 8000) is False  # already there
    own = tmp_path / "own.env"
    own.write_text("DINERO_API_URL=https://api.dinero.dk\n")  # not written by run: left alone
    assert upgrade_local_env(own, 8000) is False and "VISMA" not in own.read_text()
