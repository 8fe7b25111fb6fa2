"""The one place where OAuth tokens are obtained and refreshed: Fortnox, and Dinero through Visma Connect.

Both hand out single-use refresh tokens that rotate on every refresh (Fortnox: developer/authorization;
Visma Connect: "one-time" tokens, developer.dinero.dk/news/grace-period-on-refresh-tokens), so two
workers refreshing the same token would lock the customer out. Refresh therefore happens only here,
under a row lock on the integration, re-checking after the lock whether another worker already did it,
and the new pair is committed before it is used. This is the only place a remote call is made while a
row lock is held: single flight is the point.

What differs per service (the wire format of the authorisation URL and the token requests) lives in
one ``Provider`` each; the state, the exchange, the single-flight refresh and the storage are shared.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlparse

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from requests import RequestException
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from wording import Msg

from .base import AuthError, RetryableError
from .http import make_session, retry_after_seconds
from .models import Integration, OAuthState

logger = logging.getLogger("kontera.tokens")

FORTNOX_SCOPES = ["bookkeeping", "costcenter", "companyinformation", "settings"]
# Dinero's public API through Visma Connect (api.dinero.dk/docs; developer.dinero.dk/documentation/
# authorization): read, write, and offline_access for refresh tokens.
VISMA_CONNECT_SCOPES = ["dineropublicapi:read", "dineropublicapi:write", "offline_access"]
STATE_TTL = timedelta(minutes=10)
# Refresh a little before expiry so a request never leaves with a token about to die.
EARLY_REFRESH = 120
# Fortnox refresh tokens die after 45 days; an idle connection is refreshed well before that.
REFRESH_TOKEN_LIFETIME = timedelta(days=45)
IDLE_REFRESH_AFTER = timedelta(days=7)


def _allow_local_http(url: str) -> None:
    # oauthlib insists on HTTPS; the local sandbox is plain HTTP on 127.0.0.1 only.
    host = urlparse(url).hostname or ""
    if urlparse(url).scheme == "http" and host in {"127.0.0.1", "localhost", "::1"}:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"  # Fortnox echoes scopes in its own order


# --- providers ------------------------------------------------------------------------------------


class Provider:
    """How one service wants the authorisation URL and the token requests; nothing else differs."""

    system = ""
    label = ""
    uses_pkce = False
    refresh_token_lifetime: timedelta | None = None

    def authorisation_url(self, *, state: str, code_challenge: str = "") -> str:
        raise NotImplementedError

    def exchange(self, *, code: str, code_verifier: str = "") -> dict:
        raise NotImplementedError

    def refresh(self, *, refresh_token: str) -> dict:
        raise NotImplementedError

    def missing_settings(self) -> str:
        """Why Kontera cannot start an authorisation (its own client settings are missing), or ""."""
        raise NotImplementedError

    def not_connected(self) -> str:
        raise NotImplementedError

    def expired(self) -> str:
        raise NotImplementedError


class FortnoxProvider(Provider):
    """Fortnox's authorisation-code flow (fortnox.se/developer/authorization): Basic client header,
    ``access_type=offline``; the refresh is grant_type and refresh_token only."""

    system = "fortnox"
    label = "Fortnox"
    refresh_token_lifetime = REFRESH_TOKEN_LIFETIME

    def _session(self, state: str | None = None, *, scope=FORTNOX_SCOPES) -> OAuth2Session:
        _allow_local_http(settings.FORTNOX_OAUTH_URL)
        session = OAuth2Session(settings.FORTNOX_CLIENT_ID, redirect_uri=settings.FORTNOX_REDIRECT_URI,
                                scope=scope, state=state)
        session.headers["User-Agent"] = make_session().headers["User-Agent"]
        return session

    @staticmethod
    def _client_auth() -> HTTPBasicAuth:
        return HTTPBasicAuth(settings.FORTNOX_CLIENT_ID, settings.FORTNOX_CLIENT_SECRET)

    def authorisation_url(self, *, state: str, code_challenge: str = "") -> str:
        url, _state = self._session(state).authorization_url(f"{settings.FORTNOX_OAUTH_URL}/auth",
                                                             access_type="offline")
        return url

    def exchange(self, *, code: str, code_verifier: str = "") -> dict:
        try:
            return self._session().fetch_token(f"{settings.FORTNOX_OAUTH_URL}/token", code=code,
                                               auth=self._client_auth(), include_client_id=False,
                                               timeout=settings.KONTERA_HTTP_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a typed error
            raise self._error(exc) from None

    def refresh(self, *, refresh_token: str) -> dict:
        try:
            # Fortnox's refresh is grant_type and refresh_token only (developer/authorization/
            # get-refresh-token); without scope=None requests-oauthlib would add the scopes too.
            return self._session(scope=None).refresh_token(
                f"{settings.FORTNOX_OAUTH_URL}/token", refresh_token=refresh_token,
                auth=self._client_auth(), timeout=settings.KONTERA_HTTP_TIMEOUT,
            )
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None

    @staticmethod
    def _error(exc: Exception) -> Exception:
        if isinstance(exc, OAuth2Error):
            if exc.error in ("invalid_grant", "invalid_client", "unauthorized_client", "access_denied"):
                return AuthError(
                    Msg("Fortnox refused the authorisation (%(error)s: %(description)s). Connect Fortnox again: open "
                      "the integration and press Connect Fortnox; waiting vouchers then go out by themselves.", error=exc.error, description=exc.description or ""),
                    code=exc.error, http_status=exc.status_code,
                )
            return RetryableError(Msg("Fortnox's token endpoint answered %(error)s.", error=exc.error),
                                  code=exc.error, http_status=exc.status_code)
        if isinstance(exc, RequestException):
            return RetryableError(Msg("Fortnox's token endpoint did not answer (%(error)s).", error=exc.__class__.__name__))
        return RetryableError(Msg("Fortnox's token endpoint answered unexpectedly: %(error)s", error=exc))

    def missing_settings(self) -> str:
        if settings.FORTNOX_CLIENT_ID and settings.FORTNOX_CLIENT_SECRET:
            return ""
        return Msg("Kontera has no Fortnox app configured (FORTNOX_CLIENT_ID and FORTNOX_CLIENT_SECRET). This is a "
                 "server setting: tell whoever runs Kontera.")

    def not_connected(self) -> str:
        return Msg("Fortnox is not connected yet. Press 'Connect Fortnox' on the integration.")

    def expired(self) -> str:
        return Msg("The Fortnox authorisation has expired. Connect Fortnox again.")


# The error codes of RFC 6749 §5.2 that mean "this consent (or this client) no longer works": asking
# again cannot help, a person must connect again (or fix the server's client settings).
REFUSALS = ("invalid_grant", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope")


class VismaConnectProvider(Provider):
    """Dinero's public integrations sign in through Visma Connect, an OAuth 2.0 server
    (docs.connect.visma.com, "Server-Side Web Applications" and "Offline Access"; developer.dinero.dk/
    documentation/authorization).

    * Authorisation: ``/connect/authorize`` with client_id, response_type=code, scope, redirect_uri,
      state and PKCE S256 (optional for web applications, OAuth 2.1; HexioDK/Hexio.DineroClient
      ``Authorization/GetAuthorizeInfo.cs`` sends it). The answer comes back as a query-string
      redirect (RFC 6749 §4.1.2): Dinero's tutorial shows ``response_mode=form_post``, but a POST from
      connect.visma.com does not carry the admin's SameSite=Lax session cookie, so the staff member
      would arrive logged out and the company could not be checked.
    * Token requests: a form POST with client_id and client_secret in the body (the documented
      parameters, "Offline Access"; dinero-cli ``src/dinero_cli/auth.py`` does the same).
    * Refresh tokens rotate ("one-time") unless the app is set to "re-use"; either way the answer
      may carry a new one, which replaces the old (RFC 6749 §6).
    """

    system = "dinero"
    label = "Dinero (Visma Connect)"
    uses_pkce = True
    refresh_token_lifetime = None  # set per app in the Visma Developer Portal; the answer does not say

    def authorisation_url(self, *, state: str, code_challenge: str = "") -> str:
        params = {
            "client_id": settings.VISMA_CONNECT_CLIENT_ID,
            "response_type": "code",
            "scope": " ".join(VISMA_CONNECT_SCOPES),
            "redirect_uri": settings.VISMA_CONNECT_REDIRECT_URI,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "ui_locales": "da-DK",  # Dinero's own example link asks for the Danish consent page
        }
        return f"{settings.VISMA_CONNECT_AUTHORIZE_URL}?{urlencode(params)}"

    def exchange(self, *, code: str, code_verifier: str = "") -> dict:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": settings.VISMA_CONNECT_REDIRECT_URI,
                "client_id": settings.VISMA_CONNECT_CLIENT_ID, "client_secret": settings.VISMA_CONNECT_CLIENT_SECRET}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return self._post(form)

    def refresh(self, *, refresh_token: str) -> dict:
        return self._post({"client_id": settings.VISMA_CONNECT_CLIENT_ID,
                           "client_secret": settings.VISMA_CONNECT_CLIENT_SECRET,
                           "grant_type": "refresh_token", "refresh_token": refresh_token})

    def _post(self, form: dict) -> dict:
        try:
            response = make_session().post(settings.VISMA_CONNECT_TOKEN_URL, data=form)
        except RequestException as exc:
            raise RetryableError(Msg("Visma Connect (Dinero's login service) did not answer (%(error)s).", error=exc.__class__.__name__)) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        error = str(body.get("error") or "")
        if response.status_code == 200 and body.get("access_token"):
            return body
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(Msg("Visma Connect (Dinero's login service) is busy or failing (%(status)s); we try "
                                   "again later.", status=response.status_code),
                                 retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                                 http_status=response.status_code, code=str(response.status_code))
        if error == "invalid_client":
            raise AuthError(Msg("Visma Connect does not recognise Kontera's own client id and secret "
                              "(VISMA_CONNECT_CLIENT_ID and VISMA_CONNECT_CLIENT_SECRET). This is a server setting: "
                              "tell whoever runs Kontera."), code=error, http_status=response.status_code)
        if error in REFUSALS:
            raise AuthError(Msg("Dinero (Visma Connect) refused the authorisation (%(error)s): the consent was "
                              "withdrawn or has expired. Connect Dinero again: open the integration and press "
                              "Connect Dinero; waiting vouchers then go out by themselves.", error=error),
                            code=error, http_status=response.status_code)
        raise RetryableError(Msg("Visma Connect (Dinero's login service) answered unexpectedly (%(status)s %(error)s).", status=response.status_code, error=error), code=error,
                             http_status=response.status_code)

    def missing_settings(self) -> str:
        if settings.VISMA_CONNECT_CLIENT_ID and settings.VISMA_CONNECT_CLIENT_SECRET:
            return ""
        return Msg("Kontera has no Visma Connect application configured (VISMA_CONNECT_CLIENT_ID and "
                 "VISMA_CONNECT_CLIENT_SECRET). This is a server setting: tell whoever runs Kontera.")

    def not_connected(self) -> str:
        return Msg("Dinero is not connected through Visma Connect yet. Press 'Connect Dinero' on the integration.")

    def expired(self) -> str:
        return Msg("The Dinero (Visma Connect) authorisation has expired. Connect Dinero again.")


PROVIDERS: dict[str, Provider] = {"fortnox": FortnoxProvider(), "dinero": VismaConnectProvider()}


def provider_for(system: str) -> Provider:
    try:
        return PROVIDERS[system]
    except KeyError:
        raise LookupError(f"{system} has no OAuth connection") from None


# --- the authorisation request and its state --------------------------------------------------------


def _code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 §4.2): BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class NotConfigured(Exception):
    """Kontera's own client settings for the service are missing: no authorisation can start."""


