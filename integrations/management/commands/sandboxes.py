"""Serve the local sandboxes of Fortnox, Dinero and Nets Easy on one port, with demo data.

``/fortnox`` stands for Fortnox (``/fortnox/3`` REST, ``/fortnox/oauth-v1`` OAuth), ``/dinero``
for Dinero (API, personal token endpoint, and Visma Connect at ``/dinero/connect/…``), ``/netseasy``
for Nets Easy. State survives restarts in a
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


def build_sandboxes(state_file: Path | None, *, reset: bool = False) -> dict:
    sandboxes = {"/fortnox": FortnoxSandbox(), "/dinero": DineroSandbox(), "/netseasy": NetsEasySandbox()}
    saved = {}
    if state_file and state_file.exists() and not reset:
        saved = json.loads(state_file.read_text())
    for prefix, sandbox in sandboxes.items():
        if prefix in saved:
            sandbox.load_state(saved[prefix])
        else:
            sandbox.seed_demo()
    return sandboxes


def allow_redirect_uri(sandboxes: dict, redirect_uri: str, dinero_redirect_uri: str | None = None) -> None:
    """Register the web server's callbacks for the demo apps, as one does in Fortnox's Developer Portal
    and the Visma Developer Portal.

    Exactly that URI (stricter than keeping old ones): a callback on a port nobody listens on
    any more is refused by the sandbox, as Fortnox and Visma Connect refuse an unregistered redirect_uri.
    """
    from integrations.sandboxes.dinero import DEMO_VISMA_CLIENT_ID
    from integrations.sandboxes.fortnox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    fortnox = sandboxes["/fortnox"]
    current = fortnox.clients.get(DEMO_CLIENT_ID)
    fortnox.register_client(DEMO_CLIENT_ID, current.client_secret if current else DEMO_CLIENT_SECRET,
                            [redirect_uri], name=current.name if current else "Kontera (demo)",
                            service_accounts=current.service_accounts if current else True)
    if dinero_redirect_uri:
        dinero = sandboxes["/dinero"]
        dinero.seed_demo(redirect_uri=dinero_redirect_uri)  # idempotent; brings older saved state up to date
        dinero.visma.clients[DEMO_VISMA_CLIENT_ID].redirect_uris = [dinero_redirect_uri]


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
        parser.add_argument("--redirect-uri", default=settings.FORTNOX_REDIRECT_URI,
                            help="Kontera's Fortnox callback (default: FORTNOX_REDIRECT_URI), registered for the "
                                 "demo app.")
        parser.add_argument("--dinero-redirect-uri", default=settings.VISMA_CONNECT_REDIRECT_URI,
                            help="Kontera's Dinero (Visma Connect) callback (default: VISMA_CONNECT_REDIRECT_URI), "
                                 "registered for the demo Visma Connect application.")

    def handle(self, *args, **options):
        state_file = Path(options["state"])
        sandboxes = build_sandboxes(state_file, reset=options["reset"])
        allow_redirect_uri(sandboxes, options["redirect_uri"], options["dinero_redirect_uri"])
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
