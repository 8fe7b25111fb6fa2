"""Thin Fortnox REST wrapper: JSON in, JSON out; errors become typed exceptions.

Every request takes a slot from the shared per-tenant pacing (25 requests per 5 seconds),
carries a token from ``integrations.tokens`` and is retried after a 429 once every worker has
paused for the window.
"""

from __future__ import annotations

import logging
import re

import requests
from django.conf import settings

from wording import Msg

from .. import ratelimit, tokens
from ..base import AuthError, ConnectorError, LicenceOrPermissionMissing, RemoteValidationError, RetryableError
from ..http import make_session, paced_bearer_request, redact
from . import mapping

logger = logging.getLogger("kontera.fortnox")

PACE = ratelimit.Pace(limit=25, window=5.0)
MAX_RATE_RETRIES = 4
PAGE_LIMIT = 500

# Missing scope, licence or user permission (reference §7: 2000663, 2001101, 2001103, 2001427,
# 2003275, 2003330). Live Fortnox has answered these with 400 and a message about behörighet, scope
# or licens, not only with 403 (repository erp-mafia/accounted, lib/providers/fortnox/client.ts).
PERMISSION_CODES = {"2000663", "2001101", "2001103", "2001427", "2003275", "2003330"}
PERMISSION_WORDS = re.compile(r"behörighet|scope|licens", re.IGNORECASE)
LEGACY_LOGIN_CODE = "2000311"  # "Kan inte logga in, access-token eller client-secret saknas"


class NotFound(RemoteValidationError):
    pass


def permission_message(fortnox_text: str) -> str:
    return Msg("Fortnox refuses: licence or permission missing. The Fortnox company needs the licence for "
             "bookkeeping (Bokföring) and an integration licence, and the user who connects Kontera needs "
             "permission for bookkeeping, cost centres, company information and settings. Fix that in "
             "Fortnox, then connect Fortnox again: the vouchers wait and go out after reconnecting. "
             "%(fortnox)s", fortnox=fortnox_text)


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
        response = paced_bearer_request(
            self.session, method, f"{self.base_url}/{path.lstrip('/')}", system="Fortnox",
            token_for=lambda refused: tokens.fortnox_access_token(integration=self.integration,
                                                                  stale_access_token=refused),
            rate_key=self.rate_key, pace=PACE, pause_seconds=PACE.window, max_rate_retries=MAX_RATE_RETRIES,
            params=params, payload=payload,
        )
        return self._result(response, write=method.upper() != "GET")

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
        if status == 403 and code == LEGACY_LOGIN_CODE:
            raise AuthError(text, code=code, http_status=403)
        if status == 403 or (status == 400 and (code in PERMISSION_CODES or PERMISSION_WORDS.search(message))):
            raise LicenceOrPermissionMissing(permission_message(text), code=code or str(status), http_status=status)
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
