"""Shared plumbing for the local sandboxes of the external services.

Each sandbox (``integrations/<system>/sandbox.py``) is a plain WSGI application built with
Werkzeug. It knows nothing of Django: it emulates the remote service from the contract in
``../shared/reference/`` and is never friendlier than the real one. This module gives them a
controllable clock, fault injection, a request log, and a threaded HTTP server used both by the
tests (in-process, port 0) and by the run command (all sandboxes under one port).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response


class SandboxClock:
    """Wall-clock time plus an offset tests can advance (token expiry, 45-day refresh tokens)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


@dataclass
class Fault:
    """One injected misbehaviour.

    kind:
      - ``status``: answer ``status`` with ``body`` (str or bytes) and ``content_type`` without
        processing the request.
      - ``delay``: sleep ``seconds`` and then process normally (a client with a shorter timeout
        sees a timeout although the request took effect).
      - ``drop_before``: close the connection without processing (nothing happened remotely).
      - ``drop_after_commit``: process the request, commit its effect, then close the connection
        without answering (the client cannot know the outcome).
    """

    kind: str
    method: str | None = None
    path_contains: str | None = None
    times: int = 1
    status: int = 500
    body: str | bytes = ""
    content_type: str = "text/plain"
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        if self.times <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path_contains and self.path_contains not in path:
            return False
        return True


@dataclass
class LoggedRequest:
    method: str
    path: str
    status: int
    at: float
    query: str = ""


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(self, kind: str, **kwargs: Any) -> Fault:
        fault = Fault(kind=kind, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Return (and consume one use of) the first fault matching this request."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class DropConnection(Exception):
    """Raised inside a sandbox handler to make the server close the socket without answering."""


def drop_connection(environ: dict, *, on_drop: Callable[[], None] | None = None) -> None:
    """Close the client's socket now; the client sees a dropped connection, not an HTTP answer.

    ``on_drop`` runs first (e.g. to log the request), so a client that reacts at once to the
    dropped connection already finds the request in the sandbox's log.
    """
    if on_drop is not None:
        on_drop()
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise DropConnection()


@dataclass
class SandboxBase:
    """Common state every sandbox carries: clock, faults and a request log."""

    clock: SandboxClock = field(default_factory=SandboxClock)
    faults: FaultInjector = field(default_factory=FaultInjector)
    log: list[LoggedRequest] = field(default_factory=list)


def apply_fault_before(fault: Fault | None, environ: dict, *,
                       on_drop: Callable[[], None] | None = None) -> Response | None:
    """Handle the faults that act before processing; returns a response to send, if any."""
    if fault is None:
        return None
    if fault.kind == "status":
        body = fault.body if isinstance(fault.body, bytes) else fault.body.encode()
        return Response(body, status=fault.status, content_type=fault.content_type)
    if fault.kind == "drop_before":
        drop_connection(environ, on_drop=on_drop)
    if fault.kind == "delay":
        time.sleep(fault.seconds)
    return None


class _HideDeliberateDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "DropConnection" not in record.getMessage()


# Werkzeug logs a deliberately dropped connection (fault injection) as an error with a traceback.
logging.getLogger("werkzeug").addFilter(_HideDeliberateDrops())


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # keep test output clean
        pass

    def run_wsgi(self) -> None:
        try:
            super().run_wsgi()
        except DropConnection:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


class ServerThread:
    """Serve a WSGI app on 127.0.0.1 in a daemon thread (port 0 picks a free port)."""

    def __init__(self, app: Callable, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def serve_forever(self) -> None:
        self._server.serve_forever()


def mount(apps: dict[str, Callable]) -> Callable:
    """One WSGI app serving each sandbox under its prefix, e.g. ``{"/fortnox": FortnoxSandbox()}``."""

    def not_found(environ: dict, start_response: Callable):
        return Response("No sandbox here", status=404)(environ, start_response)

    return DispatcherMiddleware(not_found, apps)
