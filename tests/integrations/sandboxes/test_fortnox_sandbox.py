"""The Fortnox sandbox, exercised over real HTTP (ServerThread + requests), no Django.

Run: .venv/bin/python -m pytest tests/integrations/test_fortnox_sandbox.py -p no:django -q
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.sandboxes import fortnox as fx
from integrations.sandboxes.base import ServerThread, mount
from integrations.sandboxes.fortnox import FortnoxSandbox

CLIENT_ID = "kontera-test"
CLIENT_SECRET = "kontera-test-secret"
REDIRECT = "https://kontera.example/integrations/fortnox/callback"
DB = 555001
OTHER_DB = 555002
ALL_SCOPES = ["bookkeeping", "costcenter", "companyinformation", "settings"]
STATE = "state-12345678"


@pytest.fixture
def sandbox() -> FortnoxSandbox:
    sb = FortnoxSandbox()
    sb.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT])
    sb.add_tenant(DB, "Brf Testgården", "769612-3459")
    return sb


@pytest.fixture
def tenant(sandbox):
    return sandbox.tenant(DB)


@pytest.fixture
def url(sandbox):
    server = ServerThread(sandbox).start()
    yield server.url
    server.stop()


class Api:
    def __init__(self, base: str, access_token: str) -> None:
        self.base = base
        self.access_token = access_token

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(f"{self.base}/3{path}", params=params, headers=self.headers, timeout=5)

    def post(self, path: str, body, *, timeout: float = 5, **params) -> requests.Response:
        return requests.post(
            f"{self.base}/3{path}", params=params, json=body, headers=self.headers, timeout=timeout
        )


def api_for(sandbox, url, database_number=DB, scopes=ALL_SCOPES) -> Api:
    return Api(url, sandbox.issue_tokens(CLIENT_ID, database_number, scopes)["access_token"])


@pytest.fixture
def api(sandbox, url) -> Api:
    return api_for(sandbox, url)


def today(sandbox) -> date:
    return date.fromtimestamp(sandbox.clock.now())


def voucher(sandbox, *, rows=None, **fields) -> dict:
    body = {
        "VoucherSeries": "A",
        "TransactionDate": today(sandbox).isoformat(),
        "Description": "Nets Easy utbetalning",
        "VoucherRows": rows
        if rows is not None
        else [
            {"Account": 1930, "Debit": 9750.00, "Credit": 0, "TransactionInformation": "Utbetalning"},
            {"Account": 6570, "Debit": 250.00, "CostCenter": "100"},
            {"Account": 1580, "Credit": 10000.00},
        ],
    }
    body.update(fields)
    return {"Voucher": body}


def token_request(url, data, auth=(CLIENT_ID, CLIENT_SECRET)) -> requests.Response:
    return requests.post(f"{url}/oauth-v1/token", data=data, auth=auth, timeout=5)


def assert_refused(response, code, status=400, message=None):
    """400-style refusal: lower-case ErrorInformation keys; 404: capitalised keys."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    info = response.json()["ErrorInformation"]
    if status == 404:
        assert set(info) == {"Error", "Message", "Code"}
        assert info["Code"] == code and info["Error"] == 1
        text = info["Message"]
    else:
        assert set(info) == {"error", "message", "code"}
        assert info["code"] == code and info["error"] == 1
        text = info["message"]
    if message is not None:
        assert message in text, text
    return text


def assert_invalid_grant(response, description=None):
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json()["error"] == "invalid_grant"
    if description:
        assert response.json() == {"error": "invalid_grant", "error_description": description}


# --- OAuth: consent page and code exchange ---------------------------------------------------------


def auth_params(**overrides) -> dict:
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "bookkeeping companyinformation",
        "state": STATE,
        "access_type": "offline",
        "response_type": "code",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def test_full_code_exchange_through_consent_page(sandbox, url):
    sandbox.add_tenant(OTHER_DB, "Exempel Handel AB", "556677-8899")
    page = requests.get(f"{url}/oauth-v1/auth", params=auth_params(), timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Godkänn behörighet" in page.text
    assert "Brf Testgården" in page.text and "Exempel Handel AB" in page.text
    assert "Bokföring" in page.text

    form = {**auth_params(), "tenant": str(OTHER_DB), "decision": "approve"}
    answer = requests.post(f"{url}/oauth-v1/auth", data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [STATE]

    tokens = token_request(
        url, {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT}
    )
    assert tokens.status_code == 200
    assert tokens.headers["Content-Type"] == "application/json"
    assert tokens.headers["Cache-Control"] == "no-store"
    body = tokens.json()
    assert list(body) == ["access_token", "expires_in", "token_type", "scope", "refresh_token"]
    assert body["expires_in"] == 3600 and body["token_type"] == "bearer"
    assert body["scope"] == "bookkeeping companyinformation"

    company = Api(url, body["access_token"]).get("/companyinformation")
    assert company.status_code == 200
    assert company.json()["CompanyInformation"]["DatabaseNumber"] == OTHER_DB
    assert company.json()["CompanyInformation"]["CompanyName"] == "Exempel Handel AB"


def test_consent_denied_redirects_with_access_denied(url):
    form = {**auth_params(), "tenant": str(DB), "decision": "deny"}
    answer = requests.post(f"{url}/oauth-v1/auth", data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == [STATE]
    assert "code" not in query


def test_consent_page_unknown_client_shows_error_page(url):
    page = requests.get(
        f"{url}/oauth-v1/auth", params=auth_params(client_id="nobody"), allow_redirects=False, timeout=5
    )
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "Auth code or ClientID supplied is invalid" in page.text


def test_consent_page_refuses_unregistered_redirect_uri_without_redirecting(url):
    page = requests.get(
        f"{url}/oauth-v1/auth",
        params=auth_params(redirect_uri="https://evil.example/cb"),
        allow_redirects=False,
        timeout=5,
    )
    assert page.status_code == 400
    assert "Location" not in page.headers


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"scope": "bookkeeping bokforing"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"state": "short"}, "invalid_state"),
    ],
)
def test_consent_page_redirects_parameter_errors(url, override, error):
    page = requests.get(
        f"{url}/oauth-v1/auth", params=auth_params(**override), allow_redirects=False, timeout=5
    )
    assert page.status_code == 302
    query = parse_qs(urlsplit(page.headers["Location"]).query)
    assert query["error"] == [error]


def test_service_account_needs_client_permission(sandbox, url):
    page = requests.get(f"{url}/oauth-v1/auth", params=auth_params(account_type="service"), timeout=5)
    assert page.status_code == 400
    assert "Client does not allow service account" in page.text
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT], service_accounts=True)
    assert (
        requests.get(
            f"{url}/oauth-v1/auth", params=auth_params(account_type="service"), timeout=5
        ).status_code
        == 200
    )


def test_authorization_code_is_single_use_and_reuse_revokes_its_tokens(sandbox, url):
    code = sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    first = token_request(url, data)
    assert first.status_code == 200
    assert Api(url, first.json()["access_token"]).get("/accounts/1930").status_code == 200

    second = token_request(url, data)
    assert_invalid_grant(second)
    assert Api(url, first.json()["access_token"]).get("/accounts/1930").status_code == 401
    assert_invalid_grant(
        token_request(url, {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]})
    )


