"""``python3 manage.py run``: everything a new user needs, in one command.

First start: writes a local .env (fresh secrets, the local sandboxes as Fortnox, Dinero and
Nets Easy), migrates, loads the demo data, creates the admin login, then runs the sandboxes,
the background worker and the web server until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import select
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
from django.utils.translation import gettext as _

ROOT = Path(settings.BASE_DIR)
VAR = ROOT / "var"
# The worker's first minutes are busy (the demo's syncs); the logins are printed again after that.
REPRINT_AFTER = 20.0


ENV_HEADER = "# Written by `manage.py run` for local use"
# Where the sandboxes and the web server listen: given to every process at start, never kept in .env,
# so `run --port/--sandbox-port` with other ports than last time just works.
PORT_KEYS = ("FORTNOX_API_URL", "FORTNOX_OAUTH_URL", "FORTNOX_REDIRECT_URI", "DINERO_API_URL", "DINERO_AUTH_URL",
             "NETS_EASY_API_URL", "VISMA_CONNECT_AUTHORIZE_URL", "VISMA_CONNECT_TOKEN_URL",
             "VISMA_CONNECT_REDIRECT_URI")
# The Dinero sandbox's demo Visma Connect application (it serves /connect/… itself).
VISMA_CONNECT_CLIENT = ("VISMA_CONNECT_CLIENT_ID=isv_kontera_demo", "VISMA_CONNECT_CLIENT_SECRET=kontera-demo-visma-secret")


def local_env() -> str:
    return "\n".join([
        f"{ENV_HEADER}: the sandboxes stand in for Fortnox, Dinero and Nets Easy.",
        "# Their addresses follow --port/--sandbox-port on every start and are not written here.",
        # DEBUG stays off even here: a demo shows the friendly error pages, never a traceback with
        # settings; `run` collects the static files and whitenoise serves them (see `handle`).
        "DEBUG=false",
        f"SECRET_KEY={secrets.token_urlsafe(48)}",
        f"KONTERA_ENCRYPTION_KEYS={Fernet.generate_key().decode()}",
        "ALLOWED_HOSTS=127.0.0.1,localhost",
        "FORTNOX_CLIENT_ID=kontera-demo",
        "FORTNOX_CLIENT_SECRET=kontera-demo-secret",
        "DINERO_CLIENT_ID=kontera-demo",
        "DINERO_CLIENT_SECRET=kontera-demo-secret",
        *VISMA_CONNECT_CLIENT,
        "",
    ])


def port_env(web_port: int, sandbox_port: int) -> dict[str, str]:
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    return {
        "FORTNOX_API_URL": f"{sandbox}/fortnox/3",
        "FORTNOX_OAUTH_URL": f"{sandbox}/fortnox/oauth-v1",
        "FORTNOX_REDIRECT_URI": redirect_uri(web_port),
        "DINERO_API_URL": f"{sandbox}/dinero",
        "DINERO_AUTH_URL": f"{sandbox}/dinero/dineroapi/oauth/token",
        "NETS_EASY_API_URL": f"{sandbox}/netseasy",
        "VISMA_CONNECT_AUTHORIZE_URL": f"{sandbox}/dinero/connect/authorize",
        "VISMA_CONNECT_TOKEN_URL": f"{sandbox}/dinero/connect/token",
        "VISMA_CONNECT_REDIRECT_URI": dinero_redirect_uri(web_port),
    }


def redirect_uri(web_port: int) -> str:
    return f"http://127.0.0.1:{web_port}/integrations/fortnox/callback"


def dinero_redirect_uri(web_port: int) -> str:
    return f"http://127.0.0.1:{web_port}/integrations/dinero/callback"


def add_visma_connect_client(env_file: Path) -> bool:
    """A .env an earlier ``run`` wrote lacks the demo's Visma Connect application: add it."""
    lines = env_file.read_text().splitlines()
    if not lines or not lines[0].startswith(ENV_HEADER):
        return False  # the operator's own .env: not ours to edit
    if any(line.startswith("VISMA_CONNECT_CLIENT_ID=") for line in lines):
        return False
    env_file.write_text("\n".join([*lines, *VISMA_CONNECT_CLIENT]) + "\n")
    return True


