"""`manage.py run` shows what production shows: DEBUG off, friendly error pages, and still the admin's
styles (issue 14: `run` wrote DEBUG=true, so a crash showed a traceback with the settings)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import requests

from demo.management.commands import run
from tests.operations.processes import ROOT, base_env, manage


def _port() -> int:
    for port in range(8600, 8700):  # the ports this project's servers may use on shared machines
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in 8600–8699")


def test_run_keeps_debug_off(tmp_path):
    assert "DEBUG=false" in run.local_env().splitlines()
    env = tmp_path / ".env"
    env.write_text(run.local_env().replace("DEBUG=false", "DEBUG=true"))
    assert run.debug_off(env) and "DEBUG=false" in env.read_text().splitlines()
    assert not run.debug_off(env)
    own = tmp_path / "own.env"
    own.write_text("DEBUG=true\n")
    assert not run.debug_off(own) and own.read_text() == "DEBUG=true\n"  # an operator's own .env is theirs


def test_runs_web_server_serves_styles_and_friendly_pages_with_debug_off(tmp_path):
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'run.sqlite3'}", DEBUG="false",
                   STATIC_ROOT=str(tmp_path / "static"), ALLOWED_HOSTS="127.0.0.1")
    for step in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        done = manage(*step, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
    port = _port()
    server = subprocess.Popen(run.server_command([sys.executable, str(ROOT / "manage.py")], port), env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                login = requests.get(f"{base}/admin/login/", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert login.status_code == 200
        css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login.text)
        assert css and requests.get(base + css.group(1), timeout=5).status_code == 200
        missing = requests.get(f"{base}/no/such/page/", timeout=5)
        assert missing.status_code == 404 and "There is no such page" in missing.text
        assert "Traceback" not in missing.text and "SECRET_KEY" not in missing.text
        assert "Using the URLconf" not in missing.text  # Django's DEBUG 404 page lists every pattern
    finally:
        server.terminate()
        server.wait(timeout=20)