def test_authorization_code_expires_after_ten_minutes(sandbox, url):
    fresh = sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE)
    stale = sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE)
    sandbox.clock.advance(9 * 60 + 50)
    assert (
        token_request(
            url, {"grant_type": "authorization_code", "code": fresh, "redirect_uri": REDIRECT}
        ).status_code
        == 200
    )
    sandbox.clock.advance(11)
    assert_invalid_grant(
        token_request(url, {"grant_type": "authorization_code", "code": stale, "redirect_uri": REDIRECT})
    )


def test_authorization_code_bound_to_redirect_uri(sandbox, url):
    code = sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE)
    assert_invalid_grant(token_request(url, {"grant_type": "authorization_code", "code": code}))
    assert_invalid_grant(
        token_request(url, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT + "/"})
    )
    assert (
        token_request(
            url, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        ).status_code
        == 200
    )


def test_authorization_code_bound_to_client(sandbox, url):
    sandbox.register_client("other-app", "other-secret", [REDIRECT])
    code = sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    assert_invalid_grant(token_request(url, data, auth=("other-app", "other-secret")))


@pytest.mark.parametrize(
    "auth",
    [
        (CLIENT_ID, "wrong-secret"),
        ("unknown-client", CLIENT_SECRET),
        None,
    ],
)
def test_bad_client_credentials_give_401_text_plain(sandbox, url, auth):
    code = sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE)
    answer = token_request(
        url, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}, auth=auth
    )
    assert answer.status_code == 401
    assert answer.headers["Content-Type"] == "text/plain;charset=UTF-8"
    assert (
        answer.text == '{"error":"invalid_client","error_description":"The client credentials are invalid"}'
    )


def test_client_credentials_in_the_body_are_not_accepted(sandbox, url):
    code = sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE)
    answer = token_request(
        url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        auth=None,
    )
    assert answer.status_code == 401


def test_unsupported_grant_type(url):
    answer = token_request(url, {"grant_type": "password", "username": "a", "password": "b"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


# --- OAuth: refresh tokens -------------------------------------------------------------------------


def refresh(url, refresh_token):
    return token_request(url, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def test_refresh_rotates_both_tokens(sandbox, url):
    first = sandbox.issue_tokens(CLIENT_ID, DB, ["bookkeeping"])
    answer = refresh(url, first["refresh_token"])
    assert answer.status_code == 200
    second = answer.json()
    assert list(second) == ["access_token", "expires_in", "token_type", "scope", "refresh_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "bookkeeping"
    assert Api(url, second["access_token"]).get("/accounts/1930").status_code == 200
    # the previous access token dies with its refresh token (REVOKE_ACCESS_TOKEN_ON_REFRESH)
    assert Api(url, first["access_token"]).get("/accounts/1930").status_code == 401
    assert refresh(url, second["refresh_token"]).status_code == 200
    assert sandbox.refresh_count == 2


def test_reused_refresh_token_refused_and_chain_revoked(sandbox, url):
    first = sandbox.issue_tokens(CLIENT_ID, DB, ["bookkeeping"])
    rotated = refresh(url, first["refresh_token"]).json()
    again = refresh(url, first["refresh_token"])
    assert_invalid_grant(again, "Invalid refresh token")
    assert [r.refresh_token for r in sandbox.refresh_reuse] == [first["refresh_token"]]
    assert sandbox.refresh_attempts[first["refresh_token"]] == 2
    # Hydra-style reuse detection: the whole chain dies, the customer must consent again
    assert Api(url, rotated["access_token"]).get("/accounts/1930").status_code == 401
    assert_invalid_grant(refresh(url, rotated["refresh_token"]))


def test_refresh_token_expires_after_45_days(sandbox, url):
    young = sandbox.issue_tokens(CLIENT_ID, DB, ["bookkeeping"])
    old = sandbox.issue_tokens(CLIENT_ID, DB, ["bookkeeping"])
    sandbox.clock.advance(45 * 24 * 3600 - 60)
    assert refresh(url, young["refresh_token"]).status_code == 200
    sandbox.clock.advance(61)
    assert_invalid_grant(refresh(url, old["refresh_token"]), "Invalid refresh token")
    assert sandbox.refresh_reuse == []  # expiry is not reuse


def test_concurrent_refreshes_of_one_token_only_one_wins(sandbox, url):
    tokens = sandbox.issue_tokens(CLIENT_ID, DB, ["bookkeeping"])
    barrier = threading.Barrier(6)
    statuses = []

    def worker():
        barrier.wait()
        statuses.append(refresh(url, tokens["refresh_token"]).status_code)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 400, 400, 400, 400, 400]
    assert sandbox.refresh_count == 1
    assert len(sandbox.refresh_reuse) == 5
    assert sandbox.refresh_attempts[tokens["refresh_token"]] == 6


def test_client_credentials_for_service_account(sandbox, url):
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT], service_accounts=True)
    data = {"grant_type": "client_credentials", "tenantId": str(DB)}
    assert_invalid_grant(token_request(url, data))  # no service consent yet
    sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE, account_type="service")
    answer = token_request(url, data)
    assert answer.status_code == 200
    assert "refresh_token" not in answer.json()
    assert Api(url, answer.json()["access_token"]).get("/accounts/1930").status_code == 200


# --- REST authentication and scopes ----------------------------------------------------------------


def assert_unauthorized(response):
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.text == '{"message":"unauthorized"}'


def test_expired_access_token_gives_401_unauthorized(sandbox, url, api):
    sandbox.clock.advance(3599)
    assert api.get("/companyinformation").status_code == 200
    sandbox.clock.advance(1)
    assert_unauthorized(api.get("/companyinformation"))


def test_missing_or_unknown_bearer_gives_401(url):
    assert_unauthorized(requests.get(f"{url}/3/accounts", timeout=5))
    assert_unauthorized(
        requests.get(f"{url}/3/accounts", headers={"Authorization": "Bearer nope"}, timeout=5)
    )
    legacy = {"Access-Token": "dd49b5e5-032d-424b-93ad-7a62e15064c6", "Client-Secret": CLIENT_SECRET}
    assert_unauthorized(requests.get(f"{url}/3/accounts", headers=legacy, timeout=5))


def test_revoke_kills_access_and_refresh_tokens_of_that_pair_only(sandbox, url):
    sandbox.add_tenant(OTHER_DB, "Exempel Handel AB", "556677-8899")
    mine = sandbox.issue_tokens(CLIENT_ID, DB, ALL_SCOPES)
    other = sandbox.issue_tokens(CLIENT_ID, OTHER_DB, ALL_SCOPES)
    pending = sandbox.authorize(CLIENT_ID, DB, ["bookkeeping"], REDIRECT, STATE)
    sandbox.revoke(DB, CLIENT_ID)
    assert_invalid_grant(
        token_request(url, {"grant_type": "authorization_code", "code": pending, "redirect_uri": REDIRECT})
    )
    assert_unauthorized(Api(url, mine["access_token"]).get("/companyinformation"))
    assert_invalid_grant(refresh(url, mine["refresh_token"]), "Invalid refresh token")
    assert Api(url, other["access_token"]).get("/companyinformation").status_code == 200
    assert refresh(url, other["refresh_token"]).status_code == 200


