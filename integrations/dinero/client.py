"""Thin Dinero REST wrapper: JSON in, JSON out; errors become typed exceptions.

Two ways to sign in (developer.dinero.dk/documentation/personal-integration and /authorization):

* **Visma Connect** (``auth: visma_connect``), how a product serving many client companies must
  connect: an OAuth2 consent given by a Dinero user, whose tokens reach every organisation that user
  can access. Tokens come from ``integrations.tokens`` (single-flight refresh of rotating refresh
  tokens, as for Fortnox); the organisation is chosen after the consent.
* **Personal integration** (``auth: api_key``), for a company connecting its own Dinero only (Dinero:
  "not public and only for your own use"): the password grant (§1.1) with Kontera's personal client
  id and secret in a Basic header and the organisation's API key as both username and password. The
  token lives one hour and comes without a refresh token, so the grant is simply run again when the
  cached token nears expiry. Two workers may both run it at the same moment; that is harmless (each
  gets a valid token), so no lock is held across the HTTP call: the new token is stored afterwards in
  a short transaction, merged into the encrypted credentials.

Every API request takes a slot from the shared per-organisation pacing (``rate_limit_per_minute``
per 60 s, 100 by default) and is retried after a 429 once every worker has paused for the window.
"""

from __future__ import annotations

import hashlib
import logging
import time

import requests
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from wording import Msg

from .. import ratelimit, tokens
from ..base import AuthError, ConnectorError, Deferred, RemoteValidationError, RetryableError, StaleVersionError
from ..http import make_session, paced_bearer_request, redact, retry_after_seconds
from . import mapping

logger = logging.getLogger("kontera.dinero")

WINDOW = 60.0
DEFAULT_RATE_LIMIT = 100
MAX_RATE_RETRIES = 3
# Ask for a new token this many seconds before the old one expires.
EARLY_RENEWAL = 120
PRO_CODES = {"48", "90"}  # §1.4: the official pages disagree; both mean "no Dinero Pro"
FOREIGN_ORGANISATION_CODE = "41"
STALE_TIMESTAMP_CODE = "58"
# "It might take a second for the file to be accessible" (api.dinero.dk/v1/docs, Files).
FILE_SETTLE_SECONDS = 1.0
# A voucher that needs at most this long at the organisation's pace is started only if it fits in what
# is left of the dispatcher's run (about 4 s at 100 requests a minute; a run is minutes).
LONGEST_VOUCHER_HELD_BACK = 30.0


class NotFound(RemoteValidationError):
    pass


class FileNotReady(RemoteValidationError):
    """Dinero refused the FileGuid of a file uploaded moments ago: "It might take a second for the
    file to be accessible" (api.dinero.dk/v1/docs, Files). Nothing was created; try again shortly."""


AUTH_VISMA_CONNECT = "visma_connect"
AUTH_API_KEY = "api_key"
AUTH_MODES = (AUTH_VISMA_CONNECT, AUTH_API_KEY)


def auth_mode(integration) -> str:
    """How a Dinero integration signs in: Visma Connect, or the company's own API key."""
    mode = (integration.settings or {}).get("auth")
    if mode in AUTH_MODES:
        return mode
    # Integrations set up before Visma Connect existed keep their API key.
    return AUTH_API_KEY if (integration.credentials or {}).get("api_key") else AUTH_VISMA_CONNECT


def pro_required_message(organization_id, code: str = "") -> str:
    return Msg("Dinero Pro subscription required: organisation %(org)s has no active Dinero Pro (or Total) "
             "subscription, which Dinero requires for any integration%(code)s. Upgrade the organisation "
             "in Dinero, then try again.", org=organization_id, code=f" (code {code})" if code else "")


