"""A local emulation of Visma Connect, the OAuth 2.0 server Dinero's public integrations sign in with.

The Dinero sandbox serves it at ``/connect/authorize`` and ``/connect/token`` (production:
``https://connect.visma.com/connect/…``) and asks it whether a bearer token is good. Never friendlier
than documented; where the documentation is silent the stricter reading is a constant below, with
the reason. Sources:

  DEV-AUTH   https://developer.dinero.dk/documentation/authorization (and /tutorial): a link with
             client_id, scopes dineropublicapi:read/write and offline_access, redirect_uri,
             response_type=code, state; the user accepts or cancels; the code is exchanged at
             /connect/token; with offline_access "your users won't have to authorize you every
             single hour".
  DEV-FAQ    https://developer.dinero.dk/documentation/faq: web applications only, client ids isv_….
  DEV-NEWS   https://developer.dinero.dk/news/grace-period-on-refresh-tokens: "one-time" refresh
             tokens (the old one dies on use; optional grace period of 5–60 s) or "re-use" tokens
             living up to a year; new settings apply only after the user authorises again.
  VC-WEB     https://docs.connect.visma.com/docs/server-side-web-applications: authorization_code,
             PKCE optional for web applications (set per application), query parameters.
  VC-OFFLINE https://docs.connect.visma.com/v1/docs/offline-access: refresh with client_id,
             client_secret, grant_type=refresh_token and refresh_token in a form body; offline access
             only when the application has it enabled and asks for offline_access.
  RFC6749    the OAuth 2.0 error answers (§4.1.2.1 authorisation errors, §5.2 token errors) that an
             OAuth 2.0 server gives; Visma Connect's own error bodies are not published.
  CLI        repository peterbb148/dinero-cli, docs/authentication.md: "Authorization belongs to the
             user and can be used across organizations".
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from werkzeug.wrappers import Request, Response

# DEV-AUTH: "every single hour"; maesn's Dinero guide: "Access Token Lifetime: Set to 60 minutes".
ACCESS_TOKEN_LIFETIME_SECONDS = 3600
# Not published. OAuth 2.0 asks for short-lived codes (RFC 6749 §4.1.2, "a maximum … of 10 minutes
# is RECOMMENDED"); we take 5 minutes, the default of the IdentityServer family Visma Connect's
# /connect/* paths come from (assumed).
AUTHORIZATION_CODE_LIFETIME_SECONDS = 300
# DEV-NEWS: the lifetime is an application setting and the token answer does not tell it. We take
# 30 days counted from the consent, not from the last refresh (the stricter reading: a connection
# must be renewed by a person after 30 days even if used every day).
REFRESH_TOKEN_LIFETIME_SECONDS = 30 * 86400
# DEV-NEWS: the grace period is optional; off unless a test turns it on.
REFRESH_GRACE_SECONDS = 0
# Presenting a one-time refresh token that was already used (outside the grace period) is refused
# with invalid_grant; we also revoke everything issued under that consent, as the OAuth 2.0 security
# best practice recommends for a detected replay (stricter than refusing only the one request).
REVOKE_GRANT_ON_REFRESH_REUSE = True
# RFC 6749 §4.1.2: a code used twice is refused and the tokens issued from it SHOULD be revoked.
REVOKE_GRANT_ON_CODE_REUSE = True
# VC-WEB: PKCE is optional for web applications; a client registered with it must send S256
# (RFC 7636 allows "plain"; we refuse it).
PKCE_METHODS = ("S256",)
SCOPES = {
    "dineropublicapi:read": "Læse dine data i Dinero",
    "dineropublicapi:write": "Oprette og ændre data i Dinero",
    "offline_access": "Bevare adgangen, også når du ikke er logget ind",
}
# Only the authorisation-code grant and its refresh: a service (client-credentials) application is not
# supported for Dinero ("Can I create a service application? No.", DEV-FAQ).
GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    name: str = ""
    offline_access: bool = True
    require_pkce: bool = True


@dataclass
class User:
    email: str
    password: str
    name: str
    organizations: list[int] = field(default_factory=list)


@dataclass
class Grant:
    """One consent of one user to one client; every token issued under it dies with it."""

    grant_id: str
    client_id: str
    email: str
    scopes: list[str]
    created_at: float
    revoked: bool = False


@dataclass
class Code:
    code: str
    client_id: str
    email: str
    scopes: list[str]
    redirect_uri: str
    code_challenge: str
    expires_at: float
    used: bool = False
    grant_id: str = ""


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    expires_at: float
    used_at: float | None = None


@dataclass
class AccessToken:
    token: str
    grant_id: str
    client_id: str
    email: str
    scopes: list[str]
    expires_at: float


def _append_query(uri: str, params: dict) -> str:
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _token_error(error: str, status: int = 400) -> Response:
    # RFC 6749 §5.2: JSON {"error": …}; no description (an OAuth server may leave it out).
    return Response(json.dumps({"error": error}), status=status, content_type="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


class VismaConnect:
    """State and pages of the emulated Visma Connect. ``clock`` and ``lock`` are the Dinero sandbox's."""

    def __init__(self, clock, lock) -> None:
        self.clock = clock
        self._lock = lock
        self.refresh_grace_seconds = REFRESH_GRACE_SECONDS
        self._init_state()

    def _init_state(self) -> None:
        self.clients: dict[str, Client] = {}
        self.users: dict[str, User] = {}
        self.grants: dict[str, Grant] = {}
        self.codes: dict[str, Code] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_count = 0  # successful refresh grants
        self.refresh_reuse: list[str] = []  # grant ids whose used refresh token was presented again

    # --- setup ---------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._init_state()

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str], *, name: str = "",
                        offline_access: bool = True, require_pkce: bool = True) -> Client:
        """An application as set up in the Visma Developer Portal (Web application)."""
        with self._lock:
            client = Client(client_id, client_secret, list(redirect_uris), name or client_id, offline_access,
                            require_pkce)
            self.clients[client_id] = client
            return client

    def add_redirect_uri(self, client_id: str, redirect_uri: str) -> None:
        with self._lock:
            client = self.clients[client_id]
            if redirect_uri not in client.redirect_uris:
                client.redirect_uris.append(redirect_uri)

    def add_user(self, email: str, password: str, name: str, organizations: list[int]) -> User:
        """A Visma (Dinero) login with access to some organisations (an accountant serves several)."""
        with self._lock:
            user = User(email.lower(), password, name, [int(o) for o in organizations])
            self.users[user.email] = user
            return user

    def grant_organization(self, email: str, org_id: int) -> None:
        with self._lock:
            user = self.users[email.lower()]
            if int(org_id) not in user.organizations:
                user.organizations.append(int(org_id))

    def withdraw_organization(self, email: str, org_id: int) -> None:
        """The user loses access to an organisation (e.g. the client left the bureau)."""
        with self._lock:
            user = self.users[email.lower()]
            user.organizations = [o for o in user.organizations if o != int(org_id)]

    def revoke(self, email: str, client_id: str) -> None:
        """The user withdraws the consent: every token of this client and user dies."""
        with self._lock:
            for grant in self.grants.values():
                if grant.client_id == client_id and grant.email == email.lower():
                    grant.revoked = True

    def authorize(self, client_id: str, email: str, *, scopes=None, redirect_uri: str | None = None,
                  code_challenge: str = "") -> str:
        """A code exactly as logging in and accepting the consent page would give (tests)."""
        with self._lock:
            client = self.clients[client_id]
            return self._issue_code(client, self.users[email.lower()],
                                    list(scopes or SCOPES), redirect_uri or client.redirect_uris[0], code_challenge)

    # --- what the API asks -----------------------------------------------------------------------

    def bearer(self, token: str) -> AccessToken | None:
        """The access token, if it is known, unexpired and its consent still stands."""
        with self._lock:
            access = self.access_tokens.get(token)
            if access is None or self.clock.now() >= access.expires_at:
                return None
            grant = self.grants.get(access.grant_id)
            if grant is None or grant.revoked:
                return None
            return access

    def organizations_of(self, email: str) -> list[int]:
        with self._lock:
            user = self.users.get(email.lower())
            return list(user.organizations) if user else []

    # --- persistence ---------------------------------------------------------------------------

    def dump_state(self) -> dict:
        with self._lock:
            return {name: [asdict(v) for v in getattr(self, name).values()]
                    for name in ("clients", "users", "grants", "codes", "refresh_tokens", "access_tokens")}

    def load_state(self, state: dict) -> None:
        kinds = {"clients": (Client, "client_id"), "users": (User, "email"), "grants": (Grant, "grant_id"),
                 "codes": (Code, "code"), "refresh_tokens": (RefreshToken, "token"),
                 "access_tokens": (AccessToken, "token")}
        with self._lock:
            self._init_state()
            for name, (kind, key) in kinds.items():
                setattr(self, name, {item[key]: kind(**item) for item in state.get(name, [])})

    # --- /connect/authorize ----------------------------------------------------------------------

    def _check_request(self, params: dict) -> tuple | None:
        """None if fine; ("page", text) where no redirect may happen; ("redirect", uri, error)."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return ("page", "unauthorized_client: unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        # RFC 6749 §4.1.2.1: a missing or unregistered redirect URI is shown, never redirected to.
        if redirect_uri not in client.redirect_uris:
            return ("page", "invalid_request: the redirect_uri is not registered for this client")
        if params.get("response_type") != "code":
            return ("redirect", redirect_uri, "unsupported_response_type")
        if params.get("response_mode", "query") not in ("query", "form_post"):
            return ("redirect", redirect_uri, "invalid_request")
        scopes = params.get("scope", "").split()
        if not scopes or any(s not in SCOPES for s in scopes):
            return ("redirect", redirect_uri, "invalid_scope")
        if "offline_access" in scopes and not client.offline_access:
            return ("redirect", redirect_uri, "invalid_scope")
        challenge = params.get("code_challenge", "")
        if challenge and params.get("code_challenge_method", "plain") not in PKCE_METHODS:
            return ("redirect", redirect_uri, "invalid_request")
        if client.require_pkce and not challenge:
            return ("redirect", redirect_uri, "invalid_request")
        return None

    def authorize_page(self, request: Request) -> Response:
        with self._lock:
            source = request.args if request.method == "GET" else request.form
            params = {k: source[k] for k in source if k not in ("email", "password", "decision") and source[k] != ""}
            problem = self._check_request(params)
            if problem:
                return self._problem(problem, params)
            if request.method == "GET":
                return self._consent_page(params)
            redirect_uri = params["redirect_uri"]
            if request.form.get("decision") != "accept":
                return self._answer(params, redirect_uri, {"error": "access_denied"})
            user = self.users.get(request.form.get("email", "").strip().lower())
            if user is None or not secrets.compare_digest(user.password, request.form.get("password", "")):
                return self._consent_page(params, error="Forkert e-mail eller adgangskode.")
            client = self.clients[params["client_id"]]
            code = self._issue_code(client, user, params["scope"].split(), redirect_uri,
                                    params.get("code_challenge", ""))
            return self._answer(params, redirect_uri, {"code": code, "scope": params["scope"]})

    def _issue_code(self, client: Client, user: User, scopes: list[str], redirect_uri: str, challenge: str) -> str:
        code = secrets.token_hex(32).upper()
        self.codes[code] = Code(code, client.client_id, user.email, scopes, redirect_uri, challenge,
                                self.clock.now() + AUTHORIZATION_CODE_LIFETIME_SECONDS)
        return code

    def _problem(self, problem: tuple, params: dict) -> Response:
        if problem[0] == "page":
            return self._html("Fejl", f"<p class=error>{html.escape(problem[1])}</p>", status=400)
        return self._answer(params, problem[1], {"error": problem[2]})

    def _answer(self, params: dict, redirect_uri: str, values: dict) -> Response:
        if params.get("state"):
            values = {**values, "state": params["state"]}
        if params.get("response_mode") == "form_post":
            fields = "".join(f'<input type=hidden name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in values.items())
            return self._html("Visma Connect", f'<form method=post action="{html.escape(redirect_uri)}">{fields}'
                                               "<noscript><button>Fortsæt</button></noscript></form>"
                                               "<script>document.forms[0].submit()</script>")
        return Response(status=302, headers={"Location": _append_query(redirect_uri, values)})

    def _consent_page(self, params: dict, error: str = "") -> Response:
        client = self.clients[params["client_id"]]
        esc = html.escape
        scopes = "".join(f"<li>{esc(SCOPES[s])} <code>{esc(s)}</code></li>" for s in params["scope"].split())
        hidden = "".join(f'<input type=hidden name="{esc(k)}" value="{esc(v)}">' for k, v in params.items())
        body = (
            f"{'<p class=error>' + esc(error) + '</p>' if error else ''}"
            f"<p><b>{esc(client.name)}</b> vil gerne have adgang til Dinero på dine vegne:</p><ul>{scopes}</ul>"
            f"<form method=post>{hidden}"
            "<p><label>E-mail <input name=email type=email autocomplete=username></label></p>"
            "<p><label>Adgangskode <input name=password type=password autocomplete=current-password></label></p>"
            "<p><button name=decision value=accept>Tillad</button> "
            "<button name=decision value=cancel>Afvis</button></p></form>"
            "<p><small>Visma Connect-sandkasse (Kontera). Ingen rigtig Visma-konto bruges.</small></p>"
        )
        return self._html("Log ind med Visma", body)

    @staticmethod
    def _html(title: str, body: str, status: int = 200) -> Response:
        page = (f"<!doctype html><html lang=da><head><meta charset=utf-8><title>{html.escape(title)} – Visma Connect"
                "</title><style>body{font-family:sans-serif;max-width:36em;margin:3em auto}.error{color:#b00}"
                f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
        return Response(page, status=status, content_type="text/html; charset=utf-8")

    # --- /connect/token ----------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        with self._lock:
            if request.mimetype != "application/x-www-form-urlencoded":
                return _token_error("invalid_request")
            form = request.form
            # VC-OFFLINE documents client_id and client_secret in the body; a Basic header is not
            # documented, so it does not stand in for them here.
            client = self.clients.get(form.get("client_id", ""))
            if client is None or not secrets.compare_digest(client.client_secret, form.get("client_secret", "")):
                return _token_error("invalid_client")
            grant_type = form.get("grant_type", "")
            if grant_type not in GRANT_TYPES:
                return _token_error("unsupported_grant_type" if grant_type else "invalid_request")
            if grant_type == "authorization_code":
                return self._exchange(client, form)
            return self._refresh(client, form.get("refresh_token", ""))

    def _exchange(self, client: Client, form) -> Response:
        code = self.codes.get(form.get("code", ""))
        if code is None or code.client_id != client.client_id:
            return _token_error("invalid_grant")
        if code.used:
            if REVOKE_GRANT_ON_CODE_REUSE and code.grant_id in self.grants:
                self.grants[code.grant_id].revoked = True
            return _token_error("invalid_grant")
        # Spent by its first presentation, right or wrong (the IdentityServer family removes a code
        # from its store before checking the rest; the stricter reading of "single use").
        code.used = True
        if self.clock.now() >= code.expires_at or form.get("redirect_uri", "") != code.redirect_uri:
            return _token_error("invalid_grant")
        if code.code_challenge and _s256(form.get("code_verifier", "")) != code.code_challenge:
            return _token_error("invalid_grant")
        user = self.users.get(code.email)
        if user is None:
            return _token_error("invalid_grant")
        grant = Grant(uuid.uuid4().hex, client.client_id, user.email, list(code.scopes), self.clock.now())
        self.grants[grant.grant_id] = grant
        code.grant_id = grant.grant_id
        return self._issue(client, grant)

    def _refresh(self, client: Client, presented: str) -> Response:
        now = self.clock.now()
        token = self.refresh_tokens.get(presented)
        grant = self.grants.get(token.grant_id) if token else None
        if token is None or grant is None or grant.client_id != client.client_id:
            return _token_error("invalid_grant")
        if token.used_at is not None and now - token.used_at > self.refresh_grace_seconds:
            self.refresh_reuse.append(grant.grant_id)
            if REVOKE_GRANT_ON_REFRESH_REUSE:
                grant.revoked = True
            return _token_error("invalid_grant")
        if grant.revoked or now >= token.expires_at or grant.email not in self.users:
            return _token_error("invalid_grant")
        token.used_at = token.used_at or now
        self.refresh_count += 1
        return self._issue(client, grant, refresh_expires_at=token.expires_at)

    def _issue(self, client: Client, grant: Grant, *, refresh_expires_at: float | None = None) -> Response:
        now = self.clock.now()
        access = AccessToken(secrets.token_urlsafe(48), grant.grant_id, client.client_id, grant.email,
                             list(grant.scopes), now + ACCESS_TOKEN_LIFETIME_SECONDS)
        self.access_tokens[access.token] = access
        body = {"access_token": access.token, "expires_in": ACCESS_TOKEN_LIFETIME_SECONDS, "token_type": "Bearer",
                "scope": " ".join(grant.scopes)}
        if "offline_access" in grant.scopes and client.offline_access:
            refresh = RefreshToken(secrets.token_hex(32).upper(), grant.grant_id,
                                   refresh_expires_at or grant.created_at + REFRESH_TOKEN_LIFETIME_SECONDS)
            self.refresh_tokens[refresh.token] = refresh
            body["refresh_token"] = refresh.token
        return Response(json.dumps(body), status=200, content_type="application/json",
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