def authorisation_url(*, integration: Integration, user=None) -> str:
    """Start the authorisation-code flow: a fresh, single-use state bound to this integration."""
    provider = provider_for(integration.system)
    missing = provider.missing_settings()
    if missing:
        raise NotConfigured(missing)
    state = secrets.token_urlsafe(32)
    # RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~]; token_urlsafe(64) gives 86.
    verifier = secrets.token_urlsafe(64) if provider.uses_pkce else ""
    OAuthState.objects.create(state=state, integration=integration, user=user,
                              secret_params={"code_verifier": verifier} if verifier else {})
    return provider.authorisation_url(state=state, code_challenge=_code_challenge(verifier) if verifier else "")


def fortnox_authorisation_url(*, integration: Integration, user=None) -> str:
    return authorisation_url(integration=integration, user=user)


class StateError(Exception):
    pass


@dataclass(frozen=True)
class ReturnedConsent:
    """A checked, burnt ``state``: whose integration it was for, and what the token request needs."""

    integration: Integration
    code_verifier: str = ""


def consume_state(*, state: str, user, user_can_act_on, system: str = "") -> ReturnedConsent:
    """Check and burn a returned ``state``: known, unused, under 10 minutes old, the user's, and (with
    ``system``) started for that system's integration.

    ``user_can_act_on(user, company)`` is the caller's membership check (connectors know no companies' staff).
    """
    with transaction.atomic():
        row = OAuthState.objects.select_for_update().select_related("integration__company").filter(state=state).first()
        if row is None:
            raise StateError(Msg("Unknown authorisation request; start again from the integration page."))
        if row.used_at is not None:
            raise StateError(Msg("This authorisation request was already used; start again."))
        if timezone.now() - row.created_at > STATE_TTL:
            raise StateError(Msg("The authorisation request expired (10 minutes); start again."))
        if system and row.integration.system != system:
            raise StateError(Msg("This authorisation request was started for another system; start again."))
        if not user_can_act_on(user, row.integration.company):
            raise StateError(Msg("You do not serve this company."))
        row.used_at = timezone.now()
        row.save(update_fields=["used_at"])
        return ReturnedConsent(integration=row.integration,
                               code_verifier=str((row.secret_params or {}).get("code_verifier") or ""))