def test_scopes_are_enforced_per_resource(sandbox, url):
    bookkeeping = api_for(sandbox, url, scopes=["bookkeeping"])
    for path in ("/accounts", "/vouchers", "/voucherseries", "/financialyears"):
        assert bookkeeping.get(path).status_code == 200, path
    for path in ("/costcenters", "/companyinformation", "/settings/lockedperiod", "/modesofpayments"):
        assert_refused(bookkeeping.get(path), fx.ERR_NO_SCOPE, status=403)
    costcenter = api_for(sandbox, url, scopes=["costcenter"])
    assert costcenter.get("/costcenters").status_code == 200
    assert_refused(costcenter.get("/accounts"), fx.ERR_NO_SCOPE, status=403)
    assert_refused(costcenter.post("/vouchers", voucher(sandbox)), fx.ERR_NO_SCOPE, status=403)
    assert sandbox.tenant(DB).vouchers == []


# --- master data -----------------------------------------------------------------------------------


def test_seeded_chart_is_realistic(sandbox, tenant, api):
    accounts = api.get("/accounts", limit=500).json()["Accounts"]
    assert len(accounts) >= 80
    by_number = {a["Number"]: a for a in accounts}
    assert by_number[1510]["Description"] == "Kundfordringar"
    assert by_number[1930]["Description"] == "Företagskonto/checkkonto/affärskonto"
    assert by_number[1930]["CostCenterSettings"] == "NOTALLOWED"
    assert by_number[3011]["Description"] == "Hyresintäkter bostäder"
    assert by_number[3011]["CostCenterSettings"] == "MANDATORY"
    assert by_number[5020]["Active"] is False
    for number in (1101, 1516, 1580, 2440, 2611, 2650, 2670, 3015, 3016, 6040, 6064, 6570, 8999):
        assert number in by_number, number
    assert by_number[1516]["Active"] is True


def test_single_account_fields(tenant, api):
    answer = api.get("/accounts/1930")
    assert answer.status_code == 200
    account = answer.json()["Account"]
    assert set(account) >= {
        "@url",
        "Active",
        "BalanceBroughtForward",
        "BalanceCarriedForward",
        "CostCenter",
        "CostCenterSettings",
        "Description",
        "Number",
        "Project",
        "ProjectSettings",
        "SRU",
        "TransactionInformation",
        "VATCode",
        "Year",
    }
    assert account["Number"] == 1930 and account["Year"] == tenant.current_year().id
    assert account["SRU"] == 7281 and account["VATCode"] is None
    assert account["@url"].endswith(f"/3/accounts/1930?financialyear={tenant.current_year().id}")


def test_missing_account_is_404_with_capitalised_keys(api):
    assert_refused(
        api.get("/accounts/1999"), fx.ERR_ACCOUNT_NOT_FOUND, status=404, message="Kan inte hitta kontot."
    )


def test_accounts_paging(sandbox, url):
    other = sandbox.add_tenant(OTHER_DB, "Tom AB", "556900-0010", seed=False)
    other.add_financial_year(date(today(sandbox).year, 1, 1), date(today(sandbox).year, 12, 31))
    for number in range(4000, 4120):
        other.add_account(number, f"Konto {number}")
    api = api_for(sandbox, url, OTHER_DB)
    pages = [api.get("/accounts", limit=50, page=page).json() for page in (1, 2, 3, 4)]
    assert [len(p["Accounts"]) for p in pages] == [50, 50, 20, 0]
    assert pages[0]["MetaInformation"] == {"@TotalResources": 120, "@TotalPages": 3, "@CurrentPage": 1}
    assert pages[2]["MetaInformation"]["@CurrentPage"] == 3
    assert pages[1]["Accounts"][0]["Number"] == 4050
    assert len(api.get("/accounts").json()["Accounts"]) == 100  # default limit
    assert len(api.get("/accounts", limit=500).json()["Accounts"]) == 120


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"limit": "abc"}, {"page": 0}])
def test_bad_paging_parameters_refused(api, params):
    assert_refused(
        api.get("/accounts", **params), fx.ERR_INVALID_PARAMETER, message="Ogiltig parameter i anropet"
    )


def test_accounts_are_per_financial_year(sandbox, tenant, api):
    previous = tenant.financial_year_for(date(today(sandbox).year - 1, 6, 1)).id
    tenant.add_account(1235, "Bara förra året", year_id=previous)
    assert api.get("/accounts/1235", financialyear=previous).status_code == 200
    assert_refused(api.get("/accounts/1235"), fx.ERR_ACCOUNT_NOT_FOUND, status=404)
    body = voucher(sandbox, rows=[{"Account": 1235, "Debit": 10}, {"Account": 1930, "Credit": 10}])
    assert_refused(api.post("/vouchers", body), fx.ERR_ACCOUNT_NOT_FOUND)


def test_cost_centers(api):
    listing = api.get("/costcenters")
    assert listing.status_code == 200
    centres = {c["Code"]: c for c in listing.json()["CostCenters"]}
    assert centres["100"]["Description"] == "Gården 1" and centres["100"]["Active"] is True
    assert centres["400"]["Active"] is False
    assert api.get("/costcenters/200").json()["CostCenter"]["Code"] == "200"
    assert_refused(api.get("/costcenters/999"), fx.ERR_COST_CENTER_NOT_FOUND, status=404)


def test_voucher_series_collection(tenant, api):
    answer = api.get("/voucherseries").json()
    series = {s["Code"]: s for s in answer["VoucherSeriesCollection"]}
    assert answer["MetaInformation"]["@TotalResources"] == len(series)
    assert series["A"]["Description"] == "Redovisning" and series["A"]["Manual"] is True
    assert series["B"]["Manual"] is False and series["F"]["Manual"] is False
    assert all(series[code]["Manual"] for code in "KLM")
    assert series["A"]["NextVoucherNumber"] == 1 and series["A"]["Year"] == tenant.current_year().id


def test_financial_years_ids_not_chronological_and_date_filter(sandbox, api):
    year = today(sandbox).year
    years = api.get("/financialyears").json()["FinancialYears"]
    by_id = {y["Id"]: y for y in years}
    assert by_id[1]["FromDate"] == f"{year}-01-01" and by_id[2]["FromDate"] == f"{year - 1}-01-01"
    hit = api.get("/financialyears", date=f"{year - 1}-03-15").json()
    assert [y["Id"] for y in hit["FinancialYears"]] == [2]
    miss = api.get("/financialyears", date=f"{year - 5}-03-15").json()
    assert miss == {
        "MetaInformation": {"@TotalResources": 0, "@TotalPages": 0, "@CurrentPage": 1},
        "FinancialYears": [],
    }
    assert api.get("/financialyears/2").json()["FinancialYear"]["ToDate"] == f"{year - 1}-12-31"
    assert_refused(api.get("/financialyears/9"), fx.ERR_FINANCIAL_YEAR_NOT_FOUND, status=404)


def test_locked_period(sandbox, tenant, api):
    assert api.get("/settings/lockedperiod").json() == {
        "LockedPeriod": {"EndDate": f"{today(sandbox).year - 1}-09-30"}
    }
    tenant.locked_until = None
    assert api.get("/settings/lockedperiod").json() == {"LockedPeriod": {"EndDate": ""}}
    sandbox.quirks.locked_period_null = True
    assert api.get("/settings/lockedperiod").json() == {"LockedPeriod": {"EndDate": None}}


def test_company_information(api):
    info = api.get("/companyinformation").json()["CompanyInformation"]
    assert info["DatabaseNumber"] == DB
    assert info["OrganizationNumber"] == "769612-3459"
    assert info["CompanyName"] == "Brf Testgården"


