"""``python3 manage.py run``: everything a new user needs, in one command.

First start: writes a local .env (fresh secrets, the local sandboxes as Fortnox, Dinero and
Nets Easy), migrates, loads the demo data, creates the admin login, then runs the sandboxes,
the background worker and the web server until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

ROOT = Path(settings.BASE_DIR)
VAR = ROOT / "var"


ENV_HEADER = "# Written by `manage.py run` for local use"


def local_env(web_port: int, sandbox_port: int) -> str:
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    return "\n".join([
        f"{ENV_HEADER}: the sandboxes stand in for Fortnox, Dinero and Nets Easy.",
        # DEBUG stays off even here: a demo shows the friendly error pages, never a traceback with
        # settings; `runserver --insecure` serves the static files instead (see `server_command`).
        "DEBUG=false",
        f"SECRET_KEY={secrets.token_urlsafe(48)}",
        f"KONTERA_ENCRYPTION_KEYS={Fernet.generate_key().decode()}",
        "ALLOWED_HOSTS=127.0.0.1,localhost",
        f"FORTNOX_API_URL={sandbox}/fortnox/3",
        f"FORTNOX_OAUTH_URL={sandbox}/fortnox/oauth-v1",
        "FORTNOX_CLIENT_ID=kontera-demo",
        "FORTNOX_CLIENT_SECRET=kontera-demo-secret",
        f"FORTNOX_REDIRECT_URI=http://127.0.0.1:{web_port}/integrations/fortnox/callback",
        f"DINERO_API_URL={sandbox}/dinero",
        f"DINERO_AUTH_URL={sandbox}/dinero/dineroapi/oauth/token",
        "DINERO_CLIENT_ID=kontera-demo",
        "DINERO_CLIENT_SECRET=kontera-demo-secret",
        f"NETS_EASY_API_URL={sandbox}/netseasy",
        "",
    ])


def debug_off(env_file: Path) -> bool:
    """An .env an earlier `run` wrote with DEBUG=true gets DEBUG=false; an operator's own .env is left alone."""
    if not env_file.exists():
        return False
    lines = env_file.read_text().splitlines()
    if not lines or not lines[0].startswith(ENV_HEADER) or "DEBUG=true" not in lines:
        return False
    env_file.write_text("\n".join("DEBUG=false" if line == "DEBUG=true" else line for line in lines) + "\n")
    return True


def server_command(python: list[str], port: int) -> list[str]:
    """The web server of `run`: Django's development server, serving the static files itself although
    DEBUG is off (``--insecure``: fine for one local user, never for production)."""
    return [*python, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"]


def wait_for_port(port: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


class Command(BaseCommand):
    help = "Set up and run Kontera locally: sandboxes, demo data, worker and web server (Ctrl-C stops all)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8100)
        parser.add_argument("--no-serve", action="store_true", help="Set everything up, then exit (for checks).")

    def handle(self, *args, **options):
        env_file = ROOT / ".env"
        if debug_off(env_file):
            self.stdout.write("Turned DEBUG off in .env: errors show friendly pages, never a traceback.")
            os.execv(sys.executable, [sys.executable, str(ROOT / "manage.py"), *sys.argv[1:]])
        if not env_file.exists():
            env_file.write_text(local_env(options["port"], options["sandbox_port"]))
            env_file.chmod(0o600)
            self.stdout.write("Wrote .env for local use (sandboxes, fresh secrets).")
            # settings are read at start-up: start again with the new .env
            os.execv(sys.executable, [sys.executable, str(ROOT / "manage.py"), *sys.argv[1:]])

        VAR.mkdir(exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        call_command("setup_schedules", stdout=open(os.devnull, "w"))
        login = self.admin_login()

        python = [sys.executable, str(ROOT / "manage.py")]
        children: list[subprocess.Popen] = []

        def stop(*_args):
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

        try:
            children.append(subprocess.Popen([*python, "sandboxes", "--port", str(options["sandbox_port"])]))
            if not wait_for_port(options["sandbox_port"]):
                self.stderr.write("The sandboxes did not start.")
                return
            call_command("demo")
            if options["no_serve"]:
                return
            children.append(subprocess.Popen([*python, "qcluster"]))
            children.append(subprocess.Popen(server_command(python, options["port"])))
            wait_for_port(options["port"])
            self.banner(options["port"], options["sandbox_port"], login)
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            while all(child.poll() is None for child in children):
                time.sleep(1)
            self.stderr.write("A process stopped; shutting down the others.")
        except KeyboardInterrupt:
            pass
        finally:
            stop()

    def admin_login(self) -> tuple[str, str]:
        User = get_user_model()
        password_file = VAR / "admin-password.txt"
        user = User.objects.filter(username="admin").first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            if user is None:
                user = User.objects.create_superuser("admin", "admin@kontera.example", password)
            else:
                user.set_password(password)
                user.save()
            password_file.write_text(password)
            password_file.chmod(0o600)
        return "admin", password_file.read_text().strip()

    def banner(self, port: int, sandbox_port: int, login: tuple[str, str]) -> None:
        line = "=" * 72
        self.stdout.write(f"\n{line}\nKontera is running.\n"
                          f"  Admin:      http://127.0.0.1:{port}/admin/\n"
                          f"  Login:      {login[0]} / {login[1]}\n"
                          f"  Staff:      anna / demo-anna-2026 (Administrator, Swedish companies),\n"
                          f"              lars / demo-lars-2026 (Bookkeeper, Danish), eva / demo-eva-2026 (Reviewer)\n"
                          f"  Sandboxes:  http://127.0.0.1:{sandbox_port}/fortnox  /dinero  /netseasy\n"
                          f"  Worker:     django-q2 cluster (2 workers)\n"
                          f"Stop with Ctrl-C.\n{line}\n")
