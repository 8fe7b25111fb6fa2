"""The one place where OAuth tokens are obtained and refreshed.

Fortnox refresh tokens are single-use and rotate on every refresh, so two workers refreshing
the same token would lock the customer out. Refresh therefore happens only here, under a row
lock on the integration, re-checking after the lock whether another worker already did it, and
the new pair is committed before it is used. This is the only place a remote call is made while a
row lock is held: single flight is the point.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from datetime import timedelta
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from requests import RequestException
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from .base import AuthError, RetryableError
from .http import make_session
from .models import Integration, OAuthState

logger = logging.getLogger("kontera.tokens")

FORTNOX_SCOPES = ["bookkeeping", "costcenter", "companyinformation", "settings"]
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


def _oauth_session(state: str | None = None, *, scope=FORTNOX_SCOPES) -> OAuth2Session:
    _allow_local_http(settings.FORTNOX_OAUTH_URL)
    session = OAuth2Session(settings.FORTNOX_CLIENT_ID, redirect_uri=settings.FORTNOX_REDIRECT_URI,
                            scope=scope, state=state)
    session.headers["User-Agent"] = make_session().headers["User-Agent"]
    return session


def _client_auth() -> HTTPBasicAuth:
    return HTTPBasicAuth(settings.FORTNOX_CLIENT_ID, settings.FORTNOX_CLIENT_SECRET)


def fortnox_authorisation_url(*, integration: Integration, user=None) -> str:
    """Start the authorisation-code flow: a fresh, single-use state bound to this integration."""
    state = secrets.token_urlsafe(32)
    OAuthState.objects.create(state=state, integration=integration, user=user)
    url, _state = _oauth_session(state).authorization_url(
        f"{settings.FORTNOX_OAUTH_URL}/auth", access_type="offline"
    )
    return url


class StateError(Exception):
    pass


def consume_state(*, state: str, user, user_can_act_on) -> Integration:
    """Check and burn a returned ``state``: known, unused, under 10 minutes old, and the user's.

    ``user_can_act_on(user, company)`` is the caller's membership check (connectors know no companies' staff).
    """
    with transaction.atomic():
        row = OAuthState.objects.select_for_update().select_related("integration__company").filter(state=state).first()
        if row is None:
            raise StateError("Unknown authorisation request; start again from the integration page.")
        if row.used_at is not None:
            raise StateError("This authorisation request was already used; start again.")
        if timezone.now() - row.created_at > STATE_TTL:
            raise StateError("The authorisation request expired (10 minutes); start again.")
        if not user_can_act_on(user, row.integration.company):
            raise StateError("You do not serve this company.")
        row.used_at = timezone.now()
        row.save(update_fields=["used_at"])
        return row.integration


def _store(integration: Integration, token: dict) -> dict:
    integration.credentials = credentials_from_token(integration, token)
    integration.save(update_fields=["credentials", "updated_at"])
    return integration.credentials


def credentials_from_token(integration: Integration, token: dict) -> dict:
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
    if token.get("refresh_token"):
        credentials["refresh_expires_at"] = now + REFRESH_TOKEN_LIFETIME.total_seconds()
    return credentials


def _token_error(exc: Exception) -> Exception:
    if isinstance(exc, OAuth2Error):
        if exc.error in ("invalid_grant", "invalid_client", "unauthorized_client", "access_denied"):
            return AuthError(
                "Fortnox refused the authorisation (%s: %s). Connect Fortnox again." % (exc.error, exc.description or ""),
                code=exc.error, http_status=exc.status_code,
            )
        return RetryableError(f"Fortnox token endpoint: {exc.error}", code=exc.error, http_status=exc.status_code)
    if isinstance(exc, RequestException):
        return RetryableError(f"Fortnox token endpoint unreachable: {exc.__class__.__name__}")
    return RetryableError(f"Fortnox token endpoint answered unexpectedly: {exc}")


def fortnox_exchange_code(*, integration: Integration, code: str, store: bool = True) -> dict:
    """Exchange the authorisation code for the first token pair and store it (encrypted).

    ``store=False`` only returns the new credentials, e.g. to check which Fortnox company they reach
    before they replace the stored ones (``fortnox_store_credentials``)."""
    session = _oauth_session()
    try:
        token = session.fetch_token(f"{settings.FORTNOX_OAUTH_URL}/token", code=code, auth=_client_auth(),
                                    include_client_id=False, timeout=settings.KONTERA_HTTP_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a typed error
        raise _token_error(exc) from None
    if not store:
        return credentials_from_token(integration, token)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        return _store(locked, token)


def fortnox_store_credentials(*, integration: Integration, credentials: dict) -> None:
    """Keep credentials obtained earlier with ``fortnox_exchange_code(store=False)``."""
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


def fortnox_access_token(*, integration: Integration, stale_access_token: str | None = None) -> str:
    """A usable access token; refreshes (single flight) when it is about to expire or was refused."""
    credentials = integration.credentials or {}
    if not credentials.get("refresh_token") and not credentials.get("access_token"):
        raise AuthError("Fortnox is not connected yet. Press 'Connect Fortnox' on the integration.")
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
            raise AuthError("The Fortnox authorisation has expired. Connect Fortnox again.")
        try:
            # Fortnox's refresh is grant_type and refresh_token only (developer/authorization/
            # get-refresh-token); without scope=None requests-oauthlib would add the scopes too.
            token = _oauth_session(scope=None).refresh_token(
                f"{settings.FORTNOX_OAUTH_URL}/token", refresh_token=credentials["refresh_token"],
                auth=_client_auth(), timeout=settings.KONTERA_HTTP_TIMEOUT,
            )
        except Exception as exc:  # noqa: BLE001
            raise _token_error(exc) from None
        stored = _store(locked, token)  # committed with this block, before the token is used
    integration.credentials = stored
    logger.info("Refreshed the Fortnox token for integration %s", integration.pk)
    return stored["access_token"]


def fortnox_refresh_idle(*, integration: Integration, older_than: timedelta = IDLE_REFRESH_AFTER) -> bool:
    """Refresh a connection nobody used lately, so its 45-day refresh token never runs out."""
    credentials = integration.credentials or {}
    refreshed_at = float(credentials.get("refreshed_at") or 0)
    if not credentials.get("refresh_token") or time.time() - refreshed_at < older_than.total_seconds():
        return False
    fortnox_access_token(integration=integration, stale_access_token=credentials.get("access_token"))
    return True