def test_modes_of_payments(tenant, api):
    modes = {m["Code"]: m for m in api.get("/modesofpayments").json()["ModesOfPayments"]}
    assert modes["BG"]["AccountNumber"] == "1930"
    created = api.post(
        "/modesofpayments",
        {"ModeOfPayment": {"Code": "NETS", "Description": "Nets Easy", "AccountNumber": "1580"}},
    )
    assert created.status_code == 201
    assert created.json()["ModeOfPayment"]["AccountNumber"] == "1580"
    assert tenant.modes_of_payment["NETS"].account_number == "1580"
    as_int = api.post(
        "/modesofpayments", {"ModeOfPayment": {"Code": "X", "Description": "X", "AccountNumber": 1580}}
    )
    assert_refused(as_int, fx.ERR_WRONG_DATA)
    five = api.post(
        "/modesofpayments", {"ModeOfPayment": {"Code": "Y", "Description": "Y", "AccountNumber": "15800"}}
    )
    assert_refused(five, fx.ERR_INVALID_ACCOUNT_NUMBER)
    unknown = api.post(
        "/modesofpayments", {"ModeOfPayment": {"Code": "Z", "Description": "Z", "AccountNumber": "1999"}}
    )
    assert_refused(unknown, fx.ERR_ACCOUNT_NOT_FOUND)
    assert set(tenant.modes_of_payment) == {"BG", "PG", "AG", "KONT", "NETS"}


def test_unknown_route_and_voucher_put_delete(sandbox, api):
    assert_refused(api.get("/invoicez"), fx.ERR_NO_SUCH_ROUTE, status=404, message="No such route")
    assert api.post("/vouchers", voucher(sandbox)).status_code == 201
    put = requests.put(f"{api.base}/3/vouchers/A/1", json=voucher(sandbox), headers=api.headers, timeout=5)
    assert_refused(put, fx.ERR_NO_SUCH_ROUTE, status=404)
    delete = requests.delete(f"{api.base}/3/vouchers/A/1", headers=api.headers, timeout=5)
    assert_refused(delete, fx.ERR_NO_SUCH_ROUTE, status=404)
    assert api.get("/vouchers/A/1").status_code == 200


def test_accept_and_content_type_headers(sandbox, tenant, api):
    xml = requests.get(
        f"{api.base}/3/accounts", headers={**api.headers, "Accept": "application/xml"}, timeout=5
    )
    assert_refused(xml, fx.ERR_INVALID_RESPONSE_TYPE)
    form = requests.post(
        f"{api.base}/3/vouchers",
        data=json.dumps(voucher(sandbox)),
        headers={**api.headers, "Content-Type": "text/plain"},
        timeout=5,
    )
    assert_refused(form, fx.ERR_INVALID_CONTENT_TYPE)
    assert tenant.vouchers == []


# --- vouchers --------------------------------------------------------------------------------------


def test_post_voucher_returns_201_with_assigned_fields(sandbox, tenant, api):
    answer = api.post("/vouchers", voucher(sandbox, Comments="payout 1234"))
    assert answer.status_code == 201
    posted = answer.json()["Voucher"]
    year = tenant.current_year().id
    assert posted["VoucherNumber"] == 1 and posted["VoucherSeries"] == "A" and posted["Year"] == year
    assert posted["@url"] == f"{api.base}/3/vouchers/A/1?financialyear={year}"
    assert answer.headers["Location"] == posted["@url"]
    assert posted["ReferenceType"] == "MANUAL" and posted["Comments"] == "payout 1234"
    rows = posted["VoucherRows"]
    assert [r["Description"] for r in rows] == [
        "Företagskonto/checkkonto/affärskonto",
        "Bankkostnader",
        "Fordringar för kontokort och kuponger",
    ]
    assert all(r["Removed"] is False for r in rows)
    assert rows[0]["Debit"] == 9750 and rows[2]["Credit"] == 10000 and rows[1]["CostCenter"] == "100"
    assert rows[0]["TransactionInformation"] == "Utbetalning"
    assert '"@url":"http:\\/\\/' in answer.text  # PHP-style escaped slashes
    stored = tenant.vouchers[0]
    assert (stored.series, stored.number, stored.year) == ("A", 1, year)
    assert str(stored.rows[1].debit) == "250.00"


def test_property_ledger_voucher_from_the_guide(sandbox, tenant, api):
    rows = [
        {"Account": 1101, "Credit": 12000},
        {"Account": 1510, "Debit": 83849},
        {"Account": 2610, "Credit": 904},
        {"Account": 3011, "Credit": 65568, "CostCenter": "100"},
        {"Account": 3015, "Credit": 5247, "CostCenter": "100"},
        {"Account": 3016, "Credit": 130, "CostCenter": "300"},
    ]
    answer = api.post("/vouchers", voucher(sandbox, rows=rows, Description="Avisering A25"))
    assert answer.status_code == 201, answer.text
    assert answer.json()["Voucher"]["VoucherRows"][3]["Description"] == "Hyresintäkter bostäder"


def test_voucher_numbering_per_series_and_year(sandbox, tenant, api):
    previous = tenant.financial_year_for(date(today(sandbox).year - 1, 1, 1)).id
    last_year = date(today(sandbox).year - 1, 11, 15).isoformat()
    numbers = []
    for series, params, when in [
        ("A", {}, None),
        ("A", {}, None),
        ("K", {}, None),
        ("A", {"financialyear": previous}, last_year),
        ("A", {}, None),
    ]:
        fields = {"VoucherSeries": series}
        if when:
            fields["TransactionDate"] = when
        answer = api.post("/vouchers", voucher(sandbox, **fields), **params)
        assert answer.status_code == 201, answer.text
        numbers.append(
            (
                answer.json()["Voucher"]["VoucherSeries"],
                answer.json()["Voucher"]["VoucherNumber"],
                answer.json()["Voucher"]["Year"],
            )
        )
    current = tenant.current_year().id
    assert numbers == [
        ("A", 1, current),
        ("A", 2, current),
        ("K", 1, current),
        ("A", 1, previous),
        ("A", 3, current),
    ]
    series = {s["Code"]: s for s in api.get("/voucherseries").json()["VoucherSeriesCollection"]}
    assert series["A"]["NextVoucherNumber"] == 4 and series["K"]["NextVoucherNumber"] == 2
    last = {
        s["Code"]: s
        for s in api.get("/voucherseries", financialyear=previous).json()["VoucherSeriesCollection"]
    }
    assert last["A"]["NextVoucherNumber"] == 2


def test_post_without_financialyear_goes_to_current_year_only(sandbox, tenant, api):
    last_year = date(today(sandbox).year - 1, 11, 15).isoformat()
    assert_refused(
        api.post("/vouchers", voucher(sandbox, TransactionDate=last_year)),
        fx.ERR_NO_FINANCIAL_YEAR,
        message="Räkenskapsår saknas för valt datum",
    )
    previous = tenant.financial_year_for(date.fromisoformat(last_year)).id
    assert (
        api.post("/vouchers", voucher(sandbox, TransactionDate=last_year), financialyear=previous).status_code
        == 201
    )


