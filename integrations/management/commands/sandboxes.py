"""Serve the local sandboxes of Fortnox, Dinero and Nets Easy on one port, with demo data.

``/fortnox`` stands for Fortnox (``/fortnox/3`` REST, ``/fortnox/oauth-v1`` OAuth), ``/dinero``
for Dinero (API and token endpoint), ``/netseasy`` for Nets Easy. State survives restarts in a
JSON file, so vouchers posted yesterday are still there today.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from integrations.sandboxes.base import ServerThread, mount
from integrations.sandboxes.dinero import DineroSandbox
from integrations.sandboxes.fortnox import FortnoxSandbox
from integrations.sandboxes.netseasy import NetsEasySandbox


def build_sandboxes(state_file: Path | None, *, reset: bool = False, web_port: int = 8000) -> dict:
    sandboxes = {"/fortnox": FortnoxSandbox(), "/dinero": DineroSandbox(), "/netseasy": NetsEasySandbox()}
    saved = {}
    if state_file and state_file.exists() and not reset:
        saved = json.loads(state_file.read_text())
    for prefix, sandbox in sandboxes.items():
        if prefix in saved:
            sandbox.load_state(saved[prefix])
        else:
            sandbox.seed_demo()
    # The demo applications send the browser back to the web server actually running (idempotent;
    # it also brings state saved by an older version up to date).
    callbacks = f"http://127.0.0.1:{web_port}/integrations"
    sandboxes["/fortnox"].seed_demo(redirect_uri=f"{callbacks}/fortnox/callback")
    sandboxes["/dinero"].seed_demo(redirect_uri=f"{callbacks}/dinero/callback")
    return sandboxes


def save_state(sandboxes: dict, state_file: Path) -> None:
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({prefix: sb.dump_state() for prefix, sb in sandboxes.items()}))
    tmp.replace(state_file)


class Command(BaseCommand):
    help = "Run the local Fortnox, Dinero and Nets Easy sandboxes (demo data) on one port."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--state", default=str(Path(settings.BASE_DIR) / "var" / "sandboxes.json"))
        parser.add_argument("--reset", action="store_true", help="Forget saved state and start from the demo data.")
        parser.add_argument("--web-port", type=int, default=8000,
                            help="The port of Kontera's web server: the demo apps' OAuth callbacks go there.")

    def handle(self, *args, **options):
        state_file = Path(options["state"])
        sandboxes = build_sandboxes(state_file, reset=options["reset"], web_port=options["web_port"])
        server = ServerThread(mount(sandboxes), port=options["port"])
        stop = threading.Event()

        def shutdown(*_args):
            stop.set()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        server.start()
        self.stdout.write(f"Sandboxes on {server.url}: /fortnox /dinero /netseasy (state in {state_file})")
        try:
            while not stop.wait(10):
                save_state(sandboxes, state_file)
        finally:
            save_state(sandboxes, state_file)
            server.stop()
