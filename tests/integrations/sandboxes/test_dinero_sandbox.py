"""The Dinero sandbox, exercised over real HTTP (ServerThread + requests), no Django.

Run: .venv/bin/python -m pytest tests/integrations/test_dinero_sandbox.py -p no:django -q
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
import requests

from integrations.sandboxes import dinero as dinero
from integrations.sandboxes.base import ServerThread, mount
from integrations.sandboxes.dinero import DineroSandbox

CLIENT_ID = "kontera-test"
CLIENT_SECRET = "kontera-test-secret"
ORG = 111111
ORG_KEY = "key-org-a"
ORG_B = 222222
ORG_B_KEY = "key-org-b"
ORG_FREE = 333333
ORG_FREE_KEY = "key-org-free"

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def sandbox() -> DineroSandbox:
    sb = DineroSandbox()
    sb.register_client(CLIENT_ID, CLIENT_SECRET)
    sb.add_organization(ORG, "Testfirma ApS", ORG_KEY)
    sb.add_organization(ORG_B, "Andet Firma ApS", ORG_B_KEY)
    sb.add_organization(ORG_FREE, "Gratis ApS", ORG_FREE_KEY, is_pro=False)
    return sb


class _CurrentApp:
    """One real server per module (stopping a ServerThread takes half a second); each test swaps in
    its own fresh sandbox."""

    app: DineroSandbox | None = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def _shared_server():
    current = _CurrentApp()
    srv = ServerThread(current).start()  # port 0: a free port
    yield srv, current
    srv.stop()


@pytest.fixture
def server(sandbox, _shared_server):
    srv, current = _shared_server
    current.app = sandbox
    yield srv
    current.app = None


def request_token(url: str, api_key: str, *, client=(CLIENT_ID, CLIENT_SECRET), scope="read write"):
    return requests.post(
        f"{url}/dineroapi/oauth/token",
        auth=client,
        data={"grant_type": "password", "scope": scope, "username": api_key, "password": api_key},
        timeout=10,
    )


class Dinero:
    """A tiny client: one organisation, one token."""

    def __init__(self, url: str, org: int, api_key: str | None = None, token: str | None = None):
        self.url, self.org = url, org
        if token is None:
            response = request_token(url, api_key)
            assert response.status_code == 200, response.text
            token = response.json()["access_token"]
        self.token = token

    def _h(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, *, version: str = "v1", org: int | None = None, **kw):
        org = self.org if org is None else org
        return requests.request(
            method, f"{self.url}/{version}/{org}{path}", headers=self._h(), timeout=30, **kw
        )

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def create(self, body: dict):
        return self.post("/vouchers/purchase", version="v1.2", json=body)

    def voucher(self, guid: str) -> dict:
        response = self.get(f"/vouchers/purchase/{guid}")
        assert response.status_code == 200, response.text
        return response.json()

    def book(self, guid: str, **extra):
        timestamp = self.voucher(guid)["Timestamp"]
        return self.post(f"/vouchers/purchase/{guid}/book", json={"Timestamp": timestamp, **extra})

    def contact(self, name="Kontorland A/S", **extra) -> str:
        body = {"Name": name, "CountryKey": "DK", "IsPerson": False, "IsMember": False, "UseCvr": False}
        response = self.post("/contacts", json={**body, **extra})
        assert response.status_code == 201, response.text
        return response.json()["ContactGuid"]

    settle = None  # called after an upload: lets the file become accessible (sandbox clock)

    def upload(self, content: bytes = PDF, name: str = "kvittering.pdf", part: str = "file"):
        response = self.post(
            "/files", params={"fileName": name}, files={part: (name, content, "application/octet-stream")}
        )
        if self.settle is not None:
            self.settle()
        return response


@pytest.fixture
def api(server, sandbox) -> Dinero:
    client = Dinero(server.url, ORG, ORG_KEY)
    client.settle = lambda: sandbox.clock.advance(sandbox.file_accessible_after)
    return client


@pytest.fixture
def today(sandbox):
    return sandbox.today()


def cash_body(today, **overrides) -> dict:
    body = {
        "PurchaseType": "cash",
        "VoucherDate": today.isoformat(),
        "DepositAccountNumber": 55000,
        "RegionKey": "DK",
        "ExternalReference": "kontera:receipt:1",
        "Lines": [
            {"Description": "Kontorartikler", "AccountNumber": 7200, "VatCode": "I25", "Amount": 125.00}
        ],
    }
    body.update(overrides)
    return body


def credit_body(today, contact: str | None, **overrides) -> dict:
    body = {
        "PurchaseType": "credit",
        "VoucherDate": today.isoformat(),
        "PaymentDate": (today + timedelta(days=30)).isoformat(),
        "ContactGuid": contact,
        "Lines": [{"Description": "Webhotel", "AccountNumber": 7300, "VatCode": "I25", "Amount": 250}],
    }
    body.update(overrides)
    return body


def assert_validation(response, key: str, text: str | None = None) -> dict:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 42
    assert body["message"] == "Validation Error"
    assert "languageSpecificMessages" in body
    assert key in body["validationErrors"], body
    if text is not None:
        assert text in body["validationErrors"][key]
    return body


def assert_refused_and_nothing_stored(sandbox, response, key: str, text: str | None = None) -> dict:
    body = assert_validation(response, key, text)
    assert sandbox.organization(ORG).purchase_vouchers == {}
    return body


# ---- authentication ------------------------------------------------------------------------------


def test_token_is_issued_per_organisation_api_key(server):
    response = request_token(server.url, ORG_KEY)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] == ""
    orgs = requests.get(
        f"{server.url}/v1/organizations",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert orgs.status_code == 200
    assert orgs.json() == [{"Id": ORG, "Name": "Testfirma ApS", "IsPro": True}]
    other = Dinero(server.url, ORG_B, ORG_B_KEY)
    assert other.token != body["access_token"]
    assert (
        requests.get(f"{server.url}/v1/organizations", headers=other._h(), timeout=10).json()[0]["Id"]
        == ORG_B
    )


def test_wrong_api_key_is_invalid_grant(server):
    response = request_token(server.url, "no-such-key")
    assert response.status_code == dinero.BAD_API_KEY_STATUS == 400
    assert response.json() == {"error": "invalid_grant"}
    mismatch = requests.post(
        f"{server.url}/dineroapi/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "password", "scope": "read write", "username": ORG_KEY, "password": ORG_B_KEY},
        timeout=10,
    )
    assert mismatch.status_code == 400


def test_wrong_client_is_401(server):
    assert request_token(server.url, ORG_KEY, client=("nobody", "x")).status_code == 401
    response = request_token(server.url, ORG_KEY, client=(CLIENT_ID, "wrong-secret"))
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}
    no_auth = requests.post(
        f"{server.url}/dineroapi/oauth/token",
        data={"grant_type": "password", "scope": "read write", "username": ORG_KEY, "password": ORG_KEY},
        timeout=10,
    )
    assert no_auth.status_code == 401


def test_token_request_needs_password_grant_and_scope(server):
    assert request_token(server.url, ORG_KEY, scope="read").json() == {"error": "invalid_scope"}
    response = requests.post(
        f"{server.url}/dineroapi/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": "read write"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


def test_non_pro_organisation_gets_403_code_90(server):
    free = Dinero(server.url, ORG_FREE, ORG_FREE_KEY)  # the token request itself succeeds
    for path in ("/accounts/entry", "/vatTypes", "/contacts"):
        response = free.get(path)
        assert response.status_code == 403
        assert response.json()["code"] == 90
    response = free.create({"PurchaseType": "cash"})
    assert response.status_code == 403 and response.json()["code"] == 90
    orgs = requests.get(f"{server.url}/v1/organizations", headers=free._h(), timeout=10)
    assert orgs.json() == [{"Id": ORG_FREE, "Name": "Gratis ApS", "IsPro": False}]


def test_non_pro_code_48_when_configured(server, sandbox):
    sandbox.set_pro_error_code(ORG_FREE, 48)
    response = Dinero(server.url, ORG_FREE, ORG_FREE_KEY).get("/accounts/entry")
    assert response.status_code == 403
    assert response.json()["code"] == 48
    sandbox.set_pro(ORG_FREE, True)
    assert Dinero(server.url, ORG_FREE, ORG_FREE_KEY).get("/accounts/entry").status_code == 200


def test_token_for_one_organisation_is_refused_on_another(api):
    response = api.get("/accounts/entry", org=ORG_B)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == dinero.FOREIGN_ORG_CODE
    assert set(body) >= {"code", "message", "validationErrors", "languageSpecificMessages"}
    assert api.get("/accounts/entry").status_code == 200


def test_expired_token_is_401(api, sandbox):
    sandbox.clock.advance(3599)
    assert api.get("/vatTypes").status_code == 200
    sandbox.clock.advance(1)
    response = api.get("/vatTypes")
    assert response.status_code == 401
    assert response.json()["code"] == dinero.UNAUTHORIZED_CODE


def test_missing_or_unknown_token_is_401(server):
    assert requests.get(f"{server.url}/v1/{ORG}/vatTypes", timeout=10).status_code == 401
    bogus = Dinero(server.url, ORG, token="not-a-token")
    assert bogus.get("/vatTypes").status_code == 401


# ---- master data ---------------------------------------------------------------------------------


def test_accounts_and_vat_types_are_bare_arrays(api):
    # without fields= only the default fields come back (recorded: Apaq/dinero-java accounts_list.json)
    plain = api.get("/accounts/entry").json()
    assert {frozenset(a) for a in plain} == {frozenset({"AccountNumber", "Name"})}
    assert {frozenset(a) for a in api.get("/accounts/deposit").json()} == {frozenset({"AccountNumber", "Name"})}
    assert {frozenset(a) for a in api.get("/accounts/purchase").json()} == {frozenset({"AccountNumber", "Name"})}
    entry = api.get("/accounts/entry", params={"fields": "AccountNumber,Name,VatCode,Category,IsHidden"}).json()
    assert isinstance(entry, list) and len(entry) >= 60
    by_number = {a["AccountNumber"]: a for a in entry}
    assert by_number[7200]["VatCode"] == "I25"
    assert by_number[7200]["Category"] in dinero.PROFIT_AND_LOSS_CATEGORIES
    assert by_number[55000]["Category"] in dinero.BALANCE_CATEGORIES
    assert by_number[3000]["VatCode"] is None
    assert {51020, 53000, 55000, 55040, 63000, 63100, 64000, 64060, 1000, 9200} <= set(by_number)
    assert set(by_number[1000]) >= {"AccountNumber", "Name", "VatCode", "Category", "IsHidden"}
    vat = api.get("/vatTypes").json()
    assert isinstance(vat, list)
    codes = {v["VatCode"]: v for v in vat}
    assert {"I25", "IEUV", "IEUY", "IVV", "IVY", "REP", "OBPK", "U25"} <= set(codes)
    assert codes["I25"]["VatRate"] == 0.25 and codes["I25"]["Name"]
    deposit = api.get("/accounts/deposit", params={"fields": "AccountNumber,Name,IsDefault,IsHidden"}).json()
    assert [d["AccountNumber"] for d in deposit] == [55000, 55010, 55040]
    assert deposit[0] == {"AccountNumber": 55000, "Name": "Bank", "IsDefault": True, "IsHidden": False}


def test_purchase_accounts_exclude_balance_and_income_accounts(api):
    purchase = {a["AccountNumber"] for a in api.get("/accounts/purchase").json()}
    assert {2000, 4120, 7200, 7300, 8050, 9200} <= purchase
    assert not purchase & {1000, 51020, 53000, 55000, 55040, 63000, 63100, 64060, 99999}
    assert all(n < 10000 for n in purchase)


def test_fields_and_category_filter_on_entry_accounts(api):
    entry = api.get("/accounts/entry", params={"fields": "accountNumber,name"}).json()
    assert set(entry[0]) == {"AccountNumber", "Name"}
    admin = api.get("/accounts/entry", params={"categoryFilter": "Administration"}).json()
    assert admin and all(7000 <= a["AccountNumber"] < 8000 for a in admin)


def test_accounts_added_by_a_test_appear_in_the_right_lists(api, sandbox, today):
    sandbox.add_account(ORG, 55020, "Udlæg (Pleo)", deposit=True)
    sandbox.add_account(ORG, 7470, "Diverse software", "I25")
    assert 55020 in {a["AccountNumber"] for a in api.get("/accounts/deposit").json()}
    purchase = {a["AccountNumber"] for a in api.get("/accounts/purchase").json()}
    assert 7470 in purchase and 55020 not in purchase
    lines = [{"AccountNumber": 7470, "VatCode": "I25", "Amount": 10}]
    assert api.create(cash_body(today, DepositAccountNumber=55020, Lines=lines)).status_code == 201


def test_unknown_route_is_an_html_404(api):
    response = api.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert "404 - Dinero" in response.text and "Siden blev ikke fundet" in response.text


def test_paths_are_case_insensitive_and_wrong_method_is_405(api):
    assert api.get("/VATTYPES").status_code == 200
    response = api.call("PUT", "/vatTypes")
    assert response.status_code == 405
    assert response.json()["code"] == dinero.METHOD_NOT_ALLOWED_CODE


# ---- contacts ------------------------------------------------------------------------------------


def test_contact_create_and_get(api):
    response = api.post(
        "/contacts",
        json={
            "name": "Kontorland A/S",
            "countryKey": "DK",
            "isPerson": False,
            "isMember": False,
            "useCvr": False,
            "VatNumber": "DK12345678",
            "Unknown": "ignored",
        },
    )
    assert response.status_code == 201
    guid = response.json()["ContactGuid"]
    uuid.UUID(guid)
    contact = api.get(f"/contacts/{guid}").json()
    assert contact["Name"] == "Kontorland A/S"
    assert contact["VatNumber"] == "DK12345678"
    assert contact["CountryKey"] == "DK"
    assert "Unknown" not in contact
    assert api.get(f"/contacts/{uuid.uuid4()}").status_code == 404


def test_contact_filter_paging_and_default_fields(api):
    api.contact("Kontorland A/S", VatNumber="DK12345678")
    api.contact("Hetzner Online GmbH", VatNumber="DE812871812", CountryKey="DE")
    response = api.get("/contacts", params={"queryFilter": "vatnumber eq 'DK12345678'"})
    assert response.status_code == 200
    body = response.json()
    assert [c["Name"] for c in body["Collection"]] == ["Kontorland A/S"]
    assert set(body["Collection"][0]) == {"Name", "ContactGuid"}  # only the default fields
    assert body["Pagination"] == {
        "MaxPageSizeAllowed": 1000,
        "PageSize": 100,
        "Result": 1,
        "ResultWithoutFilter": 2,
        "Page": 0,
    }
    by_name = api.get(
        "/contacts", params={"queryFilter": "Name eq 'hetzner online gmbh'", "fields": "Name,VatNumber"}
    )
    assert by_name.json()["Collection"] == [{"Name": "Hetzner Online GmbH", "VatNumber": "DE812871812"}]
    page = api.get("/contacts", params={"page": 1, "pageSize": 1}).json()
    assert len(page["Collection"]) == 1 and page["Pagination"]["Page"] == 1
    assert api.get("/contacts", params={"pageSize": 1001}).status_code == 400
    assert api.get("/contacts", params={"pageSize": 0}).status_code == 400
    assert api.get("/contacts", params={"queryFilter": "Street eq 'x'"}).status_code == 400


def test_contact_duplicate_guid_is_refused(api, sandbox):
    guid = str(uuid.uuid4())
    assert api.contact("Første", ContactGuid=guid) == guid
    body = {
        "Name": "Anden",
        "CountryKey": "DK",
        "IsPerson": False,
        "IsMember": False,
        "UseCvr": False,
        "ContactGuid": guid,
    }
    response = api.post("/contacts", json=body)
    assert_validation(response, "ContactGuid")
    assert "guidMustBeUnique" in response.text
    assert [c["Name"] for c in sandbox.list_contacts(ORG)] == ["Første"]


def test_contact_required_fields(api, sandbox):
    response = api.post("/contacts", json={"Name": "Mangler Felter"})
    body = assert_validation(response, "CountryKey")
    assert {"IsPerson", "IsMember", "UseCvr"} <= set(body["validationErrors"])
    assert sandbox.list_contacts(ORG) == []


# ---- files ---------------------------------------------------------------------------------------


def test_file_upload_returns_an_opaque_file_guid(api, sandbox):
    response = api.upload()
    assert response.status_code == 200
    guid = response.json()["FileGuid"]
    assert re.fullmatch(r"[a-z0-9]{20,}", guid)
    with pytest.raises(ValueError):
        uuid.UUID(guid)
    listing = api.get("/files").json()
    assert listing["Collection"] == [{"FileGuid": guid, "Name": "kvittering.pdf"}]
    assert sandbox.list_files(ORG)[0]["Size"] == len(PDF)


def test_file_upload_accepts_an_image_part(api):
    response = api.upload(PNG, "bon.png", part="image")
    assert response.status_code == 200
    assert api.upload(PNG, "bon.png", part="attachment").status_code == 400


def test_file_over_6_mb_is_413(api, sandbox):
    big = PDF + b"0" * (dinero.MAX_FILE_BYTES + 1 - len(PDF))
    response = api.upload(big, "stor.pdf")
    assert response.status_code == 413
    assert response.json()["message"] == "The attached file is too large. Files cannot exceed 6MB."
    assert sandbox.list_files(ORG) == []
    exact = PDF + b"0" * (dinero.MAX_FILE_BYTES - len(PDF))
    assert api.upload(exact, "præcis.pdf").status_code == 200


def test_file_that_is_not_pdf_or_image_is_refused(api, sandbox):
    response = api.upload(b"PK\x03\x04 not a pdf", "bilag.docx")
    assert_validation(response, "file")
    assert sandbox.list_files(ORG) == []


def test_a_file_links_to_only_one_voucher(api, sandbox, today):
    file_guid = api.upload().json()["FileGuid"]
    first = api.create(cash_body(today, FileGuid=file_guid))
    assert first.status_code == 201
    second = api.create(cash_body(today, FileGuid=file_guid))
    assert_validation(second, "FileGuid", "already attached")
    assert len(sandbox.organization(ORG).purchase_vouchers) == 1
    linked = api.get("/files", params={"fields": "FileGuid,Linked"}).json()["Collection"]
    assert linked == [
        {"FileGuid": file_guid, "Linked": [{"Type": "PurchaseVoucher", "Guid": first.json()["Guid"]}]}
    ]
    assert len(api.get("/files", params={"fileStatus": "Used"}).json()["Collection"]) == 1
    assert api.get("/files", params={"fileStatus": "Unused"}).json()["Collection"] == []
    assert api.create(cash_body(today, FileGuid="nosuchfile123")).status_code == 400


def test_a_file_is_usable_only_after_a_second(api, sandbox, today):
    # "It might take a second for the file to be accessible" (api.dinero.dk/v1/docs, Files)
    assert sandbox.file_accessible_after == 1.0
    api.settle = None
    file_guid = api.upload().json()["FileGuid"]
    early = api.create(cash_body(today, FileGuid=file_guid))
    assert_validation(early, "FileGuid", "not accessible yet")
    assert sandbox.organization(ORG).purchase_vouchers == {}
    sandbox.clock.advance(1.0)
    assert api.create(cash_body(today, FileGuid=file_guid)).status_code == 201
    sandbox.file_accessible_after = 0.0  # configurable (the demo may choose another delay)
    assert api.create(cash_body(today, FileGuid=api.upload().json()["FileGuid"])).status_code == 201


def test_accounting_years_list(api, sandbox):
    years = api.get("/accountingyears").json()
    this_year = sandbox.today().year
    assert years == [{"Name": str(y), "FromDate": f"{y}-01-01", "ToDate": f"{y}-12-31"}
                     for y in (this_year - 1, this_year)]


def test_token_endpoint_rate_limit_answers_429_with_retry_after(server, sandbox):
    sandbox.token_requests_per_minute = 2
    assert request_token(server.url, ORG_KEY).status_code == 200
    assert request_token(server.url, ORG_KEY).status_code == 200
    limited = request_token(server.url, ORG_KEY)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"
    assert limited.headers["Content-Type"].startswith("text/plain")
    sandbox.token_retry_after = None
    assert "Retry-After" not in request_token(server.url, ORG_KEY).headers
    sandbox.clock.advance(61)
    assert request_token(server.url, ORG_KEY).status_code == 200


def test_deleted_voucher_leaves_a_stale_link(api, today):
    file_guid = api.upload().json()["FileGuid"]
    guid = api.create(cash_body(today, FileGuid=file_guid)).json()["Guid"]
    timestamp = api.voucher(guid)["Timestamp"]
    assert api.call("DELETE", f"/vouchers/purchase/{guid}", json={"Timestamp": timestamp}).status_code == 204
    linked = api.get("/files", params={"fields": "Linked"}).json()["Collection"][0]["Linked"]
    assert linked[0]["Guid"] == guid
    assert api.create(cash_body(today, FileGuid=file_guid)).status_code == 400  # re-upload instead


# ---- purchase vouchers ---------------------------------------------------------------------------


def test_cash_voucher_create_and_read(api, today):
    lines = [
        {"Description": "Kontorartikler", "AccountNumber": 7200, "VatCode": "I25", "Amount": 125.00},
        {"Description": "Frokost med kunde", "AccountNumber": 4140, "VatCode": "REP", "Amount": 1000},
        {"Description": "Software EU", "AccountNumber": 2100, "VatCode": "IEUY", "Amount": "80.50"},
        {"Description": "Porto", "AccountNumber": 7220, "VatCode": None, "Amount": 10},
    ]
    response = api.create(cash_body(today, Lines=lines))
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"Guid", "Timestamp"}
    assert re.fullmatch(r"[0-9A-F]{16}", created["Timestamp"])
    voucher = api.voucher(created["Guid"])
    assert voucher["Guid"] == created["Guid"] and voucher["Timestamp"] == created["Timestamp"]
    assert voucher["Status"] == "Draft"
    assert voucher["VoucherNumber"] is None
    assert voucher["PurchaseType"] == "cash"
    assert voucher["PaymentDate"] == voucher["VoucherDate"] == today.isoformat()
    assert voucher["RegionKey"] == "DK" and voucher["DepositAccountNumber"] == 55000
    assert voucher["ContactGuid"] is None and voucher["CurrencyKey"] == "DKK"
    assert voucher["ExternalReference"] == "kontera:receipt:1"
    office, rep, eu, postage = voucher["Lines"]
    assert (office["AmountExclVatValue"], office["VatAmountValue"], office["AmountInclVatValue"]) == (
        100,
        25,
        125,
    )
    assert (rep["AmountExclVatValue"], rep["VatAmountValue"]) == (950, 50)  # 25 % of the VAT is deductible
    assert (eu["AmountExclVatValue"], eu["VatAmountValue"], eu["AmountInclVatValue"]) == (80.5, 0, 80.5)
    assert postage["VatCode"] is None and postage["VatAmountValue"] == 0
    assert office["AccountNumber"] == 7200 and office["Description"] == "Kontorartikler"
    assert voucher["VoucherTotals"] == [
        {"Type": "SubTotalWithoutVat", "Label": "Subtotal ekskl. moms", "Total": 1140.5},
        {"Type": "Total", "Label": "Total DKK", "Total": 1215.5},
    ]


def test_booking_a_cash_voucher_shows_paid_and_a_number(api, sandbox, today):
    sandbox.set_book_answer(ORG, "read_model")
    guid = api.create(cash_body(today)).json()["Guid"]
    before = api.voucher(guid)["Timestamp"]
    response = api.book(guid)
    assert response.status_code == 200
    voucher = api.voucher(guid)
    assert voucher["Status"] == "Paid"
    assert voucher["VoucherNumber"] == 1
    assert voucher["Timestamp"] != before
    # Switched to the read model, the answer is the booked voucher (as API-BOOK documents for invoices' book).
    assert response.json() == voucher
    again = api.book(guid)
    assert_validation(again, "Status")


def test_book_answers_only_guid_and_timestamp_by_default(api, sandbox, today):
    """Undocumented for purchase vouchers: the stricter reading, no number (a client reads it after booking)."""
    guid = api.create(cash_body(today)).json()["Guid"]
    response = api.book(guid)
    assert response.status_code == 200
    voucher = api.voucher(guid)
    assert voucher["VoucherNumber"] == 1
    assert response.json() == {"Guid": guid, "Timestamp": voucher["Timestamp"]}


def test_create_answers_guid_and_timestamp_unless_switched_to_the_read_model(api, sandbox, today):
    created = api.create(cash_body(today))
    assert created.status_code == 201
    guid = created.json()["Guid"]
    assert created.json() == {"Guid": guid, "Timestamp": api.voucher(guid)["Timestamp"]}
    sandbox.set_create_answer(ORG, "read_model")
    created = api.create(cash_body(today))
    assert created.status_code == 201
    assert created.json() == api.voucher(created.json()["Guid"])
    with pytest.raises(ValueError):
        sandbox.set_create_answer(ORG, "everything")
    with pytest.raises(ValueError):
        sandbox.set_book_answer(ORG, "everything")


def test_credit_voucher_create_and_book(api, today):
    contact = api.contact()
    guid = api.create(credit_body(today, contact, CurrencyKey="EUR")).json()["Guid"]
    draft = api.voucher(guid)
    assert draft["Status"] == "Draft" and draft["ContactGuid"] == contact
    assert draft["RegionKey"] is None and draft["DepositAccountNumber"] is None
    assert draft["VoucherTotals"][1]["Label"] == "Total EUR"
    assert api.book(guid, Number=42).status_code == 200
    booked = api.voucher(guid)
    assert booked["Status"] == "Booked"
    assert booked["VoucherNumber"] == 42
    assert booked["PaymentDate"] == (today + timedelta(days=30)).isoformat()
    other = api.create(credit_body(today, contact)).json()["Guid"]
    assert_validation(api.book(other, Number=42), "Number", "already taken")
    assert api.book(other).status_code == 200
    assert api.voucher(other)["VoucherNumber"] == 1


def test_booked_credit_voucher_past_its_payment_date_is_overdue(api, today):
    contact = api.contact()
    year = today.year - 1
    body = credit_body(today, contact, VoucherDate=f"{year}-01-02", PaymentDate=f"{year}-01-16")
    guid = api.create(body).json()["Guid"]
    assert api.book(guid).status_code == 200
    assert api.voucher(guid)["Status"] == "Overdue"


def test_property_names_bind_case_insensitively(api, today):
    body = {
        "purchasetype": "cash",
        "VOUCHERDATE": today.isoformat(),
        "depositAccountNumber": 55040,
        "lines": [{"accountnumber": 7200, "vatcode": "I25", "AMOUNT": 50}],
    }
    response = api.create(body)
    assert response.status_code == 201, response.text
    voucher = api.voucher(response.json()["Guid"])
    assert voucher["DepositAccountNumber"] == 55040
    assert voucher["VoucherTotals"][1]["Total"] == 50


def test_unknown_line_field_gives_a_zero_total_voucher(api, today):
    # the MANYFOLD trap: read-model names are ignored on write, Amount binds to 0, Dinero accepts it
    lines = [
        {"Description": "Forkert felt", "AccountNumber": 7200, "VatCode": "I25", "AmountInclVatValue": 125}
    ]
    response = api.create(cash_body(today, Lines=lines, Notes="also ignored"))
    assert response.status_code == 201
    voucher = api.voucher(response.json()["Guid"])
    assert voucher["Lines"][0]["AmountInclVatValue"] == 0
    assert voucher["VoucherTotals"][1]["Total"] == 0


def test_vat_code_none_and_null_mean_no_vat(api, today):
    lines = [
        {"AccountNumber": 7160, "VatCode": "none", "Amount": 300},
        {"AccountNumber": 7220, "Amount": 20},
    ]
    voucher = api.voucher(api.create(cash_body(today, Lines=lines)).json()["Guid"])
    assert [line["VatCode"] for line in voucher["Lines"]] == [None, None]
    assert voucher["VoucherTotals"][0]["Total"] == 320


# ---- validation (each: 400 code 42, nothing stored) ----------------------------------------------


def test_purchase_type_missing(api, sandbox, today):
    body = cash_body(today)
    del body["PurchaseType"]
    assert_refused_and_nothing_stored(sandbox, api.create(body), "PurchaseType")


def test_purchase_type_must_be_cash_or_credit(api, sandbox, today):
    assert_refused_and_nothing_stored(
        sandbox, api.create(cash_body(today, PurchaseType="Kontant")), "PurchaseType"
    )


def test_cash_with_payment_date(api, sandbox, today):
    response = api.create(cash_body(today, PaymentDate=today.isoformat()))
    body = assert_refused_and_nothing_stored(sandbox, response, "PaymentDate")
    assert body["validationErrors"]["PaymentDate"] == "PaymentDate should not be set on cash purchases"


def test_cash_with_currency_key(api, sandbox, today):
    assert_refused_and_nothing_stored(sandbox, api.create(cash_body(today, CurrencyKey="DKK")), "CurrencyKey")


def test_cash_without_deposit_account(api, sandbox, today):
    body = cash_body(today)
    del body["DepositAccountNumber"]
    assert_refused_and_nothing_stored(sandbox, api.create(body), "DepositAccountNumber")


def test_deposit_account_must_be_a_deposit_account(api, sandbox, today):
    response = api.create(cash_body(today, DepositAccountNumber=63100))
    assert_refused_and_nothing_stored(sandbox, response, "DepositAccountNumber", "not a deposit account")


def test_credit_without_contact_is_created_but_cannot_be_booked(api, sandbox, today):
    response = api.create(credit_body(today, None))
    assert response.status_code == 201
    guid = response.json()["Guid"]
    assert_validation(api.book(guid), "ContactGuid")
    assert api.voucher(guid)["Status"] == "Draft"


def test_unknown_contact_guid(api, sandbox, today):
    assert_refused_and_nothing_stored(
        sandbox, api.create(credit_body(today, str(uuid.uuid4()))), "ContactGuid"
    )


def test_line_amount_null_is_refused(api, sandbox, today):
    lines = [{"AccountNumber": 7200, "VatCode": "I25", "Amount": None}]
    assert_refused_and_nothing_stored(sandbox, api.create(cash_body(today, Lines=lines)), "Lines[0].Amount")


def test_negative_line_amount_is_refused(api, sandbox, today):
    lines = [{"AccountNumber": 7200, "VatCode": "I25", "Amount": -125}]
    assert_refused_and_nothing_stored(sandbox, api.create(cash_body(today, Lines=lines)), "Lines[0].Amount")


def test_balance_account_on_a_line_is_refused(api, sandbox, today):
    lines = [
        {"AccountNumber": 7200, "VatCode": "I25", "Amount": 100},
        {"AccountNumber": 51020, "VatCode": "I25", "Amount": 100},
    ]
    response = api.create(cash_body(today, Lines=lines))
    body = assert_refused_and_nothing_stored(sandbox, response, "Lines[1].AccountNumber", "51020")
    assert "Lines[0].AccountNumber" not in body["validationErrors"]


def test_unknown_vat_code_is_refused(api, sandbox, today):
    lines = [{"AccountNumber": 7200, "VatCode": "IY25", "Amount": 100}]
    assert_refused_and_nothing_stored(sandbox, api.create(cash_body(today, Lines=lines)), "Lines[0].VatCode")


def test_sales_vat_code_is_refused_on_a_purchase(api, sandbox, today):
    lines = [{"AccountNumber": 7200, "VatCode": "U25", "Amount": 100}]
    assert_refused_and_nothing_stored(sandbox, api.create(cash_body(today, Lines=lines)), "Lines[0].VatCode")


def test_voucher_date_outside_every_accounting_year(api, sandbox, today):
    response = api.create(cash_body(today, VoucherDate=f"{today.year + 1}-01-01"))
    assert_refused_and_nothing_stored(sandbox, response, "VoucherDate", "accounting year")
    assert api.create(cash_body(today, VoucherDate=f"{today.year - 2}-12-31")).status_code == 400
    sandbox.add_accounting_year(ORG, today.year + 1)
    assert api.create(cash_body(today, VoucherDate=f"{today.year + 1}-01-01")).status_code == 201


def test_voucher_date_missing(api, sandbox, today):
    body = cash_body(today)
    del body["VoucherDate"]
    assert_refused_and_nothing_stored(sandbox, api.create(body), "VoucherDate")


def test_booking_a_credit_voucher_without_payment_date(api, today):
    body = credit_body(today, api.contact())
    del body["PaymentDate"]
    guid = api.create(body).json()["Guid"]
    assert_validation(api.book(guid), "PaymentDate")
    assert api.voucher(guid)["VoucherNumber"] is None


def test_external_reference_over_128_characters(api, sandbox, today):
    response = api.create(cash_body(today, ExternalReference="x" * 129))
    assert_refused_and_nothing_stored(sandbox, response, "ExternalReference")
    assert api.create(cash_body(today, ExternalReference="x" * 128)).status_code == 201


def test_every_error_is_reported_at_once(api, sandbox, today):
    body = {"PurchaseType": "cash", "PaymentDate": today.isoformat(), "Lines": [{"AccountNumber": 55000}]}
    errors = assert_refused_and_nothing_stored(sandbox, api.create(body), "PaymentDate")["validationErrors"]
    assert {"VoucherDate", "DepositAccountNumber", "Lines[0].AccountNumber"} <= set(errors)


def test_old_create_versions_answer_brownout(api, sandbox, today):
    for version in ("v1", "v1.1"):
        response = api.post("/vouchers/purchase", version=version, json=cash_body(today))
        assert response.status_code == 480
    assert sandbox.organization(ORG).purchase_vouchers == {}


def test_unknown_voucher_guid_is_404(api):
    response = api.get(f"/vouchers/purchase/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == 40
    assert api.post(f"/vouchers/purchase/{uuid.uuid4()}/book", json={"Timestamp": "0"}).status_code == 404


# ---- update, delete, concurrency ----------------------------------------------------------------


def put_body(voucher: dict, **overrides) -> dict:
    body = {
        "Timestamp": voucher["Timestamp"],
        "PurchaseType": voucher["PurchaseType"],
        "VoucherDate": voucher["VoucherDate"],
        "DepositAccountNumber": voucher["DepositAccountNumber"],
        "ContactGuid": overrides.pop("ContactGuid"),
        "Lines": [{"Description": "Rettet", "AccountNumber": 7300, "VatCode": "I25", "Amount": 250}],
    }
    body.update(overrides)
    return body


def test_put_with_current_timestamp_replaces_the_voucher(api, today):
    contact = api.contact()
    guid = api.create(cash_body(today)).json()["Guid"]
    voucher = api.voucher(guid)
    response = api.call(
        "PUT", f"/vouchers/purchase/{guid}", version="v1.1", json=put_body(voucher, ContactGuid=contact)
    )
    assert response.status_code == 200
    assert response.json()["Timestamp"] != voucher["Timestamp"]
    updated = api.voucher(guid)
    assert updated["Timestamp"] == response.json()["Timestamp"]
    assert updated["Lines"][0]["AccountNumber"] == 7300
    assert updated["VoucherTotals"][1]["Total"] == 250
    assert updated["ExternalReference"] is None  # full replacement, not a patch
    assert updated["ContactGuid"] is None  # cash purchases carry no contact


def test_put_requires_contact_guid(api, today):
    guid = api.create(cash_body(today)).json()["Guid"]
    voucher = api.voucher(guid)
    response = api.call(
        "PUT", f"/vouchers/purchase/{guid}", version="v1.1", json=put_body(voucher, ContactGuid=None)
    )
    assert_validation(response, "ContactGuid")
    assert api.voucher(guid)["Timestamp"] == voucher["Timestamp"]


def test_stale_timestamp_is_400_code_58(api, today):
    contact = api.contact()
    guid = api.create(cash_body(today)).json()["Guid"]
    stale = api.voucher(guid)
    fresh = api.call(
        "PUT", f"/vouchers/purchase/{guid}", version="v1.1", json=put_body(stale, ContactGuid=contact)
    )
    assert fresh.status_code == 200
    for method, path, version, body in (
        ("PUT", f"/vouchers/purchase/{guid}", "v1.1", put_body(stale, ContactGuid=contact)),
        ("DELETE", f"/vouchers/purchase/{guid}", "v1", {"Timestamp": stale["Timestamp"]}),
        ("POST", f"/vouchers/purchase/{guid}/book", "v1", {"Timestamp": stale["Timestamp"]}),
    ):
        response = api.call(method, path, version=version, json=body)
        assert response.status_code == 400, (method, response.text)
        assert response.json()["code"] == 58
    assert api.voucher(guid)["Status"] == "Draft"


def test_put_and_delete_on_a_booked_voucher_are_refused(api, sandbox, today):
    contact = api.contact()
    guid = api.create(cash_body(today)).json()["Guid"]
    assert api.book(guid).status_code == 200
    booked = api.voucher(guid)
    put = api.call(
        "PUT", f"/vouchers/purchase/{guid}", version="v1.1", json=put_body(booked, ContactGuid=contact)
    )
    assert_validation(put, "Status", "booked")
    delete = api.call("DELETE", f"/vouchers/purchase/{guid}", json={"Timestamp": booked["Timestamp"]})
    assert_validation(delete, "Status", "booked")
    assert api.voucher(guid) == booked
    sandbox.set_allow_edit_booked(ORG, True)
    put = api.call(
        "PUT", f"/vouchers/purchase/{guid}", version="v1.1", json=put_body(booked, ContactGuid=contact)
    )
    assert put.status_code == 200
    assert api.voucher(guid)["VoucherNumber"] == booked["VoucherNumber"]


def test_delete_needs_the_timestamp_in_the_body(api, today):
    guid = api.create(cash_body(today)).json()["Guid"]
    response = api.call("DELETE", f"/vouchers/purchase/{guid}")
    assert_validation(response, "Timestamp")
    timestamp = api.voucher(guid)["Timestamp"]
    response = api.call("DELETE", f"/vouchers/purchase/{guid}", json={"timestamp": timestamp})
    assert response.status_code == 204
    assert api.get(f"/vouchers/purchase/{guid}").status_code == 404


# ---- credit notes --------------------------------------------------------------------------------


def test_credit_note_for_a_booked_voucher(api, today):
    contact = api.contact()
    guid = api.create(credit_body(today, contact)).json()["Guid"]
    note_body = {
        "Date": today.isoformat(),
        "ContactGuid": contact,
        "CreditNoteFor": guid,
        "Lines": [{"Description": "Kreditering", "AccountNumber": 7300, "VatCode": "I25", "Amount": 100}],
    }
    draft = api.post("/vouchers/purchase/creditnotes", json=note_body)
    assert_validation(draft, "CreditNoteFor", "booked")
    assert api.book(guid).status_code == 200
    response = api.post("/vouchers/purchase/creditnotes", json=note_body)
    assert response.status_code == 201
    note_guid = response.json()["Guid"]
    note = api.get(f"/vouchers/purchase/creditnotes/{note_guid}").json()
    assert note["Status"] == "Draft" and note["CreditNoteFor"] == guid
    assert (note["Lines"][0]["AmountExclVatValue"], note["Lines"][0]["VatAmountValue"]) == (80, 20)
    booked = api.post(
        f"/vouchers/purchase/creditnotes/{note_guid}/book", json={"Timestamp": note["Timestamp"]}
    )
    assert booked.status_code == 200
    note = api.get(f"/vouchers/purchase/creditnotes/{note_guid}").json()
    assert note["Status"] == "Booked" and note["VoucherNumber"] == 2
    too_much = {**note_body, "Lines": [{"AccountNumber": 7300, "VatCode": "I25", "Amount": 200}]}
    assert_validation(api.post("/vouchers/purchase/creditnotes", json=too_much), "Lines")


def test_generate_credit_note_from_a_booked_voucher(api, today):
    guid = api.create(cash_body(today)).json()["Guid"]
    assert api.book(guid).status_code == 200
    voucher = api.voucher(guid)
    stale = api.post(
        f"/vouchers/purchase/{guid}/generate-creditnote",
        json={"Timestamp": {"Timestamp": "0000000000000001"}, "VoucherDate": today.isoformat()},
    )
    assert stale.status_code == 400 and stale.json()["code"] == 58
    response = api.post(
        f"/vouchers/purchase/{guid}/generate-creditnote",
        json={"Timestamp": {"Timestamp": voucher["Timestamp"]}, "VoucherDate": today.isoformat()},
    )
    assert response.status_code == 201
    note = api.get(f"/vouchers/purchase/creditnotes/{response.json()['Guid']}").json()
    assert note["VoucherTotals"][1]["Total"] == voucher["VoucherTotals"][1]["Total"] == 125


# ---- rate limit ----------------------------------------------------------------------------------


def test_rate_limit_is_100_per_minute_then_429_text(api, sandbox, server):
    session = requests.Session()
    url, headers = f"{server.url}/v1/{ORG}/vatTypes", api._h()
    statuses = [session.get(url, headers=headers, timeout=10).status_code for _ in range(100)]
    assert statuses == [200] * 100
    assert request_token(server.url, ORG_KEY).status_code == 200  # token requests are not counted
    response = session.get(url, headers=headers, timeout=10)
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "API calls quota exceeded! maximum admitted 100 per 1m."
    assert "Retry-After" not in response.headers
    assert Dinero(server.url, ORG_B, ORG_B_KEY).get("/vatTypes").status_code == 200  # per organisation
    assert sandbox.log[-1].status == 200 and any(entry.status == 429 for entry in sandbox.log)
    sandbox.clock.advance(60)
    assert session.get(url, headers=headers, timeout=10).status_code == 200


def test_rate_limit_is_configurable_per_organisation(api, sandbox):
    sandbox.set_rate_limit(ORG, 3)
    assert [api.get("/vatTypes").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert api.get("/vatTypes").text == "API calls quota exceeded! maximum admitted 3 per 1m."


# ---- faults --------------------------------------------------------------------------------------


def test_fault_status_answers_without_processing(api, sandbox, today):
    sandbox.faults.inject(
        "status", method="POST", path_contains="/vouchers/purchase", status=503, body="Service Unavailable"
    )
    response = api.create(cash_body(today))
    assert response.status_code == 503
    assert sandbox.organization(ORG).purchase_vouchers == {}
    assert api.create(cash_body(today)).status_code == 201


def test_drop_after_commit_creates_the_voucher_but_the_client_sees_no_answer(api, sandbox, today):
    sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/vouchers/purchase")
    with pytest.raises(requests.ConnectionError):
        api.create(cash_body(today, ExternalReference="kontera:uncertain"))
    vouchers = list(sandbox.organization(ORG).purchase_vouchers.values())
    assert [v["ExternalReference"] for v in vouchers] == ["kontera:uncertain"]


def test_drop_before_does_not_create_the_voucher(api, sandbox, today):
    sandbox.faults.inject("drop_before", method="POST", path_contains="/vouchers/purchase")
    with pytest.raises(requests.ConnectionError):
        api.create(cash_body(today))
    assert sandbox.organization(ORG).purchase_vouchers == {}
    assert sandbox.log[-1].status == 0


# ---- state ---------------------------------------------------------------------------------------


def test_dump_and_load_round_trip(api, sandbox, server, today):
    contact = api.contact(VatNumber="DK12345678")
    file_guid = api.upload().json()["FileGuid"]
    guid = api.create(credit_body(today, contact, FileGuid=file_guid)).json()["Guid"]
    assert api.book(guid).status_code == 200
    state = json.loads(json.dumps(sandbox.dump_state()))
    copy = DineroSandbox()
    copy.load_state(state)
    assert copy.dump_state() == state
    assert copy.get_purchase_voucher(ORG, guid) == api.voucher(guid)
    other = ServerThread(copy).start()
    try:
        again = Dinero(other.url, ORG, token=api.token)  # tokens survive too
        assert again.voucher(guid)["VoucherNumber"] == 1
        assert again.get(f"/contacts/{contact}").json()["VatNumber"] == "DK12345678"
        second = again.create(credit_body(today, contact)).json()["Guid"]
        assert again.book(second).status_code == 200
        assert again.voucher(second)["VoucherNumber"] == 2
    finally:
        other.stop()


def test_reset_forgets_everything(api, sandbox, today):
    api.create(cash_body(today))
    sandbox.reset()
    assert sandbox.dump_state()["organizations"] == []
    assert sandbox.log == []
    assert api.get("/vatTypes").status_code == 401


def test_seed_demo_and_mounting_under_a_prefix(sandbox):
    sandbox.reset()
    demo = sandbox.seed_demo()
    assert sandbox.seed_demo() == demo  # idempotent
    assert demo["client_id"] == "kontera-demo" and demo["client_secret"] == "kontera-demo-secret"
    pro, free = demo["organizations"]
    assert (pro["id"], pro["api_key"], pro["is_pro"]) == (123456, "demo-dinero-api-key", True)
    srv = ServerThread(mount({"/dinero": sandbox})).start()
    try:
        root = f"{srv.url}/dinero"
        token = requests.post(
            f"{root}/dineroapi/oauth/token",
            auth=(demo["client_id"], demo["client_secret"]),
            data={
                "grant_type": "password",
                "scope": "read write",
                "username": pro["api_key"],
                "password": pro["api_key"],
            },
            timeout=10,
        ).json()["access_token"]
        client = Dinero(root, pro["id"], token=token)
        contacts = client.get("/contacts", params={"queryFilter": "VatNumber eq 'DK12345678'"}).json()
        assert [c["Name"] for c in contacts["Collection"]] == ["Kontorland A/S"]
        assert sandbox.log[-1].path == f"/v1/{pro['id']}/contacts"
        free_token = request_token(root, free["api_key"], client=(demo["client_id"], demo["client_secret"]))
        refused = Dinero(root, free["id"], token=free_token.json()["access_token"]).get("/accounts/entry")
        assert refused.status_code == 403 and refused.json()["code"] == 90
    finally:
        srv.stop()