def test_get_single_voucher(sandbox, tenant, api):
    posted = api.post("/vouchers", voucher(sandbox)).json()["Voucher"]
    fetched = api.get("/vouchers/A/1", financialyear=tenant.current_year().id)
    assert fetched.status_code == 200
    assert fetched.json()["Voucher"] == posted
    assert api.get("/vouchers/A/1").json()["Voucher"] == posted  # preselected year
    assert_refused(api.get("/vouchers/A/2"), fx.ERR_VOUCHER_NOT_FOUND, status=404)
    assert_refused(api.get("/vouchers/A/1", financialyear=2), fx.ERR_VOUCHER_NOT_FOUND, status=404)
    assert_refused(api.get("/vouchers/B/1"), fx.ERR_VOUCHER_NOT_FOUND, status=404)


def test_list_vouchers_with_filters_and_paging(sandbox, tenant, api):
    year = today(sandbox).year
    previous = tenant.financial_year_for(date(year - 1, 1, 1)).id
    for series, day in [
        ("A", f"{year}-02-01"),
        ("A", f"{year}-03-01"),
        ("K", f"{year}-03-15"),
        ("A", f"{year}-04-01"),
    ]:
        assert (
            api.post("/vouchers", voucher(sandbox, VoucherSeries=series, TransactionDate=day)).status_code
            == 201
        )
    assert (
        api.post(
            "/vouchers", voucher(sandbox, TransactionDate=f"{year - 1}-12-01"), financialyear=previous
        ).status_code
        == 201
    )

    listing = api.get("/vouchers").json()
    assert listing["MetaInformation"]["@TotalResources"] == 4
    item = listing["Vouchers"][0]
    # a recorded live list (arsredovisning-online/fortnox-client, get_limited_voucher_list.yml) has
    # neither Comments nor Description: a client must read the voucher to see them
    assert list(item) == [
        "@url",
        "ReferenceNumber",
        "ReferenceType",
        "TransactionDate",
        "VoucherNumber",
        "VoucherSeries",
        "Year",
        "ApprovalState",
    ]
    sandbox.quirks.list_items_with_comments = True  # the official OpenAPI list item
    assert list(api.get("/vouchers").json()["Vouchers"][0]) == [
        "@url",
        "Comments",
        "Description",
        "ReferenceNumber",
        "ReferenceType",
        "TransactionDate",
        "VoucherNumber",
        "VoucherSeries",
        "Year",
        "ApprovalState",
    ]
    sandbox.quirks.list_items_with_comments = False
    only_a = api.get("/vouchers", voucherseries="A").json()["Vouchers"]
    assert [v["VoucherNumber"] for v in only_a] == [1, 2, 3]
    march = api.get("/vouchers", fromdate=f"{year}-03-01", todate=f"{year}-03-31").json()["Vouchers"]
    assert [(v["VoucherSeries"], v["VoucherNumber"]) for v in march] == [("A", 2), ("K", 1)]
    last_year = api.get("/vouchers", financialyear=previous).json()["Vouchers"]
    assert [(v["TransactionDate"], v["Year"]) for v in last_year] == [(f"{year - 1}-12-01", previous)]
    page2 = api.get("/vouchers", limit=3, page=2).json()
    assert page2["MetaInformation"] == {"@TotalResources": 4, "@TotalPages": 2, "@CurrentPage": 2}
    assert [(v["VoucherSeries"], v["VoucherNumber"]) for v in page2["Vouchers"]] == [("K", 1)]
    assert len(api.get("/vouchers/sublist/A").json()["Vouchers"]) == 3
    assert_refused(api.get("/vouchers", fromdate="2025-13-01"), fx.ERR_INVALID_PARAMETER)


# --- voucher validation: one rule per test -----------------------------------------------------------


def post_raw(api, data: str | bytes):
    return requests.post(
        f"{api.base}/3/vouchers",
        data=data,
        headers={**api.headers, "Content-Type": "application/json"},
        timeout=5,
    )


def assert_nothing_stored(tenant, api):
    assert tenant.vouchers == []
    series = {s["Code"]: s for s in api.get("/voucherseries").json()["VoucherSeriesCollection"]}
    assert series["A"]["NextVoucherNumber"] == 1


def test_invalid_json_refused(tenant, api):
    assert_refused(
        post_raw(api, '{"Voucher": {"Description": "x",'), fx.ERR_JSON, message="Error deserializing JSON"
    )
    assert_refused(post_raw(api, '{"Voucher": {"Debit": NaN}}'), fx.ERR_JSON)
    assert_nothing_stored(tenant, api)


@pytest.mark.parametrize(
    "body", ["", "[]", '"Voucher"', '{"Invoice": {}}', '{"Voucher": "A"}', '{"Voucher": []}']
)
def test_body_that_is_not_a_voucher_refused(tenant, api, body):
    assert_refused(post_raw(api, body), fx.ERR_WRONG_DATA, message="Ingen eller felaktig typ av data.")
    assert tenant.vouchers == []


def test_unknown_field_in_voucher_refused(sandbox, tenant, api):
    assert_refused(
        api.post("/vouchers", voucher(sandbox, ExternalId="abc")),
        fx.ERR_FIELD_NAME,
        message="Felaktigt fältnamn",
    )
    assert_refused(api.post("/vouchers", {**voucher(sandbox), "Extra": 1}), fx.ERR_FIELD_NAME)
    assert_nothing_stored(tenant, api)


def test_unknown_field_in_row_refused(sandbox, tenant, api):
    rows = [{"Account": 1930, "Amount": 10}, {"Account": 1580, "Credit": 10}]
    assert_refused(
        api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_FIELD_NAME, message="Felaktigt fältnamn"
    )
    assert_nothing_stored(tenant, api)


def test_read_only_fields_are_ignored(sandbox, tenant, api):
    body = voucher(sandbox, VoucherNumber=99, ReferenceType="INVOICE", ReferenceNumber="X-1")
    body["Voucher"]["VoucherRows"][0]["Description"] = "Mitt eget namn"
    posted = api.post("/vouchers", body).json()["Voucher"]
    assert (
        posted["VoucherNumber"] == 1
        and posted["ReferenceType"] == "MANUAL"
        and posted["ReferenceNumber"] == ""
    )
    assert posted["VoucherRows"][0]["Description"] == "Företagskonto/checkkonto/affärskonto"


def test_description_missing_refused(sandbox, tenant, api):
    body = voucher(sandbox)
    del body["Voucher"]["Description"]
    assert_refused(api.post("/vouchers", body), fx.ERR_REQUIRED, message="Description")
    assert_nothing_stored(tenant, api)


@pytest.mark.parametrize("description", ["", "   "])
def test_description_empty_refused(sandbox, tenant, api, description):
    assert_refused(api.post("/vouchers", voucher(sandbox, Description=description)), fx.ERR_REQUIRED)
    assert_nothing_stored(tenant, api)


def test_description_longer_than_200_refused(sandbox, tenant, api):
    assert_refused(
        api.post("/vouchers", voucher(sandbox, Description="x" * 201)), fx.ERR_TOO_LONG, message="Description"
    )
    assert_nothing_stored(tenant, api)
    assert api.post("/vouchers", voucher(sandbox, Description="x" * 200)).status_code == 201


def test_comments_longer_than_1000_refused(sandbox, tenant, api):
    assert_refused(
        api.post("/vouchers", voucher(sandbox, Comments="c" * 1001)), fx.ERR_TOO_LONG, message="Comments"
    )
    assert_nothing_stored(tenant, api)
    assert api.post("/vouchers", voucher(sandbox, Comments="c" * 1000)).status_code == 201


