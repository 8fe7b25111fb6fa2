"""Optional error tracking: with SENTRY_DSN, a failing background task reaches Sentry through
django-q2's error reporter (redacted); without it, nothing is set up."""

import gzip
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings

from operations.errors import install_task_error_reporter

from .processes import ROOT, base_env

TOKEN = "c2VjcmV0LXJlZnJlc2gtdG9rZW4tdmFsdWU"

SCRIPT = f"""
import sentry_sdk
from django_q import worker
try:
    raise RuntimeError("refresh failed: access_token={TOKEN}")
except RuntimeError:
    worker.error_reporter.report()  # what django-q2's worker does when a task raises
sentry_sdk.flush(10)
"""


class FakeSentry(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":  # pragma: no cover - only when brotli is installed
            import brotli

            body = brotli.decompress(body)
        FakeSentry.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_without_a_dsn_nothing_is_reported():
    assert settings.SENTRY_DSN == ""
    assert install_task_error_reporter() is False
    from django_q import worker

    assert worker.error_reporter is None


def test_a_failing_task_reaches_sentry_without_its_secret():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSentry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeSentry.received.clear()
    try:
        dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
        done = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", SCRIPT], cwd=ROOT,
                              env=base_env(SENTRY_DSN=dsn, DATABASE_URL="sqlite:///:memory:"),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        server.shutdown()
    events = b"\n".join(FakeSentry.received).decode("utf-8", "replace")
    assert "RuntimeError" in events and "refresh failed" in events
    assert '"kontera.process":"worker"' in events.replace(" ", "")
    assert TOKEN not in events
