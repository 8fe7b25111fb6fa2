"""Every request Kontera makes to Fortnox, against one example from Fortnox's documentation or a
published client's recorded exchange (the source is named with each example).

For each: our client builds the same method, path, query, headers and body keys, and parses the
documented response. Sources (see also shared/reference/fortnox-api.md):
  AUTH   https://www.fortnox.se/developer/authorization (get-authorization-code, get-access-token,
         get-refresh-token)
  HDR    https://www.fortnox.se/developer/guides-and-good-to-know/header-fields
  OAS    the official OpenAPI (https://apps.fortnox.se/apidocs; copy in repository mathiasb/cobalt-dingo,
         docs/receipts/docs/fortnox-openapi.json)
  ARS    recorded: repository arsredovisning-online/fortnox-client, spec/cassettes/fortnox/*.yml
  ACC    recorded: repository accodeing/fortnox-api, spec/vcr_cassettes/**
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations import tokens
from integrations.base import AuthError, LicenceOrPermissionMissing, RemoteValidationError, VoucherDTO, VoucherRowDTO
from integrations.fortnox.client import FortnoxClient, NotFound
from integrations.fortnox.connector import FortnoxConnector
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db

CLIENT_ID, CLIENT_SECRET = "kontera-client", "kontera-secret"
REDIRECT = "https://kontera.example/integrations/fortnox/callback"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def fortnox(settings, db):
    settings.FORTNOX_API_URL = "https://api.fortnox.se/3"
    settings.FORTNOX_OAUTH_URL = "https://apps.fortnox.se/oauth-v1"
    settings.FORTNOX_CLIENT_ID, settings.FORTNOX_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    settings.FORTNOX_REDIRECT_URI = REDIRECT
    return IntegrationFactory(system="fortnox", credentials={
        "access_token": "ACCESS", "refresh_token": "REFRESH", "expires_at": time.time() + 3000,
        "refreshed_at": time.time()})


def assert_rest_headers(captured, *, body: bool = False):
    # [HDR]: Authorization: Bearer {Access-Token}, Accept: application/json, Content-Type: application/json
    assert captured.headers["Authorization"] == "Bearer ACCESS"
    assert captured.headers["Accept"] == "application/json"
    if body:
        assert captured.headers["Content-Type"] == "application/json"


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- OAuth [AUTH] ------------------------------------------------------------------------------------------


def test_authorisation_url(fortnox):
    # [AUTH] get-authorization-code: GET https://apps.fortnox.se/oauth-v1/auth?client_id={Client-ID}
    #   &redirect_uri=…&scope=companyinformation&state=somestate123&access_type=offline&response_type=code
    url = urlsplit(tokens.fortnox_authorisation_url(integration=fortnox))
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "apps.fortnox.se", "/oauth-v1/auth")
    assert set(query) == {"client_id", "redirect_uri", "scope", "state", "access_type", "response_type"}
    assert query["response_type"] == ["code"] and query["access_type"] == ["offline"]
    assert query["client_id"] == [CLIENT_ID] and query["redirect_uri"] == [REDIRECT]
    assert set(query["scope"][0].split(" ")) == set(tokens.FORTNOX_SCOPES)  # space-delimited


def test_code_exchange(fortnox, wire):
    # [AUTH] get-access-token: POST /oauth-v1/token, Basic base64(ClientId:ClientSecret), form
    # grant_type=authorization_code&code={Authorization-Code}&redirect_uri=…; documented response below.
    wire.answer("POST", r"^/oauth-v1/token$", {"status": 200, "headers": JSON, "body": {
        "access_token": "xyz...", "refresh_token": "a7302e6b-b1cb-4508-b884-cf9abd9a51de",
        "scope": "companyinformation", "expires_in": 3600, "token_type": "bearer"}})
    stored = tokens.fortnox_exchange_code(integration=fortnox, code="CODE-1")
    sent = wire.last("POST", "/oauth-v1/token")
    assert sent.headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.form() == {"grant_type": "authorization_code", "code": "CODE-1", "redirect_uri": REDIRECT}
    assert stored["access_token"] == "xyz..." and stored["refresh_token"] == "a7302e6b-b1cb-4508-b884-cf9abd9a51de"


def test_refresh(fortnox, wire):
    # [AUTH] get-refresh-token: same endpoint and Basic header, grant_type=refresh_token&refresh_token=…;
    # the response shape as recorded by [ACC] authentication/valid_request.yml (scope space-separated).
    fortnox.credentials = {**fortnox.credentials, "expires_at": 0}
    fortnox.save()
    wire.answer("POST", r"^/oauth-v1/token$", {"status": 200, "headers": JSON, "body": {
        "access_token": "NEW", "expires_in": 3600, "token_type": "bearer",
        "scope": "article invoice settings customer order project", "refresh_token": "NEXT"}})
    assert tokens.fortnox_access_token(integration=fortnox) == "NEW"
    sent = wire.last("POST", "/oauth-v1/token")
    assert sent.headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)
    assert sent.form() == {"grant_type": "refresh_token", "refresh_token": "REFRESH"}
    fortnox.refresh_from_db()
    assert fortnox.credentials["refresh_token"] == "NEXT"


def test_refresh_refused(fortnox, wire):
    # [ACC] authentication/invalid_refresh_token.yml: 400, text/html (sic), invalid_grant
    fortnox.credentials = {**fortnox.credentials, "expires_at": 0}
    fortnox.save()
    wire.answer("POST", r"^/oauth-v1/token$", {"status": 400, "headers": {"Content-Type": "text/html; charset=UTF-8"},
                                               "body": '{"error":"invalid_grant","error_description":"Invalid refresh token"}'})
    with pytest.raises(AuthError) as refused:
        tokens.fortnox_access_token(integration=fortnox)
    assert refused.value.code == "invalid_grant"


# --- master data ---------------------------------------------------------------------------------------------


def test_company_information(fortnox, wire):
    # [OAS] GET /3/companyinformation -> {"CompanyInformation": {…, "DatabaseNumber" (int), …}}
    wire.answer("GET", r"^/3/companyinformation$", {"headers": JSON, "body": {"CompanyInformation": {
        "Address": "Exempelgatan 1", "City": "Stockholm", "CompanyName": "Brf Exempelgården",
        "CountryCode": "SE", "DatabaseNumber": 1046823, "OrganizationNumber": "769600-1234",
        "VisitAddress": "", "VisitCity": "", "VisitCountryCode": "", "VisitZipCode": "", "ZipCode": "111 22"}}})
    info = FortnoxConnector(fortnox).check_connection()
    sent = wire.last("GET", "/3/companyinformation")
    assert sent.query == {} and sent.body is None
    assert_rest_headers(sent)
    assert (info.company_name, info.organisation_number, info.remote_company_id) == (
        "Brf Exempelgården", "769600-1234", "1046823")


FINANCIAL_YEARS = {  # [ARS] get_financial_years.yml (GET /3/financialyears?limit=100), recorded 2014
    "MetaInformation": {"@TotalResources": 2, "@TotalPages": 1, "@CurrentPage": 1},
    "FinancialYears": [
        {"@url": "https://api.fortnox.se/3/financialyears/1", "Id": 1, "FromDate": "2014-01-01", "ToDate": "2014-12-31"},
        {"@url": "https://api.fortnox.se/3/financialyears/2", "Id": 2, "FromDate": "2011-07-13", "ToDate": "2012-12-31"}],
}
ACCOUNTS = {  # the item: [ARS] get_single_account.yml (recorded); the list wrapper: [OAS]
    "MetaInformation": {"@TotalResources": 1, "@TotalPages": 1, "@CurrentPage": 1},
    "Accounts": [{"@url": "https://api.fortnox.se/3/accounts/1931?financialyear=2", "Active": True,
                  "BalanceBroughtForward": 0, "BalanceCarriedForward": 3002.91, "CostCenter": "",
                  "CostCenterSettings": "ALLOWED", "Description": "Företagskonto, Swedbank", "Number": 1931,
                  "Project": 0, "ProjectSettings": "ALLOWED", "SRU": 7281, "TransactionInformation": "",
                  "TransactionInformationSettings": "ALLOWED", "VATCode": None, "Year": 2}],
}
COST_CENTRES = {"CostCenters": [  # [OAS] fortnox_CostCenter list: Code (1–6), Description, Note, Active
    {"@url": "https://api.fortnox.se/3/costcenters/100", "Code": "100", "Description": "Hus A", "Note": "",
     "Active": True}]}
SERIES = {  # [OAS] VoucherSeriesCollection: Code, Description, Manual, NextVoucherNumber, Year
    "MetaInformation": {"@TotalResources": 1, "@TotalPages": 1, "@CurrentPage": 1},
    "VoucherSeriesCollection": [{"@url": "https://api.fortnox.se/3/voucherseries/A", "Code": "A",
                                 "Description": "Redovisningsverifikationer", "Manual": True,
                                 "NextVoucherNumber": 18, "Year": 1}]}
LOCKED = {"LockedPeriod": {"EndDate": "2014-03-31"}}  # softwerkab SDK entity LockedPeriod (EndDate)


def test_master_data(fortnox, wire):
    wire.answer("GET", r"^/3/companyinformation$", {"headers": JSON, "body": {"CompanyInformation": {
        "CompanyName": "Brf Exempelgården", "OrganizationNumber": "769600-1234", "DatabaseNumber": 1046823}}})
    wire.answer("GET", r"^/3/financialyears$", {"headers": JSON, "body": FINANCIAL_YEARS})
    wire.answer("GET", r"^/3/accounts$", {"headers": JSON, "body": ACCOUNTS})
    wire.answer("GET", r"^/3/costcenters$", {"headers": JSON, "body": COST_CENTRES})
    wire.answer("GET", r"^/3/voucherseries$", {"headers": JSON, "body": SERIES})
    wire.answer("GET", r"^/3/settings/lockedperiod$", {"headers": JSON, "body": LOCKED})
    data = FortnoxConnector(fortnox).import_master_data()
    for path in ("/3/financialyears", "/3/accounts", "/3/costcenters", "/3/voucherseries"):
        sent = wire.last("GET", path, exact=True)
        assert_rest_headers(sent)
        assert {"page", "limit"} <= set(sent.query), path  # [PARAMS] paging
    # the year ending last is used when today is in none of them (Ids are not chronological)
    assert wire.last("GET", "/3/accounts").query["financialyear"] == "1"
    assert wire.last("GET", "/3/voucherseries").query["financialyear"] == "1"
    assert sorted((y.start, y.remote_id) for y in data.financial_years) == [
        (dt.date(2011, 7, 13), "2"), (dt.date(2014, 1, 1), "1")]
    [account] = data.accounts
    assert (account.number, account.name, account.active, account.cost_centre_setting, account.is_balance) == (
        1931, "Företagskonto, Swedbank", True, "allowed", True)
    assert [(c.code, c.active) for c in data.cost_centres] == [("100", True)]
    assert [(s.code, s.manual) for s in data.series] == [("A", True)]
    assert data.locked_until == dt.date(2014, 3, 31)
    assert data.company_info["tenant_id"] == "1046823"


# --- vouchers --------------------------------------------------------------------------------------------------

RECORDED_VOUCHER = {"Voucher": {  # [ARS] get_single_voucher.yml (GET /3/vouchers/A/17?financialyear=2), 2015
    "@url": "https://api.fortnox.se/3/vouchers/A/17?financialyear=2", "Comments": None, "CostCenter": "",
    "Description": "Programvara", "Project": 0, "ReferenceNumber": "", "ReferenceType": "MANUAL",
    "TransactionDate": "2011-09-22", "VoucherNumber": 17, "VoucherRows": [
        {"Account": 5420, "CostCenter": "", "Credit": 0, "Description": "Programvaror", "Debit": 370.78, "Project": 0,
         "Removed": False, "TransactionInformation": ""},
        {"Account": 1910, "CostCenter": "", "Credit": 370.78, "Description": "Kassa", "Debit": 0, "Project": 0,
         "Removed": False, "TransactionInformation": ""}],
    "VoucherSeries": "A", "Year": 2}}


def _voucher(**kw):
    fields = dict(reference="KONTERA-17", kind="payout", date=dt.date(2011, 9, 22), description="Programvara",
                  series="A", financial_year="2",
                  rows=(VoucherRowDTO(account=5420, debit=Decimal("370.78"), text="Utbetalning"),
                        VoucherRowDTO(account=1910, credit=Decimal("370.78"), cost_centre="100")))
    fields.update(kw)
    return VoucherDTO(**fields)


def test_post_voucher(fortnox, wire):
    # [OAS] POST /3/vouchers?financialyear=<Id>, body {"Voucher": {VoucherSeries, TransactionDate,
    # Description, Comments, VoucherRows: [{Account, Debit, Credit, CostCenter, TransactionInformation}]}}
    # (the request example of shared/reference/fortnox-api.md §3.3) -> 201 {"Voucher": {…}}
    wire.answer("POST", r"^/3/vouchers$", {"status": 201, "headers": JSON, "body": RECORDED_VOUCHER})
    remote = FortnoxConnector(fortnox).post_voucher(_voucher())
    sent = wire.last("POST", "/3/vouchers")
    assert_rest_headers(sent, body=True)
    assert sent.query == {"financialyear": "2"}
    body = sent.json()
    assert set(body) == {"Voucher"}
    assert set(body["Voucher"]) == {"VoucherSeries", "TransactionDate", "Description", "Comments", "VoucherRows"}
    assert set(body["Voucher"]["VoucherRows"][0]) == {"Account", "Debit", "Credit", "TransactionInformation"}
    assert set(body["Voucher"]["VoucherRows"][1]) == {"Account", "Debit", "Credit", "CostCenter"}
    assert body["Voucher"]["Comments"] == "(KONTERA-17)"
    assert (remote.series, remote.number, remote.year, remote.remote_id) == ("A", "17", "2", "A17")


def test_list_vouchers_then_read_the_candidates(fortnox, wire):
    # [OAS] GET /3/vouchers with fromdate, todate, voucherseries, financialyear. The list answer is
    # recorded: [ARS] get_limited_voucher_list.yml — items without Comments or Description, so each
    # candidate is read with GET /3/vouchers/{series}/{number}?financialyear= ([ARS] get_single_voucher.yml).
    wire.answer("GET", r"^/3/vouchers$", {"headers": JSON, "body": {
        "MetaInformation": {"@TotalResources": 1, "@TotalPages": 1, "@CurrentPage": 1},
        "Vouchers": [{"@url": "https://api.fortnox.se/3/vouchers/A/17?financialyear=2", "ReferenceNumber": "",
                      "ReferenceType": "MANUAL", "VoucherNumber": 17, "VoucherSeries": "A", "Year": 2}]}})
    ours = {"Voucher": {**RECORDED_VOUCHER["Voucher"], "Comments": "(KONTERA-17) Nets Easy"}}
    wire.answer("GET", r"^/3/vouchers/A/17$", {"headers": JSON, "body": ours})
    found = FortnoxConnector(fortnox).find_voucher(_voucher())
    listing = wire.last("GET", "/3/vouchers", exact=True)
    assert_rest_headers(listing)
    assert {k: v for k, v in listing.query.items() if k not in ("page", "limit")} == {
        "fromdate": "2011-09-22", "todate": "2011-09-22", "voucherseries": "A", "financialyear": "2"}
    read = wire.last("GET", "/3/vouchers/A/17")
    assert read.query == {"financialyear": "2"}
    assert_rest_headers(read)
    assert found is not None and found.remote_id == "A17" and found.year == "2"


def test_errors_in_both_casings_and_the_expired_token(fortnox, wire):
    client = FortnoxClient(fortnox)
    # [ACC] customers/find_failure.yml: 404 with capitalised keys
    wire.answer("GET", r"^/3/vouchers/A/999$", {"status": 404, "headers": JSON, "body": {
        "ErrorInformation": {"Error": 1, "Message": "Kan inte hitta kunden.", "Code": 2000433}}})
    with pytest.raises(NotFound) as missing:
        client.get("vouchers/A/999")
    assert missing.value.code == "2000433" and "Kan inte hitta kunden." in missing.value.message
    # [ACC] invoices/filter_invalid.yml: 400 with lower-case keys
    wire.answer("GET", r"^/3/vouchers$", {"status": 400, "headers": JSON, "body": {
        "ErrorInformation": {"error": 1, "message": "Ett ogiltigt filter har använts.", "code": 2000587}}})
    with pytest.raises(RemoteValidationError) as refused:
        client.get("vouchers")
    assert refused.value.code == "2000587"
    # [ERR] 2001101 "Det finns ingen aktiv licens för önskat scope", answered 400 (erp-mafia/accounted)
    wire.answer("POST", r"^/3/vouchers$", {"status": 400, "headers": JSON, "body": {
        "ErrorInformation": {"error": 1, "message": "Det finns ingen aktiv licens för önskat scope", "code": 2001101}}})
    with pytest.raises(LicenceOrPermissionMissing):
        client.post("vouchers", {"Voucher": {}})
    # [ACC] authentication/expired_token.yml: 401 {"message":"unauthorized"} — refreshed once, then final
    fortnox.credentials = {**fortnox.credentials, "refresh_token": "REFRESH"}
    wire.answer("GET", r"^/3/companyinformation$", {"status": 401, "headers": JSON, "body": {"message": "unauthorized"}})
    wire.answer("POST", r"^/oauth-v1/token$", {"headers": JSON, "body": {
        "access_token": "ACCESS", "refresh_token": "R2", "expires_in": 3600, "token_type": "bearer", "scope": "x"}})
    wire.answer("GET", r"^/3/companyinformation$", {"status": 401, "headers": JSON, "body": {"message": "unauthorized"}})
    with pytest.raises(AuthError):
        client.get("companyinformation")