def wrong_organisation_message(organization_id, mode: str = AUTH_API_KEY) -> str:
    if mode == AUTH_VISMA_CONNECT:
        return Msg("Organisation %(org)s is not among the Dinero organisations the consenting Visma login can reach. "
                 "Choose one of them, or connect again with a login that has access to it.", org=organization_id)
    return Msg("The organisation id %(org)s does not belong to this API key. Check the firma-ID: it is shown "
             "bottom left in Dinero and follows app.dinero.dk/ in the address.", org=organization_id)


def wrong_key_message() -> str:
    return Msg("Dinero refused the API key: it is wrong, or it was deleted in Dinero. Create or copy the key "
             "in Dinero (Settings → Integrations → API keys) and enter it again.")


def key_no_longer_works_message(mode: str = AUTH_API_KEY) -> str:
    if mode == AUTH_VISMA_CONNECT:
        return Msg("Dinero no longer accepts our Visma Connect authorisation (the consent was withdrawn or expired). "
                 "Connect Dinero again: open the integration and press Connect Dinero; waiting vouchers then go "
                 "out by themselves.")
    return Msg("Dinero no longer accepts our access: the API key no longer works (it was deleted or replaced "
             "in Dinero). Enter a new API key in the Dinero setup.")


class DineroClient:
    def __init__(self, integration, *, session: requests.Session | None = None, sleep=None):
        self.integration = integration
        self.session = session or make_session()
        self.sleep = sleep or time.sleep
        self.base_url = settings.DINERO_API_URL.rstrip("/")

    # --- settings -------------------------------------------------------------------------------

    @property
    def organization_id(self) -> str:
        return str((self.integration.settings or {}).get("organization_id") or "").strip()

    @property
    def pace(self) -> ratelimit.Pace:
        limit = mapping.as_int((self.integration.settings or {}).get("rate_limit_per_minute"), DEFAULT_RATE_LIMIT)
        return ratelimit.Pace(limit=max(1, min(limit or DEFAULT_RATE_LIMIT, DEFAULT_RATE_LIMIT)), window=WINDOW)

    @property
    def auth(self) -> str:
        return auth_mode(self.integration)

    @property
    def rate_key(self) -> str:
        # Dinero counts per organisation and client id, so every worker of every company using the
        # same organisation shares one pace.
        client_id = settings.VISMA_CONNECT_CLIENT_ID if self.auth == AUTH_VISMA_CONNECT else settings.DINERO_CLIENT_ID
        return f"dinero:{client_id}:{self.organization_id or 'unknown'}"

    # --- token ----------------------------------------------------------------------------------

    def _key_tag(self) -> str:
        """Which API key a cached token was granted for (a hash): a replaced key needs a new token."""
        api_key = str((self.integration.credentials or {}).get("api_key") or "")
        return hashlib.sha256(api_key.encode()).hexdigest()[:16]

    def access_token(self, *, refused: str | None = None) -> str:
        if self.auth == AUTH_VISMA_CONNECT:
            return tokens.access_token(integration=self.integration, stale_access_token=refused)
        credentials = self.integration.credentials or {}
        token = credentials.get("access_token")
        fresh = float(credentials.get("expires_at") or 0) - EARLY_RENEWAL > time.time()
        if token and fresh and token != refused and credentials.get("token_for") == self._key_tag():
            return token
        return self._grant()

    def _grant(self) -> str:
        api_key = str((self.integration.credentials or {}).get("api_key") or "").strip()
        if not api_key:
            raise AuthError(Msg("No Dinero API key is stored. Enter it in the Dinero setup."))
        try:
            response = self.session.post(
                settings.DINERO_AUTH_URL,
                auth=(settings.DINERO_CLIENT_ID, settings.DINERO_CLIENT_SECRET),
                data={"grant_type": "password", "scope": "read write", "username": api_key, "password": api_key},
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            raise RetryableError(Msg("Dinero's login service did not answer (%(error)s).", error=exc.__class__.__name__)) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        if response.status_code == 429:
            # A rate limit on the login service, not a verdict on the key (dinero-cli, personal.py,
            # handles it the same way): every worker of this organisation waits, then tries again.
            wait = retry_after_seconds(response.headers.get("Retry-After")) or WINDOW
            ratelimit.pause(self.rate_key, wait)
            logger.warning("Dinero token endpoint 429 for %s; waiting %.0f s", self.rate_key, wait)
            raise RetryableError(Msg("Dinero's login service is busy (too many requests); we try again in %(n)s "
                                   "seconds.", n=int(wait)), retry_after=wait, http_status=429, code="429")
        if response.status_code >= 500:
            raise RetryableError(Msg("Dinero's login service had an internal error (%(status)s).", status=response.status_code), http_status=response.status_code)
        if response.status_code == 401 or error == "invalid_client":
            raise AuthError(Msg("Dinero does not recognise Kontera's own client id and secret (DINERO_CLIENT_ID and "
                              "DINERO_CLIENT_SECRET). This is a server setting, not the organisation's API key: "
                              "tell whoever runs Kontera."), code="invalid_client", http_status=response.status_code)
        if response.status_code >= 400 or not body.get("access_token"):
            raise AuthError(wrong_key_message(), code=error or "invalid_grant", http_status=response.status_code)
        now = time.time()
        update = {"access_token": body["access_token"], "token_for": self._key_tag(),
                  "expires_at": now + float(body.get("expires_in") or 3600), "token_obtained_at": now}
        self._store_credentials(update)
        return body["access_token"]

    def _store_credentials(self, update: dict) -> None:
        from ..models import Integration

        self.integration.credentials = {**(self.integration.credentials or {}), **update}
        if self.integration.pk is None:
            return  # a connection being checked before it is saved (the setup wizard)
        with transaction.atomic():
            locked = Integration.objects.select_for_update().get(pk=self.integration.pk)
            locked.credentials = {**(locked.credentials or {}), **update}
            locked.save(update_fields=["credentials", "updated_at"])
        self.integration.credentials = locked.credentials

    # --- requests -------------------------------------------------------------------------------

    def url(self, path: str, *, version: str = "v1", org_scoped: bool = True) -> str:
        path = path.lstrip("/")
        if org_scoped:
            if not self.organization_id:
                raise AuthError(Msg("No Dinero organisation id (firma-ID) is set for this integration."))
            return f"{self.base_url}/{version}/{self.organization_id}/{path}"
        return f"{self.base_url}/{version}/{path}"

    def request(self, method: str, path: str, *, version: str = "v1", params: dict | None = None,
                payload=None, files=None, org_scoped: bool = True):
        response = paced_bearer_request(
            self.session, method, self.url(path, version=version, org_scoped=org_scoped), system="Dinero",
            token_for=lambda refused: self.access_token(refused=refused), rate_key=self.rate_key, pace=self.pace,
            pause_seconds=WINDOW, max_rate_retries=MAX_RATE_RETRIES, params=params, payload=payload, files=files,
            sleep=self.sleep,
        )
        return self._result(response, write=method.upper() != "GET")

    def _result(self, response: requests.Response, *, write: bool):
        status = response.status_code
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if status < 300:
            return body if body is not None else {}
        code, message, errors = mapping.error_body(body)
        org = self.organization_id
        if status == 401:
            raise AuthError(key_no_longer_works_message(self.auth), code=code, http_status=401)
        if status == 403:
            if code in PRO_CODES:
                raise AuthError(pro_required_message(org, code), code=code, http_status=403)
            if code == FOREIGN_ORGANISATION_CODE:
                raise AuthError(wrong_organisation_message(org, self.auth), code=code, http_status=403)
            raise AuthError(Msg("Dinero refused access to organisation %(org)s: %(message)s", org=org, message=message or _("forbidden")), code=code, http_status=403)
        if status == 400 and code == STALE_TIMESTAMP_CODE:
            raise StaleVersionError(Msg("The voucher changed in Dinero since we read it (outdated Timestamp)."),
                                    code=code, http_status=400)
        if status == 404:
            raise NotFound(Msg("Not found in Dinero: %(message)s", message=message or response.request.path_url),
                           code=code, http_status=404)
        if status == 413:
            raise RemoteValidationError(Msg("The attachment is larger than Dinero accepts (6 MB). Attach a smaller "
                                          "file (a scan at lower resolution, or a PDF)."), code=code, http_status=413)
        if status == 480:
            raise RemoteValidationError(Msg("Dinero retired this endpoint (480 brownout); Kontera must use the "
                                          "current API version."), code=code or "480", http_status=480)
        if status >= 500:
            raise RetryableError(Msg("Dinero had an internal error (%(status)s).", status=status),
                                 http_status=status, outcome_unknown=write)
        if 400 <= status < 500:
            text = mapping.plain_validation(errors, message) if (errors or message) else redact(response.text[:300])
            kind = FileNotReady if status == 400 and mapping.file_not_ready(errors) else RemoteValidationError
            raise kind(text, code=code, http_status=status, field_name=next(iter(errors), "") if errors else "")
        raise ConnectorError(redact(response.text[:300]), code=code, http_status=status)

    def get(self, path: str, *, version: str = "v1", org_scoped: bool = True, **params):
        return self.request("GET", path, version=version, params=params or None, org_scoped=org_scoped)

    def post(self, path: str, payload=None, *, version: str = "v1", **params):
        return self.request("POST", path, version=version, params=params or None, payload=payload)

    def put(self, path: str, payload, *, version: str = "v1.1"):
        return self.request("PUT", path, version=version, payload=payload)

    def delete(self, path: str, payload):
        return self.request("DELETE", path, payload=payload)

    def upload(self, name: str, content: bytes, content_type: str = "application/octet-stream") -> str:
        body = self.request("POST", "files", params={"fileName": name}, files={"file": (name, content, content_type)})
        file_guid = str((body or {}).get("FileGuid") or "")
        if not file_guid:
            raise RetryableError(Msg("Dinero accepted the file but returned no FileGuid."))
        self.file_ready_at = time.time() + FILE_SETTLE_SECONDS
        return file_guid

    def start_within_budget(self, requests: int) -> None:
        """Start a voucher only when its ``requests`` (and the file's settling) fit in what is left of the
        dispatcher's send budget: cut off after its create, a voucher's outcome is unknown and the next
        run pays a look-up (the files list and a read) to find it. Not started, it is simply due again."""
        left = ratelimit.budget_left()
        if left is None:
            return
        needed = requests * self.pace.interval + FILE_SETTLE_SECONDS
        # At a pace so slow that a voucher takes longer than a run may ever hold, it is started anyway
        # (and looked up after a cut-off) rather than waiting for a run it would fit in.
        if left < needed <= LONGEST_VOUCHER_HELD_BACK:
            raise Deferred(Msg("Not started: this voucher's %(n)s requests to Dinero do not fit in what is left of "
                               "this run (%(left)s s); it goes out in the next one.", n=requests, left=int(max(left, 0))),
                           retry_after=0, code="rate_limited")

    def wait_for_file(self) -> None:
        """Let the last uploaded file settle before a voucher names it (only what is left of it)."""
        left = getattr(self, "file_ready_at", 0) - time.time()
        if left > 0:
            self.sleep(left)

    def get_all(self, path: str, **params) -> list[dict]:
        """Every page of a ``{"Collection", "Pagination"}`` list (zero-based pages, §11)."""
        items: list[dict] = []
        page = 0
        size = 1000
        while True:
            body = self.get(path, page=page, pageSize=size, **params) or {}
            chunk = body.get("Collection") or []
            items.extend(chunk)
            result = mapping.as_int((body.get("Pagination") or {}).get("Result"), 0) or 0
            if len(chunk) < size or len(items) >= result:
                return items
            page += 1
