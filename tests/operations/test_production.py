"""README "Run in production", step by step in separate processes, as an operator would: the example
environment, `migrate`, `collectstatic`, `setup_schedules`, `check --deploy`, then the Procfile's web
(gunicorn, config/gunicorn.conf.py) and worker lines. Issue 12 found the admin without styles under
gunicorn (static 404) and `check --deploy` with four warnings."""

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from .processes import ON_POSTGRES, ROOT, base_env, free_port, fresh_database, manage

HOST = "kontera.example.se"


def example_env() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.production.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def procfile() -> dict[str, str]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line and not line.startswith("#")]
    return {name.strip(): command.strip() for name, command in (line.split(":", 1) for line in lines)}


def wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, stop(process)[2][-3000:]
        try:
            requests.get(url, headers={"Host": HOST}, timeout=1, allow_redirects=False)
            return
        except (requests.ConnectionError, requests.Timeout):
            # not listening yet, or listening but its first answer slower than a second on a busy machine
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    """SIGTERM to the main process (systemd's KillMode=mixed); the group is killed only if it hangs.

    django-q2's cluster stops cleanly when only its main process gets SIGTERM; signalling every
    process of the group at once can leave it waiting for children that are already gone.
    """
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate(timeout=10)
    return process.returncode, out, err


def health(env: dict[str, str]) -> int:
    """GET /health/ through Django in a separate process (the web server is stopped by then)."""
    done = manage("shell", "-c", "from django.test import Client; "
                  f"print(Client().get('/health/', secure=True, HTTP_HOST='{HOST}').status_code)", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def production(tmp_path):
    """The example .env with its two secrets filled in (as the README says), on an empty database."""
    values = example_env()
    assert values["SECRET_KEY"] == "" and values["KONTERA_ENCRYPTION_KEYS"] == ""  # never a shipped secret
    assert values["DEBUG"] == "false"
    fresh = base_env()
    port = free_port()
    with fresh_database("postgres" if ON_POSTGRES else "sqlite", tmp_path) as url:
        env = {**base_env(), **values, "SECRET_KEY": fresh["SECRET_KEY"] + "x" * 20,
               "KONTERA_ENCRYPTION_KEYS": fresh["KONTERA_ENCRYPTION_KEYS"], "DATABASE_URL": url,
               "STATIC_ROOT": str(tmp_path / "static"), "MEDIA_ROOT": str(tmp_path / "media"),
               "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1",
               "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        env["base_url"] = f"http://127.0.0.1:{port}"
        yield env


def test_the_readme_production_steps_bring_up_web_and_worker(production):
    env = {k: v for k, v in production.items() if k != "base_url"}
    base = production["base_url"]
    for step in (["migrate", "--noinput"], ["collectstatic", "--noinput"], ["setup_schedules"]):
        done = manage(*step, env=env)
        assert done.returncode == 0, (step, done.stderr[-3000:])
    check = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert check.returncode == 0, check.stderr + check.stdout
    assert "System check identified no issues" in check.stdout

    commands = procfile()
    assert set(commands) == {"web", "worker"}
    web = subprocess.Popen(["/bin/sh", "-c", "exec " + commands["web"]], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(f"{base}/admin/login/", web)
        https = {"Host": HOST, "X-Forwarded-Proto": "https"}
        login = requests.get(f"{base}/admin/login/", headers=https, timeout=10)
        assert login.status_code == 200
        assert "max-age=31536000" in login.headers["Strict-Transport-Security"]
        assert "Secure" in login.headers["Set-Cookie"]  # the CSRF cookie
        # The admin's stylesheet: hashed by collectstatic, served by gunicorn itself, cached for ever.
        css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login.text)
        assert css, login.text[:2000]
        styles = requests.get(base + css.group(1), headers=https, timeout=10)
        assert styles.status_code == 200 and styles.headers["Content-Type"].startswith("text/css")
        assert "immutable" in styles.headers.get("Cache-Control", "")
        assert requests.get(f"{base}/static/admin/css/base.css", headers=https, timeout=10).status_code == 200
        # Plain HTTP is sent to HTTPS.
        plain = requests.get(f"{base}/admin/", headers={"Host": HOST}, timeout=10, allow_redirects=False)
        assert plain.status_code == 301 and plain.headers["Location"].startswith(f"https://{HOST}/")
    finally:
        code, _out, err = stop(web)
    assert code == 0, err[-3000:]
    # gunicorn's own log lines are JSON too (LOG_FORMAT=json in the example).
    gunicorn_lines = [line for line in err.splitlines() if line.strip()]
    assert gunicorn_lines and all(json.loads(line)["logger"].startswith("gunicorn") for line in gunicorn_lines)

    worker = subprocess.Popen(["/bin/sh", "-c", "exec " + commands["worker"]], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(worker.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("running." in line for line in seen) and worker.poll() is None:
        time.sleep(0.2)
    time.sleep(1)  # a moment of work: the scheduler declared by setup_schedules runs its first jobs
    assert worker.poll() is None, "".join(seen)[-3000:]
    # /health/ is 200 while the worker node beats, 503 once it stopped (issue 12, "Done when").
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and health(env) != 200:
        time.sleep(1)
    assert health(env) == 200, "".join(seen)[-3000:]
    worker.send_signal(signal.SIGTERM)
    try:
        code = worker.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        raise
    reader.join(timeout=5)
    assert code == 0, "".join(seen)[-3000:]
    assert health(env) == 503
    lines = [json.loads(line) for line in seen if line.startswith("{")]
    assert any("Q Cluster" in line["message"] and "running" in line["message"] for line in lines), "".join(seen)