def test_row_transaction_information_longer_than_100_refused(sandbox, tenant, api):
    rows = [
        {"Account": 1930, "Debit": 10, "TransactionInformation": "t" * 101},
        {"Account": 1580, "Credit": 10},
    ]
    assert_refused(
        api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_TOO_LONG, message="TransactionInformation"
    )
    assert_nothing_stored(tenant, api)
    rows[0]["TransactionInformation"] = "t" * 100
    assert api.post("/vouchers", voucher(sandbox, rows=rows)).status_code == 201


@pytest.mark.parametrize("char", ['"', "[", "]", "{", "}", "<", ">", "|", "~", "'", "\t", "\x00"])
@pytest.mark.parametrize("field", ["Description", "Comments", "TransactionInformation"])
def test_characters_outside_the_documented_set_are_refused(sandbox, tenant, api, field, char):
    # Fortnox's "Valid characters" regex (formats-and-encoding page); violations give 2000359
    text = f"Hyra {char}mars"
    if field == "TransactionInformation":
        body = voucher(sandbox, rows=[{"Account": 1930, "Debit": 10, "TransactionInformation": text},
                                      {"Account": 1580, "Credit": 10}])
    else:
        body = voucher(sandbox, **{field: text})
    assert_refused(api.post("/vouchers", body), fx.ERR_INVALID_CHARACTERS,
                   message="Värdet innehåller ej tillåtna tecken")
    assert_nothing_stored(tenant, api)


def test_valid_characters_pass(sandbox, tenant, api):
    text = "Åke’s hyra (A25) – 100% @ 1/2 ½ €5 ë\\ §3 #7 *_!? µ\u00a0ok\nrad 2"
    rows = [{"Account": 1930, "Debit": 10, "TransactionInformation": text[:100]}, {"Account": 1580, "Credit": 10}]
    answer = api.post("/vouchers", voucher(sandbox, Description=text, Comments=text, rows=rows))
    assert answer.status_code == 201, answer.text
    assert answer.json()["Voucher"]["Comments"] == text


def test_mode_of_payment_texts_are_checked_too(sandbox, tenant, api):
    body = {"ModeOfPayment": {"Code": "NETS", "Description": "Nets <Easy>", "AccountNumber": "1580"}}
    assert_refused(api.post("/modesofpayments", body), fx.ERR_INVALID_CHARACTERS)


def test_missing_licence_is_a_400_with_the_documented_code(sandbox, tenant, api):
    tenant.licences = {"companyinformation", "settings", "costcenter"}  # no bookkeeping module
    text = assert_refused(api.post("/vouchers", voucher(sandbox)), fx.ERR_NO_LICENCE, status=400)
    assert "licens" in text
    assert_refused(api.get("/accounts"), fx.ERR_NO_LICENCE, status=400)
    assert api.get("/companyinformation").status_code == 200
    assert tenant.vouchers == []


def test_missing_scope_can_be_answered_with_400(sandbox, url):
    sandbox.quirks.scope_error_as_400 = True
    costcenter = api_for(sandbox, url, scopes=["costcenter"])
    text = assert_refused(costcenter.post("/vouchers", voucher(sandbox)), fx.ERR_NO_SCOPE, status=400)
    assert "behörighet" in text


@pytest.mark.parametrize("rows", [[], [{"Account": 1930, "Debit": 0}], None])
def test_fewer_than_two_rows_refused(sandbox, tenant, api, rows):
    body = voucher(sandbox, rows=rows or [])
    if rows is None:
        del body["Voucher"]["VoucherRows"]
    assert_refused(api.post("/vouchers", body), fx.ERR_TOO_FEW_ROWS)
    assert_nothing_stored(tenant, api)


def test_row_without_account_refused(sandbox, tenant, api):
    rows = [{"Debit": 10}, {"Account": 1580, "Credit": 10}]
    assert_refused(api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_REQUIRED, message="Account")
    assert_nothing_stored(tenant, api)


@pytest.mark.parametrize("account", ["1930", 999, 10000, 1930.5, True, -1930])
def test_row_account_not_an_integer_1000_to_9999_refused(sandbox, tenant, api, account):
    rows = [{"Account": account, "Debit": 10}, {"Account": 1580, "Credit": 10}]
    assert_refused(api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_INVALID_ACCOUNT_NUMBER)
    assert_nothing_stored(tenant, api)


def test_unknown_account_refused(sandbox, tenant, api):
    rows = [{"Account": 1999, "Debit": 10}, {"Account": 1580, "Credit": 10}]
    assert_refused(
        api.post("/vouchers", voucher(sandbox, rows=rows)),
        fx.ERR_ACCOUNT_NOT_FOUND,
        message="Kan inte hitta kontot.",
    )
    assert_nothing_stored(tenant, api)


def test_inactive_account_refused(sandbox, tenant, api):
    rows = [{"Account": 5020, "Debit": 10}, {"Account": 1930, "Credit": 10}]
    text = assert_refused(api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_ACCOUNT_INACTIVE)
    assert text == 'Konto "5020" är inte aktivt'
    assert_nothing_stored(tenant, api)


def test_unbalanced_voucher_refused(sandbox, tenant, api):
    rows = [{"Account": 1930, "Debit": 100.01}, {"Account": 1580, "Credit": 100}]
    assert_refused(api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_UNBALANCED)
    assert_nothing_stored(tenant, api)


def test_many_small_amounts_balance_exactly(sandbox, api):
    rows = [{"Account": 1930, "Debit": 0.1} for _ in range(3)] + [{"Account": 1580, "Credit": 0.3}]
    assert api.post("/vouchers", voucher(sandbox, rows=rows)).status_code == 201


@pytest.mark.parametrize(("debit", "credit"), [(-10, -10), (10.005, 10.005), ("10", "10"), (1e12, 1e12)])
def test_bad_amounts_refused(sandbox, tenant, api, debit, credit):
    rows = [{"Account": 1930, "Debit": debit}, {"Account": 1580, "Credit": credit}]
    assert_refused(api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_INVALID_AMOUNT)
    assert_nothing_stored(tenant, api)


def test_row_with_both_debit_and_credit_refused(sandbox, tenant, api):
    rows = [{"Account": 1930, "Debit": 10, "Credit": 5}, {"Account": 1580, "Credit": 5}]
    assert_refused(api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_INVALID_AMOUNT)
    assert_nothing_stored(tenant, api)


def test_mandatory_cost_center_missing_refused(sandbox, tenant, api):
    rows = [{"Account": 1510, "Debit": 100}, {"Account": 3011, "Credit": 100}]
    assert_refused(
        api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_COST_CENTER_MANDATORY, message="3011"
    )
    # a voucher-level CostCenter does not satisfy the row's account
    assert_refused(
        api.post("/vouchers", voucher(sandbox, rows=rows, CostCenter="100")), fx.ERR_COST_CENTER_MANDATORY
    )
    assert_nothing_stored(tenant, api)


def test_inactive_cost_center_refused(sandbox, tenant, api):
    rows = [{"Account": 1510, "Debit": 100}, {"Account": 3011, "Credit": 100, "CostCenter": "400"}]
    assert_refused(
        api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_COST_CENTER_INACTIVE, message="400"
    )
    assert_nothing_stored(tenant, api)


def test_unknown_cost_center_refused(sandbox, tenant, api):
    rows = [{"Account": 1510, "Debit": 100}, {"Account": 3011, "Credit": 100, "CostCenter": "999"}]
    assert_refused(
        api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_COST_CENTER_NOT_FOUND, message="999"
    )
    assert_refused(api.post("/vouchers", voucher(sandbox, CostCenter="999")), fx.ERR_COST_CENTER_NOT_FOUND)
    assert_nothing_stored(tenant, api)


