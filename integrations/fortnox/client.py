"""Thin Fortnox REST wrapper: JSON in, JSON out; errors become typed exceptions.

Every request takes a slot from the shared per-tenant pacing (25 requests per 5 seconds),
carries a token from ``integrations.tokens`` and is retried after a 429 once every worker has
paused for the window.
"""

from __future__ import annotations

import json as jsonlib
import logging

import requests
from django.conf import settings

from .. import ratelimit, tokens
from ..base import AuthError, ConnectorError, RemoteValidationError, RetryableError
from ..http import make_session, redact
from . import mapping

logger = logging.getLogger("kontera.fortnox")

PACE = ratelimit.Pace(limit=25, window=5.0)
MAX_RATE_RETRIES = 4
PAGE_LIMIT = 500


class NotFound(RemoteValidationError):
    pass


class FortnoxClient:
    def __init__(self, integration, *, session: requests.Session | None = None):
        self.integration = integration
        self.session = session or make_session()
        self.base_url = settings.FORTNOX_API_URL.rstrip("/")

    @property
    def rate_key(self) -> str:
        tenant = (self.integration.settings or {}).get("tenant_id") or f"integration-{self.integration.pk}"
        return f"fortnox:{settings.FORTNOX_CLIENT_ID}:{tenant}"

    def request(self, method: str, path: str, *, params: dict | None = None, payload: dict | None = None) -> dict:
        write = method.upper() != "GET"
        url = f"{self.base_url}/{path.lstrip('/')}"
        refused_token = None
        for _attempt in range(MAX_RATE_RETRIES + 1):
            token = tokens.fortnox_access_token(integration=self.integration, stale_access_token=refused_token)
            ratelimit.acquire(self.rate_key, PACE)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            data = None
            if payload is not None:
                headers["Content-Type"] = "application/json"
                data = jsonlib.dumps(payload)
            try:
                response = self.session.request(method, url, params=params, data=data, headers=headers)
            except requests.ConnectTimeout:
                raise RetryableError("Fortnox did not accept the connection (timeout).") from None
            except requests.RequestException as exc:
                # The request may have been processed before the answer was lost.
                raise RetryableError(f"No answer from Fortnox ({exc.__class__.__name__}).",
                                     outcome_unknown=write) from None
            if response.status_code == 429:
                ratelimit.pause(self.rate_key, PACE.window)
                logger.warning("Fortnox 429 for %s; all workers pause %.0f s", self.rate_key, PACE.window)
                continue
            if response.status_code == 401 and refused_token is None:
                refused_token = token  # refresh once (single flight), then try again
                continue
            return self._result(response, write=write)
        raise RetryableError("Fortnox kept answering 429 (too many requests).", retry_after=PACE.window, http_status=429)

    def _result(self, response: requests.Response, *, write: bool) -> dict:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status < 300:
            return body or {}
        code, message = mapping.error_information(body)
        text = mapping.plain_message(code, message) if (code or message) else redact(response.text[:300])
        if status == 401:
            raise AuthError("Fortnox no longer accepts our authorisation. Connect Fortnox again.", http_status=401)
        if status == 403:
            if code in {"2000663", "2001101", "2001103", "2000311"}:
                raise AuthError(text, code=code, http_status=403)
            raise RemoteValidationError(text, code=code, http_status=403)
        if status == 404:
            raise NotFound(text, code=code, http_status=404)
        if status >= 500:
            raise RetryableError(f"Fortnox had an internal error ({status}).", http_status=status,
                                 outcome_unknown=write)
        if 400 <= status < 500:
            raise RemoteValidationError(text, code=code, http_status=status)
        raise ConnectorError(text, code=code, http_status=status)

    def get(self, path: str, **params) -> dict:
        return self.request("GET", path, params=params or None)

    def get_all(self, path: str, key: str, **params) -> list[dict]:
        """Every page of a list resource."""
        items: list[dict] = []
        page = 1
        while True:
            body = self.get(path, page=page, limit=PAGE_LIMIT, **params)
            items.extend(body.get(key) or [])
            meta = body.get("MetaInformation") or {}
            total_pages = mapping.as_int(meta.get("@TotalPages"), 1) or 1
            if page >= total_pages:
                return items
            page += 1

    def post(self, path: str, payload: dict, **params) -> dict:
        return self.request("POST", path, params=params or None, payload=payload)
