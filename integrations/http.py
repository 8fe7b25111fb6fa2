"""One requests session factory for every connector: timeouts, User-Agent and secret redaction."""

from __future__ import annotations

import json
import logging
import re
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings

from wording import Msg

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
        self._environment: dict = {}

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """The environment's proxies and CA bundle, read once per host: requests reads them, over all of
        ``os.environ``, on every request (a tenth of a dispatcher's CPU, issue 15); they do not change."""
        if not self.trust_env or proxies or verify not in (None, True) or cert:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = urlsplit(url)[:2]
        if key not in self._environment:
            self._environment[key] = super().merge_environment_settings(url, {}, None, verify, cert)
        return {**self._environment[key], "stream": stream}


def make_session(timeout=None) -> requests.Session:
    return TimeoutSession(timeout=timeout)


def retry_after_seconds(value) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def paced_bearer_request(session: requests.Session, method: str, url: str, *, system: str, token_for, rate_key: str,
                         pace, pause_seconds: float, max_rate_retries: int, params=None, payload=None,
                         files=None, sleep=None) -> requests.Response:
    """One JSON request to a bearer-token API, paced, with the failure rules every target shares.

    ``token_for(refused)`` returns a token; ``refused`` is the token the target just answered 401 to
    (refreshed once, then the target's verdict stands). A 429 pauses every worker on ``rate_key``
    and retries. A lost answer on a write means the outcome is unknown, never that nothing happened.
    Returns the first response that is neither a 429 nor the first 401.
    """
    # Imported here: this module is loaded by the logging configuration, before the apps are ready.

    from . import ratelimit
    from .base import Deferred, RetryableError

    write = method.upper() != "GET"
    refused = None
    for _attempt in range(max_rate_retries + 1):
        token = token_for(refused)
        try:
            ratelimit.acquire(rate_key, pace, sleep=sleep or time.sleep)
        except ratelimit.WaitTooLong as exc:
            # Nothing was sent for this request; what was sent before it keeps its own verdict.
            raise Deferred(Msg("%(system)s's request limit frees in %(n)s s; sent then.", system=system,
                               n=int(exc.seconds + 0.999)), retry_after=exc.seconds, code="rate_limited") from None
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(payload)
        try:
            response = session.request(method, url, params=params, data=data, files=files, headers=headers)
        except requests.ConnectTimeout:
            raise RetryableError(Msg("%(system)s did not accept the connection (timeout).", system=system)) \
                from None
        except requests.RequestException as exc:
            # The request may have been processed before the answer was lost.
            raise RetryableError(Msg("No answer from %(system)s (%(error)s).", system=system, error=exc.__class__.__name__),
                                 outcome_unknown=write) from None
        if response.status_code == 429:
            ratelimit.pause(rate_key, pause_seconds)
            logging.getLogger("kontera.http").warning("%s 429 for %s; all workers pause %.0f s", system, rate_key,
                                                      pause_seconds)
            continue
        if response.status_code == 401 and refused is None:
            refused = token
            continue
        return response
    raise RetryableError(Msg("%(system)s kept answering 429 (too many requests); we will try again later.", system=system), retry_after=pause_seconds, http_status=429)
