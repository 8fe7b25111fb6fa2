"""One requests session factory for every connector: timeouts, User-Agent and secret redaction."""

from __future__ import annotations

import logging
import re

import requests
from django.conf import settings

USER_AGENT = "Kontera/1.0 (+https://kontera.example)"

# Anything that looks like a credential in a log line or an error text is masked.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]{8,}"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(r"(?i)((?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"(?i)((?:client_secret|password|username|api_key|secret_key|code)[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"((?:live|test)-(?:secret|checkout)-key-)[0-9a-fA-F]{8,}"),
]


def redact(text: str) -> str:
    if not text:
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Logging filter: no token or key reaches a log handler in clear."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the log line
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class TimeoutSession(requests.Session):
    """A session whose every request has the configured (connect, read) timeout by default."""

    def __init__(self, timeout=None):
        super().__init__()
        self.timeout = timeout or settings.KONTERA_HTTP_TIMEOUT
        self.headers["User-Agent"] = USER_AGENT
        self.headers["Accept"] = "application/json"

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


def make_session(timeout=None) -> requests.Session:
    return TimeoutSession(timeout=timeout)