def test_cost_center_on_notallowed_account_refused(sandbox, tenant, api):
    rows = [{"Account": 1930, "Debit": 100, "CostCenter": "100"}, {"Account": 1580, "Credit": 100}]
    assert_refused(
        api.post("/vouchers", voucher(sandbox, rows=rows)), fx.ERR_COST_CENTER_NOT_ALLOWED, message="1930"
    )
    assert_nothing_stored(tenant, api)


def test_missing_series_refused(sandbox, tenant, api):
    text = assert_refused(api.post("/vouchers", voucher(sandbox, VoucherSeries="Z")), fx.ERR_SERIES_INVALID)
    assert text == "Ogiltig verifikationsserie angiven"
    body = voucher(sandbox)
    del body["Voucher"]["VoucherSeries"]
    assert_refused(api.post("/vouchers", body), fx.ERR_REQUIRED, message="VoucherSeries")
    assert_nothing_stored(tenant, api)


def test_series_not_manual_refused(sandbox, tenant, api):
    text = assert_refused(
        api.post("/vouchers", voucher(sandbox, VoucherSeries="B")), fx.ERR_SERIES_NOT_MANUAL
    )
    assert text == "Verifikationsserien är inte manuell (B)"
    assert tenant.vouchers == []
    tenant.add_series("B", "Kundfakturor", manual=True)
    assert api.post("/vouchers", voucher(sandbox, VoucherSeries="B")).status_code == 201


def test_date_outside_every_financial_year_refused(sandbox, tenant, api):
    far = date(today(sandbox).year - 5, 6, 1).isoformat()
    for params in ({}, {"financialyear": 2}):
        assert_refused(
            api.post("/vouchers", voucher(sandbox, TransactionDate=far), **params),
            fx.ERR_NO_FINANCIAL_YEAR,
            message="Räkenskapsår saknas för valt datum",
        )
    assert_nothing_stored(tenant, api)


def test_date_outside_chosen_year_refused(sandbox, tenant, api):
    current = tenant.current_year().id
    previous = tenant.financial_year_for(date(today(sandbox).year - 1, 6, 1)).id
    assert_refused(api.post("/vouchers", voucher(sandbox), financialyear=previous), fx.ERR_NO_FINANCIAL_YEAR)
    assert_refused(api.post("/vouchers", voucher(sandbox, Year=previous)), fx.ERR_NO_FINANCIAL_YEAR)
    assert_refused(
        api.post("/vouchers", voucher(sandbox, Year=previous), financialyear=current),
        fx.ERR_INVALID_PARAMETER,
    )
    assert_refused(api.post("/vouchers", voucher(sandbox), financialyear=77), fx.ERR_FINANCIAL_YEAR_NOT_FOUND)
    assert_nothing_stored(tenant, api)


@pytest.mark.parametrize("value", ["2025-1-5", "2025-02-30", "05/01/2025", 20250105])
def test_malformed_transaction_date_refused(sandbox, tenant, api, value):
    assert_refused(api.post("/vouchers", voucher(sandbox, TransactionDate=value)), fx.ERR_INVALID_DATE)
    assert tenant.vouchers == []


def test_locked_period_refused(sandbox, tenant, api):
    previous = tenant.financial_year_for(date(today(sandbox).year - 1, 6, 1)).id
    end = tenant.locked_until
    on_end = api.post("/vouchers", voucher(sandbox, TransactionDate=end.isoformat()), financialyear=previous)
    text = assert_refused(on_end, fx.ERR_LOCKED_PERIOD)
    assert text.endswith(f"har låst perioden t.o.m. {end.isoformat()}. Lås upp perioden för att fortsätta.")
    before = api.post(
        "/vouchers",
        voucher(sandbox, TransactionDate=(end - timedelta(days=40)).isoformat()),
        financialyear=previous,
    )
    assert_refused(before, fx.ERR_LOCKED_PERIOD)
    assert tenant.vouchers == []
    after = api.post(
        "/vouchers",
        voucher(sandbox, TransactionDate=(end + timedelta(days=1)).isoformat()),
        financialyear=previous,
    )
    assert after.status_code == 201 and after.json()["Voucher"]["VoucherNumber"] == 1


def test_refused_voucher_does_not_consume_a_number(sandbox, tenant, api):
    assert_refused(
        api.post(
            "/vouchers",
            voucher(sandbox, rows=[{"Account": 1930, "Debit": 1}, {"Account": 1580, "Credit": 2}]),
        ),
        fx.ERR_UNBALANCED,
    )
    assert api.post("/vouchers", voucher(sandbox)).json()["Voucher"]["VoucherNumber"] == 1


# --- rate limit ------------------------------------------------------------------------------------


def test_26th_request_within_5_seconds_is_429_then_recovers(sandbox, api):
    statuses = [api.get("/companyinformation").status_code for _ in range(26)]
    assert statuses == [200] * 25 + [429]
    limited = api.get("/companyinformation")
    assert limited.status_code == 429
    assert limited.headers["Content-Type"].startswith("text/plain")
    assert "Retry-After" not in limited.headers
    assert not any(h.lower().startswith("x-ratelimit") for h in limited.headers)
    assert [entry.status for entry in sandbox.log[-2:]] == [429, 429]
    sandbox.clock.advance(5.1)
    assert api.get("/companyinformation").status_code == 200


def test_rejected_requests_count_in_the_window(sandbox, api):
    for _ in range(25):
        assert api.get("/companyinformation").status_code == 200
    sandbox.clock.advance(3)
    assert [api.get("/companyinformation").status_code for _ in range(25)] == [429] * 25
    sandbox.clock.advance(2.5)  # the 25 accepted ones left the window, the 25 refused ones did not
    assert api.get("/companyinformation").status_code == 429
    sandbox.clock.advance(5.1)
    assert api.get("/companyinformation").status_code == 200


def test_rate_limit_is_per_client_and_tenant(sandbox, url, api):
    sandbox.add_tenant(OTHER_DB, "Exempel Handel AB", "556677-8899")
    sandbox.register_client("other-app", "other-secret", [REDIRECT])
    other_tenant = api_for(sandbox, url, OTHER_DB)
    other_client = Api(url, sandbox.issue_tokens("other-app", DB, ALL_SCOPES)["access_token"])
    same_pair = api_for(sandbox, url)
    for _ in range(25):
        api.get("/companyinformation")
    assert api.get("/companyinformation").status_code == 429
    assert same_pair.get("/companyinformation").status_code == 429  # another token, same client + tenant
    assert other_tenant.get("/companyinformation").status_code == 200
    assert other_client.get("/companyinformation").status_code == 200


def test_token_endpoint_is_not_rate_limited(sandbox, url):
    tokens = sandbox.issue_tokens(CLIENT_ID, DB, ALL_SCOPES)
    api = Api(url, tokens["access_token"])
    for _ in range(26):
        api.get("/companyinformation")
    refresh_token = tokens["refresh_token"]
    for _ in range(30):
        answer = refresh(url, refresh_token)
        assert answer.status_code == 200
        refresh_token = answer.json()["refresh_token"]


# --- fault injection -------------------------------------------------------------------------------