# --- tokens ---------------------------------------------------------------------------------------------------


def _store(integration: Integration, token: dict, provider: Provider) -> dict:
    integration.credentials = credentials_from_token(integration, token, provider)
    integration.save(update_fields=["credentials", "updated_at"])
    return integration.credentials


def credentials_from_token(integration: Integration, token: dict, provider: Provider) -> dict:
    """The integration's credentials with a new token pair in them (nothing saved)."""
    now = time.time()
    credentials = dict(integration.credentials or {})
    credentials.update({
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token") or credentials.get("refresh_token", ""),
        "expires_at": now + float(token.get("expires_in") or 3600),
        "refreshed_at": now,
        "scope": " ".join(token["scope"]) if isinstance(token.get("scope"), list) else token.get("scope", ""),
    })
    if token.get("refresh_token") and provider.refresh_token_lifetime:
        credentials["refresh_expires_at"] = now + provider.refresh_token_lifetime.total_seconds()
    return credentials


def exchange_code(*, integration: Integration, code: str, code_verifier: str = "", store: bool = True) -> dict:
    """Exchange the authorisation code for the first token pair and store it (encrypted).

    ``store=False`` only returns the new credentials, e.g. to check which company they reach before they
    replace the stored ones (``store_credentials``)."""
    provider = provider_for(integration.system)
    token = provider.exchange(code=code, code_verifier=code_verifier)
    if not store:
        return credentials_from_token(integration, token, provider)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        stored = _store(locked, token, provider)
    integration.credentials = stored
    return stored