def forget_pinned_ports(env_file: Path) -> bool:
    """Drop the sandbox and web addresses an earlier `run` wrote into its .env (they pinned old ports)."""
    if not env_file.exists():
        return False
    lines = env_file.read_text().splitlines()
    if not lines or not lines[0].startswith(ENV_HEADER):
        return False  # the operator's own .env: not ours to edit
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in PORT_KEYS]
    if kept == lines:
        return False
    env_file.write_text("\n".join(kept) + "\n")
    return True


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
    """The web server of `run`: Django's development server; with DEBUG off, whitenoise serves the
    static files that `run` collected (and their manifest, which `{% static %}` needs)."""
    return [*python, "runserver", f"127.0.0.1:{port}", "--noreload"]


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
        restart = False
        if not env_file.exists():
            env_file.write_text(local_env())
            env_file.chmod(0o600)
            self.stdout.write("Wrote .env for local use (sandboxes, fresh secrets).")
            restart = True
        restart = forget_pinned_ports(env_file) or restart
        restart = add_visma_connect_client(env_file) or restart
        if debug_off(env_file):
            self.stdout.write("Turned DEBUG off in .env: errors show friendly pages, never a traceback.")
            restart = True
        ports = port_env(options["port"], options["sandbox_port"])
        if restart or any(os.environ.get(key) != value for key, value in ports.items()):
            # Settings are read at start-up: start again with this run's addresses (children inherit them).
            os.environ.update(ports)
            os.execv(sys.executable, [sys.executable, str(ROOT / "manage.py"), *sys.argv[1:]])

        VAR.mkdir(exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        # DEBUG is off: whitenoise serves the collected, hashed static files (and `{% static %}` reads
        # their manifest), as in production.
        call_command("collectstatic", interactive=False, verbosity=0)
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
            children.append(subprocess.Popen([*python, "sandboxes", "--port", str(options["sandbox_port"]),
                                              "--redirect-uri", redirect_uri(options["port"]),
                                              "--dinero-redirect-uri", dinero_redirect_uri(options["port"])]))
            if not wait_for_port(options["sandbox_port"]):
                self.stderr.write("The sandboxes did not start.")
                return
            call_command("demo")
            if options["no_serve"]:
                return
            # One worker node: the cluster under its supervisor (heartbeat on the overview, restarts if frozen).
            children.append(subprocess.Popen([*python, "supervise", "--node", "run", "--stop-grace", "8"]))
            children.append(subprocess.Popen(server_command(python, options["port"])))
            wait_for_port(options["port"])
            self.banner(options["port"], options["sandbox_port"], login)
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            # The worker's start-up lines (the demo's first syncs) scroll the logins away: print them once
            # more when that burst is over, and again whenever Enter is pressed (or: manage.py logins).
            again_at = time.monotonic() + REPRINT_AFTER
            while all(child.poll() is None for child in children):
                if enter_pressed(timeout=1.0) or (again_at and time.monotonic() >= again_at):
                    again_at = 0
                    self.banner(options["port"], options["sandbox_port"], login)
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
        self.stdout.write(banner_text(port, sandbox_port, login))


def banner_text(port: int, sandbox_port: int, login: tuple[str, str]) -> str:
    line = "=" * 72
    return (f"\n{line}\n" + _("Kontera is running.") + "\n"
            + _("  Admin:      %(url)s") % {"url": f"http://127.0.0.1:{port}/admin/"} + "\n"
            + _("  Login:      %(user)s / %(password)s") % {"user": login[0], "password": login[1]} + "\n"
            + _("  Staff:      anna / demo-anna-2026 (Bookkeeper, Swedish companies), lars / demo-lars-2026 "
                "(Administrator, Danish)") + "\n"
            + _("              eva / demo-eva-2026 (Reviewer (read only), all three companies)") + "\n"
            + _("  Visma:      lars@kontera.example / demo-visma-2026 (the sandbox's Visma Connect login)") + "\n"
            + _("  Sandboxes:  %(url)s/fortnox  /dinero  /netseasy") % {"url": f"http://127.0.0.1:{sandbox_port}"}
            + "\n" + _("  Worker:     django-q2 cluster (2 workers)") + "\n"
            + _("Press Enter to see these lines again (or run: python3 manage.py logins). Stop with Ctrl-C.")
            + f"\n{line}\n")


def enter_pressed(*, timeout: float) -> bool:
    """True when a line was typed on the terminal within ``timeout`` seconds (waits that long otherwise)."""
    stream = sys.stdin
    if stream is None or not stream.isatty():
        time.sleep(timeout)
        return False
    ready, _w, _x = select.select([stream], [], [], timeout)
    if ready:
        stream.readline()
        return True
    return False