def test_fault_status_503(sandbox, tenant, api):
    sandbox.faults.inject(
        "status", method="POST", path_contains="/3/vouchers", status=503, body="Service Unavailable"
    )
    answer = api.post("/vouchers", voucher(sandbox))
    assert answer.status_code == 503 and answer.text == "Service Unavailable"
    assert tenant.vouchers == []
    assert api.post("/vouchers", voucher(sandbox)).json()["Voucher"]["VoucherNumber"] == 1


def test_fault_delay_times_out_the_client_but_takes_effect(sandbox, tenant, api):
    sandbox.faults.inject("delay", method="POST", path_contains="/3/vouchers", seconds=0.8)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post("/vouchers", voucher(sandbox), timeout=0.2)
    deadline = time.monotonic() + 5
    while not tenant.vouchers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [v.number for v in tenant.vouchers] == [1]


def test_fault_drop_after_commit_stores_the_voucher(sandbox, tenant, api):
    sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/3/vouchers")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post("/vouchers", voucher(sandbox, Description="Utbetalning 42"))
    assert [(v.series, v.number, v.description) for v in tenant.vouchers] == [("A", 1, "Utbetalning 42")]
    assert sandbox.log[-1].status == 201
    assert api.get("/vouchers/A/1").json()["Voucher"]["Description"] == "Utbetalning 42"


def test_fault_drop_before_stores_nothing(sandbox, tenant, api):
    sandbox.faults.inject("drop_before", method="POST", path_contains="/3/vouchers")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post("/vouchers", voucher(sandbox))
    assert tenant.vouchers == []
    assert api.post("/vouchers", voucher(sandbox)).json()["Voucher"]["VoucherNumber"] == 1


# --- quirks, persistence, demo, mounting -------------------------------------------------------------


def test_quoted_numbers_quirk(sandbox, api):
    plain = api.post("/vouchers", voucher(sandbox)).json()["Voucher"]
    assert plain["VoucherNumber"] == 1 and plain["VoucherRows"][0]["Account"] == 1930
    sandbox.quirks.quoted_numbers = True
    quoted = api.post("/vouchers", voucher(sandbox)).json()["Voucher"]
    assert quoted["VoucherNumber"] == "2" and quoted["Year"] == str(plain["Year"])
    assert quoted["VoucherRows"][0]["Account"] == "1930"
    assert quoted["VoucherRows"][0]["Debit"] == 9750  # amounts stay numbers
    error = api.post("/vouchers", voucher(sandbox, VoucherSeries="Z")).json()["ErrorInformation"]
    assert error["code"] == str(fx.ERR_SERIES_INVALID) and error["error"] == 1
    missing = api.get("/accounts/1999").json()["ErrorInformation"]
    assert missing["Code"] == str(fx.ERR_ACCOUNT_NOT_FOUND)
    listing = api.get("/vouchers").json()
    assert listing["MetaInformation"]["@TotalResources"] == 2


def test_dump_and_load_state_round_trip(sandbox, tenant, url, api):
    tokens = sandbox.issue_tokens(CLIENT_ID, DB, ALL_SCOPES)
    assert api.post("/vouchers", voucher(sandbox)).status_code == 201
    tenant.add_cost_center("500", "Nya huset")
    tenant.locked_until = date(today(sandbox).year - 1, 12, 31)
    sandbox.quirks.quoted_numbers = True
    state = json.loads(json.dumps(sandbox.dump_state()))

    restored = FortnoxSandbox()
    restored.load_state(state)
    assert restored.dump_state() == state
    server = ServerThread(restored).start()
    try:
        again = Api(server.url, tokens["access_token"])
        fetched = again.get("/vouchers/A/1").json()["Voucher"]
        assert fetched["VoucherNumber"] == "1" and fetched["VoucherRows"][1]["Debit"] == 250
        assert again.get("/costcenters/500").status_code == 200
        assert (
            again.get("/settings/lockedperiod").json()["LockedPeriod"]["EndDate"]
            == tenant.locked_until.isoformat()
        )
        assert again.post("/vouchers", voucher(restored)).json()["Voucher"]["VoucherNumber"] == "2"
        assert refresh(server.url, tokens["refresh_token"]).status_code == 200
    finally:
        server.stop()
    assert len(sandbox.tenant(DB).vouchers) == 1  # the original is untouched


def test_reset_forgets_everything(sandbox, url, api):
    sandbox.faults.inject("status", status=500)
    sandbox.reset()
    assert sandbox.tenants == {} and sandbox.clients == {} and sandbox.log == []
    assert_unauthorized(api.get("/companyinformation"))


def test_seed_demo(sandbox, url):
    sandbox.reset()
    demo = sandbox.seed_demo()
    assert demo["client_id"] == "kontera-demo" and demo["client_secret"] == "kontera-demo-secret"
    assert demo["redirect_uri"] == "http://127.0.0.1:8000/integrations/fortnox/callback"
    assert set(demo["tenants"]) == {"Brf Exempelgården", "Exempel Handel AB"}
    assert sandbox.seed_demo() == demo  # idempotent
    code = sandbox.authorize(
        demo["client_id"], demo["tenants"]["Brf Exempelgården"], ALL_SCOPES, demo["redirect_uri"], STATE
    )
    tokens = token_request(
        url,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": demo["redirect_uri"]},
        auth=(demo["client_id"], demo["client_secret"]),
    ).json()
    info = Api(url, tokens["access_token"]).get("/companyinformation").json()["CompanyInformation"]
    assert info["CompanyName"] == "Brf Exempelgården"
    handel = sandbox.tenant(demo["tenants"]["Exempel Handel AB"])
    assert handel.cost_center("BUTIK") is not None and len(handel.accounts[1]) >= 80


def test_mounted_under_a_prefix(sandbox):
    server = ServerThread(mount({"/fortnox": sandbox})).start()
    try:
        root = f"{server.url}/fortnox"
        code = sandbox.authorize(CLIENT_ID, DB, ALL_SCOPES, REDIRECT, STATE)
        tokens = token_request(
            root, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        )
        api = Api(root, tokens.json()["access_token"])
        posted = api.post("/vouchers", voucher(sandbox)).json()["Voucher"]
        assert posted["@url"].startswith(f"{root}/3/vouchers/A/1?financialyear=")
        assert sandbox.log[-1].path == "/3/vouchers"
    finally:
        server.stop()


def test_sie4_export(sandbox, tenant, api):
    rows = [{"Account": 1510, "Debit": 100}, {"Account": 3011, "Credit": 100, "CostCenter": "100"}]
    api.post("/vouchers", voucher(sandbox, rows=rows, Description="Hyra mars"))
    answer = api.get("/sie/4", financialyear=tenant.current_year().id)
    assert answer.status_code == 200
    text = answer.content.decode("cp437")
    assert "#SIETYP 4" in text and f"#FNR {DB}" in text and '#KONTO 3011 "Hyresintäkter bostäder"' in text
    assert f'#VER A 1 {today(sandbox):%Y%m%d} "Hyra mars"' in text
    assert '#TRANS 3011 {1 "100"} -100.00' in text and "#TRANS 1510 {} 100.00" in text


def test_request_log(sandbox, api):
    api.get("/accounts/1930", financialyear=1)
    api.get("/accounts/1999")
    assert [(e.method, e.path, e.status, e.query) for e in sandbox.log] == [
        ("GET", "/3/accounts/1930", 200, "financialyear=1"),
        ("GET", "/3/accounts/1999", 404, ""),
    ]