def fortnox_exchange_code(*, integration: Integration, code: str, store: bool = True) -> dict:
    return exchange_code(integration=integration, code=code, store=store)


def store_credentials(*, integration: Integration, credentials: dict) -> None:
    """Keep credentials obtained earlier with ``exchange_code(store=False)``."""
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        locked.credentials = credentials
        locked.save(update_fields=["credentials", "updated_at"])
    integration.credentials = credentials


def _needs_refresh(credentials: dict, *, stale_access_token: str | None, now: float) -> bool:
    if stale_access_token is not None:
        # Refresh only if the token the target just refused is still the stored one.
        return credentials.get("access_token") == stale_access_token
    return float(credentials.get("expires_at") or 0) - EARLY_REFRESH <= now


def access_token(*, integration: Integration, stale_access_token: str | None = None) -> str:
    """A usable access token; refreshes (single flight) when it is about to expire or was refused."""
    provider = provider_for(integration.system)
    credentials = integration.credentials or {}
    if not credentials.get("refresh_token") and not credentials.get("access_token"):
        raise AuthError(provider.not_connected())
    now = time.time()
    if not _needs_refresh(credentials, stale_access_token=stale_access_token, now=now):
        return credentials["access_token"]
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        credentials = locked.credentials or {}
        if not _needs_refresh(credentials, stale_access_token=stale_access_token, now=time.time()):
            integration.credentials = credentials  # another worker refreshed while we waited
            return credentials["access_token"]
        if not credentials.get("refresh_token"):
            raise AuthError(provider.expired())
        token = provider.refresh(refresh_token=credentials["refresh_token"])
        stored = _store(locked, token, provider)  # committed with this block, before the token is used
    integration.credentials = stored
    logger.info("Refreshed the %s token for integration %s", provider.label, integration.pk)
    return stored["access_token"]


def fortnox_access_token(*, integration: Integration, stale_access_token: str | None = None) -> str:
    return access_token(integration=integration, stale_access_token=stale_access_token)


def refresh_idle(*, integration: Integration, older_than: timedelta = IDLE_REFRESH_AFTER) -> bool:
    """Refresh a connection nobody used lately, so its refresh token never runs out unnoticed."""
    credentials = integration.credentials or {}
    refreshed_at = float(credentials.get("refreshed_at") or 0)
    if not credentials.get("refresh_token") or time.time() - refreshed_at < older_than.total_seconds():
        return False
    access_token(integration=integration, stale_access_token=credentials.get("access_token"))
    return True


def fortnox_refresh_idle(*, integration: Integration, older_than: timedelta = IDLE_REFRESH_AFTER) -> bool:
    return refresh_idle(integration=integration, older_than=older_than)
