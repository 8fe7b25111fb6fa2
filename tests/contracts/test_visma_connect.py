"""Every request Kontera makes to Visma Connect (how Dinero's public integrations sign in), against the
documented example (the source is named with each one):
  DEV-AUTH   https://developer.dinero.dk/documentation/authorization: the authorisation link
             (client_id, response_type=code, scope=dineropublicapi:read+dineropublicapi:write+
             offline_access, redirect_uri, ui_locales=da-DK) and the code exchange at
             https://connect.visma.com/connect/token.
  VC-WEB     https://docs.connect.visma.com/docs/server-side-web-applications: state, PKCE
             (code_challenge, code_challenge_method=S256, code_verifier) for web applications.
  VC-OFFLINE https://docs.connect.visma.com/v1/docs/offline-access: "curl --request POST --url
             https://connect.visma.com/connect/token --header 'content-type: application/x-www-form-urlencoded'
             --data 'client_id=demoapp&client_secret=SECRET&grant_type=refresh_token&refresh_token=…'".
  HEXIO      repository HexioDK/Hexio.DineroClient, Authorization/RequestAuthorizationToken.cs (the code
             exchange with ClientId, ClientSecret, Code, RedirectUri, CodeVerifier) and
             Models/OrganizationReadModel.cs (Id, Name, IsPro, Email, VatNumber).
  RFC6749    §5.1/§5.2: the token answer and its errors.
"""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations import tokens
from integrations.base import AuthError, RetryableError
from integrations.dinero.connector import DineroConnector
from integrations.models import OAuthState
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db

CLIENT_ID, CLIENT_SECRET = "isv_kontera", "kontera-visma-secret"
REDIRECT = "https://kontera.example/integrations/dinero/callback"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def visma(settings, db):
    settings.DINERO_API_URL = "https://api.dinero.dk"
    settings.VISMA_CONNECT_AUTHORIZE_URL = "https://connect.visma.com/connect/authorize"
    settings.VISMA_CONNECT_TOKEN_URL = "https://connect.visma.com/connect/token"
    settings.VISMA_CONNECT_CLIENT_ID, settings.VISMA_CONNECT_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    settings.VISMA_CONNECT_REDIRECT_URI = REDIRECT
    return IntegrationFactory(system="dinero", settings={"auth": "visma_connect", "organization_id": "123456"},
                              credentials={"access_token": "ACCESS", "refresh_token": "REFRESH",
                                           "expires_at": time.time() + 3000, "refreshed_at": time.time()})


def test_authorisation_url(visma):
    # [DEV-AUTH] https://connect.visma.com/connect/authorize?client_id=isv_…&response_mode=form_post
    #   &response_type=code&scope=dineropublicapi:read+dineropublicapi:write+offline_access
    #   &redirect_uri=…&ui_locales=da-DK; [VC-WEB] state, code_challenge, code_challenge_method=S256.
    # We leave response_mode at its default (query): see VismaConnectProvider's docstring.
    url = urlsplit(tokens.authorisation_url(integration=visma))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.scheme, url.netloc, url.path) == ("https", "connect.visma.com", "/connect/authorize")
    assert set(query) == {"client_id", "response_type", "scope", "redirect_uri", "state", "code_challenge",
                          "code_challenge_method", "ui_locales"}
    assert query["scope"] == "dineropublicapi:read dineropublicapi:write offline_access"  # space-delimited
    assert (query["client_id"], query["response_type"], query["redirect_uri"], query["ui_locales"]) == (
        CLIENT_ID, "code", REDIRECT, "da-DK")
    verifier = OAuthState.objects.get(state=query["state"]).secret_params["code_verifier"]
    assert 43 <= len(verifier) <= 128  # RFC 7636 §4.1
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge_method"] == "S256" and query["code_challenge"] == expected


def test_code_exchange(visma, wire):
    # [DEV-AUTH] POST https://connect.visma.com/connect/token; [HEXIO] the fields of the exchange;
    # [RFC6749 §5.1] the answer.
    wire.answer("POST", r"^/connect/token$", {"headers": JSON, "body": {
        "access_token": "eyJ…", "expires_in": 3600, "token_type": "Bearer", "refresh_token": "7990438c…3e88d61e65",
        "scope": "dineropublicapi:read dineropublicapi:write offline_access"}})
    stored = tokens.exchange_code(integration=visma, code="CODE-1", code_verifier="V" * 43)
    sent = wire.last("POST", "/connect/token")
    assert "Authorization" not in sent.headers  # the client's credentials are in the body
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.form() == {"grant_type": "authorization_code", "code": "CODE-1", "redirect_uri": REDIRECT,
                           "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code_verifier": "V" * 43}
    assert stored["access_token"] == "eyJ…" and stored["refresh_token"] == "7990438c…3e88d61e65"
    assert stored["expires_at"] > time.time() + 3000


def test_refresh(visma, wire):
    # [VC-OFFLINE] exactly the documented four fields, form-encoded.
    visma.credentials = {**visma.credentials, "expires_at": 0}
    visma.save()
    wire.answer("POST", r"^/connect/token$", {"headers": JSON, "body": {
        "access_token": "NEW", "expires_in": 3600, "token_type": "Bearer", "refresh_token": "NEXT",
        "scope": "dineropublicapi:read dineropublicapi:write offline_access"}})
    assert tokens.access_token(integration=visma) == "NEW"
    sent = wire.last("POST", "/connect/token")
    assert sent.form() == {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "refresh_token",
                           "refresh_token": "REFRESH"}
    visma.refresh_from_db()
    assert visma.credentials["refresh_token"] == "NEXT"


@pytest.mark.parametrize("status, body, kind, code", [
    (400, {"error": "invalid_grant"}, AuthError, "invalid_grant"),  # [RFC6749 §5.2] used, expired or revoked
    (400, {"error": "invalid_client"}, AuthError, "invalid_client"),  # our client id or secret
    (401, {"error": "invalid_client"}, AuthError, "invalid_client"),  # the same, as some servers answer it
    (503, "Service Unavailable", RetryableError, "503"),
])
def test_refresh_refused(visma, wire, status, body, kind, code):
    visma.credentials = {**visma.credentials, "expires_at": 0}
    visma.save()
    wire.answer("POST", r"^/connect/token$", {"status": status, "body": body,
                                              "headers": JSON if isinstance(body, dict) else {"Content-Type": "text/plain"}})
    with pytest.raises(kind) as refused:
        tokens.access_token(integration=visma)
    assert refused.value.code == code
    visma.refresh_from_db()
    assert visma.credentials["refresh_token"] == "REFRESH"  # nothing half-written


def test_organisations_reached_by_the_consent(visma, wire):
    # [HEXIO] OrganizationReadModel: Id, Name, IsPro, Email, VatNumber; fields= names what we read.
    wire.answer("GET", r"^/v1/organizations$", {"headers": JSON, "body": [
        {"Id": 123456, "Name": "Demo ApS", "IsPro": True, "VatNumber": "12345678"},
        {"Id": 654321, "Name": "Uden Pro ApS", "IsPro": False, "VatNumber": None}]})
    found = DineroConnector(visma).organisations()
    sent = wire.last("GET", "/v1/organizations")
    assert sent.query == {"fields": "Id,Name,IsPro,VatNumber"}
    assert sent.headers["Authorization"] == "Bearer ACCESS"
    assert [(o.remote_id, o.organisation_number, o.usable) for o in found] == [
        ("123456", "12345678", True), ("654321", "", False)]
    assert "Dinero Pro" in found[1].problem
