"""The Dinero sandbox's Visma Connect (consent page, token endpoint, user tokens on the API), over real
HTTP and without Django: each rule the module docstring of ``integrations/sandboxes/visma_connect.py``
names, and that it is never friendlier than the documentation."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.sandboxes import visma_connect as vc
from integrations.sandboxes.base import ServerThread
from integrations.sandboxes.dinero import DineroSandbox

CLIENT = ("isv_test", "test-secret")
REDIRECT = "https://kontera.example/integrations/dinero/callback"
USER = ("anne@bureau.example", "pw-anne", "Anne")
ORG, ORG_B, ORG_OTHER = 111111, 222222, 333333
SCOPE = "dineropublicapi:read dineropublicapi:write offline_access"


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def server():
    holder = {}

    def app(environ, start_response):
        return holder["app"](environ, start_response)

    srv = ServerThread(app).start()
    srv.holder = holder
    yield srv
    srv.stop()


@pytest.fixture
def sandbox(server):
    sb = DineroSandbox()
    sb.add_organization(ORG, "Kunde ApS", "key-a").vat_number = "12345678"
    sb.add_organization(ORG_B, "Anden Kunde ApS", "key-b")
    sb.add_organization(ORG_OTHER, "Fremmed ApS", "key-c")
    sb.visma.register_client(*CLIENT, [REDIRECT], name="Kontera")
    sb.visma.add_user(*USER, [ORG, ORG_B])
    server.holder["app"] = sb
    sb.url = server.url
    return sb


def authorize_params(verifier="v" * 50, **extra) -> dict:
    return {"client_id": CLIENT[0], "response_type": "code", "scope": SCOPE, "redirect_uri": REDIRECT,
            "state": "st-" + secrets.token_hex(8), "code_challenge": challenge(verifier),
            "code_challenge_method": "S256", **extra}


def consent(sandbox, params: dict, *, email=USER[0], password=USER[1], decision="accept") -> requests.Response:
    page = requests.get(f"{sandbox.url}/connect/authorize", params=params, timeout=5)
    assert page.status_code == 200, page.text
    hidden = dict(re.findall(r'<input type=hidden name="([^"]+)" value="([^"]*)"', page.text))
    return requests.post(f"{sandbox.url}/connect/authorize",
                         data={**hidden, "email": email, "password": password, "decision": decision},
                         allow_redirects=False, timeout=5)


def code_from(response: requests.Response) -> dict:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def token(sandbox, **form) -> requests.Response:
    return requests.post(f"{sandbox.url}/connect/token", data=form, timeout=5)


def exchange(sandbox, code, verifier="v" * 50, **extra) -> requests.Response:
    return token(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                 client_id=CLIENT[0], client_secret=CLIENT[1], code_verifier=verifier, **extra)


def refresh(sandbox, refresh_token) -> requests.Response:
    return token(sandbox, client_id=CLIENT[0], client_secret=CLIENT[1], grant_type="refresh_token",
                 refresh_token=refresh_token)


def connected(sandbox) -> dict:
    return exchange(sandbox, code_from(consent(sandbox, authorize_params()))["code"]).json()


def api(sandbox, access, path, method="GET", **kwargs):
    return requests.request(method, f"{sandbox.url}{path}", headers={"Authorization": f"Bearer {access}"},
                            timeout=5, **kwargs)


# --- the consent page -------------------------------------------------------------------------------


def test_login_and_consent_give_a_code_bound_to_the_state(sandbox):
    params = authorize_params()
    page = requests.get(f"{sandbox.url}/connect/authorize", params=params, timeout=5)
    assert "Tillad" in page.text and "dineropublicapi:write" in page.text and "Kontera" in page.text
    wrong = consent(sandbox, params, password="nope")
    assert wrong.status_code == 200 and "Forkert e-mail eller adgangskode" in wrong.text
    answer = code_from(consent(sandbox, params))
    assert answer["state"] == params["state"] and answer["code"] and answer["scope"] == SCOPE


def test_cancel_answers_access_denied_with_the_state(sandbox):
    params = authorize_params()
    answer = code_from(consent(sandbox, params, decision="cancel"))
    assert answer == {"error": "access_denied", "state": params["state"]}


def test_unknown_client_or_redirect_uri_is_shown_never_redirected_to(sandbox):
    # RFC 6749 §4.1.2.1: the user is not sent to an unverified redirect URI.
    for params in (authorize_params(client_id="isv_nobody"), authorize_params(redirect_uri="https://evil.example/cb")):
        page = requests.get(f"{sandbox.url}/connect/authorize", params=params, allow_redirects=False, timeout=5)
        assert page.status_code == 400 and "Location" not in page.headers


@pytest.mark.parametrize("change, error", [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "dineropublicapi:read admin"}, "invalid_scope"),
    ({"code_challenge": ""}, "invalid_request"),  # the app is registered with PKCE
    ({"code_challenge_method": "plain"}, "invalid_request"),
])
def test_bad_authorisation_requests_come_back_as_errors(sandbox, change, error):
    params = {k: v for k, v in {**authorize_params(), **change}.items() if v != ""}
    page = requests.get(f"{sandbox.url}/connect/authorize", params=params, allow_redirects=False, timeout=5)
    assert code_from(page)["error"] == error


def test_offline_access_needs_the_application_setting(sandbox):
    sandbox.visma.register_client("isv_online", "s", [REDIRECT], offline_access=False)
    params = authorize_params(client_id="isv_online")
    page = requests.get(f"{sandbox.url}/connect/authorize", params=params, allow_redirects=False, timeout=5)
    assert code_from(page)["error"] == "invalid_scope"


def test_form_post_answers_with_a_self_submitting_form(sandbox):
    answer = consent(sandbox, authorize_params(response_mode="form_post"))
    assert answer.status_code == 200 and f'action="{REDIRECT}"' in answer.text and 'name="code"' in answer.text


# --- the token endpoint ----------------------------------------------------------------------------


def test_code_exchange_gives_an_hour_and_a_refresh_token(sandbox):
    body = connected(sandbox)
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer" and body["refresh_token"]
    assert set(body["scope"].split()) == set(SCOPE.split())


def test_a_code_works_once_and_its_reuse_revokes_what_it_gave(sandbox):
    code = code_from(consent(sandbox, authorize_params()))["code"]
    first = exchange(sandbox, code).json()
    again = exchange(sandbox, code)
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}
    assert api(sandbox, first["access_token"], "/v1/organizations").status_code == 401


@pytest.mark.parametrize("verifier, redirect_uri", [
    ("w" * 50, REDIRECT),  # PKCE: not the verifier of the challenge
    ("v" * 50, "https://kontera.example/other"),  # RFC 6749 §4.1.3: must be identical
])
def test_a_code_needs_its_verifier_and_its_redirect_uri(sandbox, verifier, redirect_uri):
    code = code_from(consent(sandbox, authorize_params()))["code"]
    refused = token(sandbox, grant_type="authorization_code", code=code, client_id=CLIENT[0], client_secret=CLIENT[1],
                    code_verifier=verifier, redirect_uri=redirect_uri)
    assert refused.status_code == 400 and refused.json() == {"error": "invalid_grant"}
    assert exchange(sandbox, code).json() == {"error": "invalid_grant"}  # spent by the wrong attempt


def test_a_code_dies_after_five_minutes(sandbox):
    code = code_from(consent(sandbox, authorize_params()))["code"]
    sandbox.clock.advance(vc.AUTHORIZATION_CODE_LIFETIME_SECONDS + 1)
    assert exchange(sandbox, code).json() == {"error": "invalid_grant"}


def test_client_credentials_go_in_the_body_as_documented(sandbox):
    code = code_from(consent(sandbox, authorize_params()))["code"]
    basic = requests.post(f"{sandbox.url}/connect/token", auth=CLIENT, timeout=5,
                          data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                "code_verifier": "v" * 50})
    assert basic.status_code == 400 and basic.json() == {"error": "invalid_client"}
    wrong = token(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, client_id=CLIENT[0],
                  client_secret="nope", code_verifier="v" * 50)
    assert wrong.json() == {"error": "invalid_client"}
    json_body = requests.post(f"{sandbox.url}/connect/token", json={"grant_type": "refresh_token"}, timeout=5)
    assert json_body.json() == {"error": "invalid_request"}
    unsupported = token(sandbox, grant_type="client_credentials", client_id=CLIENT[0], client_secret=CLIENT[1])
    assert unsupported.json() == {"error": "unsupported_grant_type"}


def test_refresh_tokens_are_single_use_and_a_replay_kills_the_consent(sandbox):
    first = connected(sandbox)
    second = refresh(sandbox, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    replay = refresh(sandbox, first["refresh_token"])
    assert replay.status_code == 400 and replay.json() == {"error": "invalid_grant"}
    assert sandbox.visma.refresh_reuse  # seen, and the whole consent is gone:
    assert refresh(sandbox, second["refresh_token"]).json() == {"error": "invalid_grant"}
    assert api(sandbox, second["access_token"], "/v1/organizations").status_code == 401


def test_a_grace_period_when_the_application_has_one(sandbox):
    sandbox.visma.refresh_grace_seconds = 5
    first = connected(sandbox)
    assert refresh(sandbox, first["refresh_token"]).status_code == 200
    assert refresh(sandbox, first["refresh_token"]).status_code == 200  # within 5 s
    sandbox.clock.advance(6)
    assert refresh(sandbox, first["refresh_token"]).json() == {"error": "invalid_grant"}


def test_refresh_tokens_end_thirty_days_after_the_consent_however_often_used(sandbox):
    body = connected(sandbox)
    for _day in range(3):
        sandbox.clock.advance(10 * 86400 - 1)
        body = refresh(sandbox, body["refresh_token"]).json()
    sandbox.clock.advance(10)
    assert refresh(sandbox, body["refresh_token"]).json() == {"error": "invalid_grant"}


def test_withdrawn_consent_kills_access_and_refresh_tokens_at_once(sandbox):
    body = connected(sandbox)
    sandbox.visma.revoke(USER[0], CLIENT[0])
    assert api(sandbox, body["access_token"], f"/v1/{ORG}/accounts/deposit").status_code == 401
    assert refresh(sandbox, body["refresh_token"]).json() == {"error": "invalid_grant"}


# --- the API with a user's token ------------------------------------------------------------------------


def test_a_users_token_lists_and_reaches_the_users_organisations_only(sandbox):
    access = connected(sandbox)["access_token"]
    listed = api(sandbox, access, "/v1/organizations", params={"fields": "Id,Name,IsPro,VatNumber"}).json()
    assert [(o["Id"], o["VatNumber"]) for o in listed] == [(ORG, "12345678"), (ORG_B, None)]
    assert set(api(sandbox, access, "/v1/organizations").json()[0]) == {"Id", "Name", "IsPro"}  # default fields
    assert api(sandbox, access, f"/v1/{ORG_B}/accounts/deposit").status_code == 200
    foreign = api(sandbox, access, f"/v1/{ORG_OTHER}/accounts/deposit")
    assert foreign.status_code == 403 and foreign.json()["code"] == 41
    sandbox.visma.withdraw_organization(USER[0], ORG_B)
    assert api(sandbox, access, f"/v1/{ORG_B}/accounts/deposit").status_code == 403


def test_an_access_token_lives_one_hour(sandbox):
    access = connected(sandbox)["access_token"]
    sandbox.clock.advance(vc.ACCESS_TOKEN_LIFETIME_SECONDS)
    assert api(sandbox, access, "/v1/organizations").status_code == 401


def test_without_the_write_scope_a_token_only_reads(sandbox):
    params = authorize_params(scope="dineropublicapi:read offline_access")
    access = exchange(sandbox, code_from(consent(sandbox, params))["code"]).json()["access_token"]
    assert api(sandbox, access, f"/v1/{ORG}/accounts/deposit").status_code == 200
    refused = api(sandbox, access, f"/v1/{ORG}/contacts", method="POST",
                  json={"Name": "X", "CountryKey": "DK", "IsPerson": False, "IsMember": False, "UseCvr": False})
    assert refused.status_code == 403


def test_user_tokens_are_counted_per_organisation(sandbox):
    sandbox.set_rate_limit(ORG, 2)
    access = connected(sandbox)["access_token"]
    assert [api(sandbox, access, f"/v1/{ORG}/vatTypes").status_code for _ in range(3)] == [200, 200, 429]
    assert api(sandbox, access, f"/v1/{ORG_B}/vatTypes").status_code == 200


def test_state_survives_a_restart(sandbox):
    body = connected(sandbox)
    restarted = DineroSandbox()
    restarted.load_state(sandbox.dump_state())
    assert restarted.visma.bearer(body["access_token"]) is not None
    assert restarted.visma.organizations_of(USER[0]) == [ORG, ORG_B]


def test_seed_demo_registers_the_application_and_the_accountant(sandbox):
    sandbox.reset()
    demo = sandbox.seed_demo(redirect_uri="http://127.0.0.1:8801/integrations/dinero/callback")
    sandbox.seed_demo()
    client = sandbox.visma.clients[demo["visma_client_id"]]
    assert client.client_id.startswith("isv_")  # developer.dinero.dk FAQ: client ids start with isv_
    assert "http://127.0.0.1:8801/integrations/dinero/callback" in client.redirect_uris
    assert sandbox.visma.organizations_of(demo["visma_user"][0]) == [123456, 654321]
