"""Every request Kontera makes to Dinero, against one example from Dinero's documentation or a
published client's recorded exchange or fixture (the source is named with each example).

For each: our client builds the same method, path, query, headers and body keys, and parses the
documented response. Sources (see also shared/reference/dinero-api.md):
  API-DOCS  https://api.dinero.dk/docs (personal integration token request, curl example)
  API-V1    https://api.dinero.dk/v1/docs (Files; GET-v1-organizationId-vouchers-purchase-guid;
            POST-v1-organizationId-invoices-guid-book for the Timestamp body)
  DEV-BP    https://developer.dinero.dk/documentation/best-practices (file upload example)
  CLI       repository peterbb148/dinero-cli: docs/api/endpoint-matrix.json and .md (extracted from
            https://api.dinero.dk/openapi/v1/swagger.json), docs/resources.md, src/dinero_cli/commands/*.py
  APAQ      repository Apaq/dinero-java, src/test/resources/** (response fixtures)
  HEXIO     repository HexioDK/Hexio.DineroClient, Hexio.DineroClient/IDineroClient.cs and Models/**
  MANYFOLD  repository manyfold-dk/manyfold-platform, apps/accounting-mcp/…/integrations/dinero/
            DineroWriter.java, DineroWriterTest.java, mcp/IntegrationWriteMcpTool.java
  DINERO-GO repository eikster-dk/dinero-go, vatTypes/get.go
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal

import pytest

from integrations.base import VoucherDTO, VoucherRowDTO
from integrations.dinero.client import DineroClient
from integrations.dinero.connector import ENTRY_ACCOUNT_FIELDS, DineroConnector
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db

ORG = "123456"
KEY = "demo-dinero-api-key"
CLIENT = ("kontera-client", "kontera-secret")
JSON = {"Content-Type": "application/json"}
GUID = "4f0e8e40-7c5b-4a8b-9d3e-1b2c3d4e5f60"
FILE_GUID = "pa2halkrpgo3oho45hj0dlkfrro4ilf"  # API-GET-PV sample: FileGuid is not a UUID
TIMESTAMP = "00000000020A5EA8"  # API-GET-PV sample
TOKEN = {  # the token response: {access_token, token_type, expires_in, refresh_token ""} (dinero-api.md §1.1)
    "access_token": "ACCESS", "token_type": "Bearer", "expires_in": 3600, "refresh_token": ""}


@pytest.fixture
def dinero(settings, db, wire):
    settings.DINERO_API_URL = "https://api.dinero.dk"
    settings.DINERO_AUTH_URL = "https://authz.dinero.dk/dineroapi/oauth/token"
    settings.DINERO_CLIENT_ID, settings.DINERO_CLIENT_SECRET = CLIENT
    integration = IntegrationFactory(system="dinero", settings={"organization_id": ORG, "book_vouchers": True},
                                     credentials={"api_key": KEY})
    wire.answer("POST", r"^/dineroapi/oauth/token$", {"headers": JSON, "body": TOKEN})
    return DineroConnector(integration, sleep=lambda seconds: None)


def assert_api_headers(captured, *, body: bool = False):
    assert captured.headers["Authorization"] == "Bearer ACCESS"
    assert captured.headers["Accept"] == "application/json"
    if body:
        assert captured.headers["Content-Type"] == "application/json"


def test_token(dinero, wire):
    # [API-DOCS] POST https://authz.dinero.dk/dineroapi/oauth/token, Authorization: Basic
    # base64(client_id:client_secret), form grant_type=password&scope=read write&username={API key}
    # &password={API key}
    assert dinero.client.access_token() == "ACCESS"
    sent = wire.last("POST", "/dineroapi/oauth/token")
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(":".join(CLIENT).encode()).decode()
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.form() == {"grant_type": "password", "scope": "read write", "username": KEY, "password": KEY}


def test_organisations_and_the_chart(dinero, wire):
    # [CLI] GET /v1/organizations, fields= (default id,name,isPro): a bare list
    wire.answer("GET", r"^/v1/organizations$", {"headers": JSON, "body": [{"Id": 123456, "Name": "Demo ApS",
                                                                             "IsPro": True}]})
    # [APAQ] dk/apaq/dinero/repository/accounts_list.json: a bare list, as recorded (default fields)
    wire.answer("GET", r"/accounts/entry$", {"headers": JSON, "body": [
        {"AccountNumber": 64000, "Name": "Salgsmoms (udgående moms)"},
        {"AccountNumber": 64060, "Name": "Købsmoms (indgående moms)"}]})
    # [CLI] accounts/purchase and accounts/deposit (docs/resources.md: --fields AccountNumber,Name,IsDefault,IsHidden)
    wire.answer("GET", r"/accounts/purchase$", {"headers": JSON, "body": [{"AccountNumber": 7200}]})
    wire.answer("GET", r"/accounts/deposit$", {"headers": JSON, "body": [
        {"AccountNumber": 55000, "Name": "Bank", "IsDefault": True, "IsHidden": False}]})
    # [DINERO-GO] vatTypes/get.go: VatCode, Name, VatRate (a bare list, no fields=)
    wire.answer("GET", r"/vatTypes$", {"headers": JSON, "body": [{"VatCode": "I25", "Name": "Købsmoms 25%",
                                                                  "VatRate": 0.25}]})
    # [CLI] commands/accounting_years.py: GET /v1/{org}/accountingyears, no paging, no filters.
    # The item's property names are not in any source we found: ASSUMED Name, FromDate, ToDate.
    wire.answer("GET", r"/accountingyears$", {"headers": JSON, "body": [
        {"Name": "2026", "FromDate": "2026-01-01", "ToDate": "2026-12-31"}]})
    data = dinero.import_master_data()
    paths = {
        "/v1/organizations": {"fields": "Id,Name,IsPro"},
        f"/v1/{ORG}/accounts/entry": {"fields": ENTRY_ACCOUNT_FIELDS},
        f"/v1/{ORG}/accounts/purchase": {"fields": "AccountNumber"},
        f"/v1/{ORG}/accounts/deposit": {"fields": "AccountNumber,Name,IsDefault,IsHidden"},
        f"/v1/{ORG}/vatTypes": {},
        f"/v1/{ORG}/accountingyears": {},
    }
    for path, query in paths.items():
        sent = wire.last("GET", path, exact=True)
        assert sent.query == query, path
        assert_api_headers(sent)
    numbers = {a.number: a for a in data.accounts}
    assert numbers[64060].name == "Købsmoms (indgående moms)" and numbers[64060].is_balance
    assert numbers[55000].is_deposit
    assert [(v.code, v.rate) for v in data.vat_codes] == [("I25", Decimal("25.00"))]
    assert [(y.start, y.end, y.remote_id) for y in data.financial_years] == [
        (dt.date(2026, 1, 1), dt.date(2026, 12, 31), "2026")]
    assert data.company_info["name"] == "Demo ApS"


def _invoice(**kw):
    fields = dict(reference="KONTERA-9", kind="supplier_invoice", date=dt.date(2026, 3, 14), description="Faktura",
                  currency="DKK", rows=(VoucherRowDTO(account=7200, debit=Decimal("125.00"), vat_code="I25",
                                                      text="Kontorartikler"),
                                        VoucherRowDTO(account=63000, credit=Decimal("125.00"))),
                  extra={"supplier": {"name": "Børge Lund", "vat": "DK12345678"}, "payment_date": "2026-04-13",
                         "document_reference": "H-1"})
    fields.update(kw)
    return VoucherDTO(**fields)


READ_MODEL = {  # [API-V1] GET-v1-organizationId-vouchers-purchase-guid fields; VoucherTotals per MANYFOLD
    "Guid": GUID, "Timestamp": TIMESTAMP, "Status": "Draft", "FileGuid": FILE_GUID, "VoucherNumber": None,
    "VoucherDate": "2026-03-14", "PaymentDate": "2026-04-13", "RegionKey": None, "PurchaseType": "credit",
    "ContactGuid": "716a3105-e8fd-4fdd-a886-0490b047986f", "ExternalReference": "KONTERA-9:H-1",
    "DepositAccountNumber": None,
    "Lines": [{"Description": "Kontorartikler", "VatCode": "I25", "AccountNumber": 7200,
               "AmountExclVatValue": 100.0, "AmountInclVatValue": 125.0, "VatAmountValue": 25.0}],
    "VoucherTotals": [{"Type": "SubTotalWithoutVat", "Total": 100.0}, {"Type": "Total", "Label": "Total DKK",
                                                                        "Total": 125.0}],
}


def test_create_a_purchase_voucher(dinero, wire):
    # [DEV-BP] POST /v1/{org}/files?fileName=…, multipart/form-data (part "file" as MANYFOLD sends it)
    # -> {"FileGuid": …} (HEXIO FileUploadedResponse.cs)
    wire.answer("POST", r"/files$", {"headers": JSON, "body": {"FileGuid": FILE_GUID}})
    # [APAQ] com/previsto/dinero/repository/contacts_list.json: the contact found by VAT number
    wire.answer("GET", r"/contacts$", {"headers": JSON, "body": {"Collection": [
        {"ContactGuid": "716a3105-e8fd-4fdd-a886-0490b047986f", "Name": "Børge Lund", "VatNumber": "DK12345678"}],
        "Pagination": {"MaxPageSizeAllowed": 1000, "PageSize": 10, "Result": 1, "ResultWithoutFilter": 1,
                       "Page": 0}}})
    # [CLI] POST /v1.2/{org}/vouchers/purchase, PurchaseVoucherCreateModelV2; MANYFOLD reads Guid
    wire.answer("POST", r"^/v1\.2/\d+/vouchers/purchase$", {"status": 201, "headers": JSON,
                                                             "body": {"Guid": GUID, "Timestamp": TIMESTAMP}})
    wire.answer("GET", rf"/vouchers/purchase/{GUID}$", {"headers": JSON, "body": READ_MODEL})
    # [API-V1] book: {"Timestamp": …} (BookModel; Number optional)
    wire.answer("POST", rf"/vouchers/purchase/{GUID}/book$", {"headers": JSON, "body": {"Guid": GUID,
                                                                                      "Timestamp": "1"}})
    wire.answer("GET", rf"/vouchers/purchase/{GUID}$", {"headers": JSON, "body": {
        **READ_MODEL, "Status": "Booked", "VoucherNumber": 7, "Timestamp": "00000000020A5EB0"}})
    remote = dinero.post_voucher(_invoice())

    upload = wire.last("POST", "/files")
    assert upload.path == f"/v1/{ORG}/files" and upload.query == {"fileName": "KONTERA-9-cover-bilag.pdf"}
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="file"' in upload.body
    contacts = wire.last("GET", "/contacts")
    assert contacts.query == {"queryFilter": "VatNumber eq 'DK12345678'", "fields": "ContactGuid,Name,VatNumber",
                              "pageSize": "10"}
    create = [c for c in wire.captured if c.path == f"/v1.2/{ORG}/vouchers/purchase"][-1]
    assert_api_headers(create, body=True)
    assert set(create.json()) == {"PurchaseType", "VoucherDate", "PaymentDate", "ContactGuid", "FileGuid",
                                  "ExternalReference", "Lines"}
    assert set(create.json()["Lines"][0]) == {"Description", "AccountNumber", "VatCode", "Amount"}
    book = wire.last("POST", "/book")
    assert book.path == f"/v1/{ORG}/vouchers/purchase/{GUID}/book" and book.json() == {"Timestamp": TIMESTAMP}
    assert (remote.remote_id, remote.number, remote.status, remote.total) == (GUID, "7", "Booked", Decimal("125.00"))


def test_update_a_draft(dinero, wire):
    # [CLI] PUT /v1.1/{org}/vouchers/purchase/{guid}, PurchaseVoucherUpdateModel: ContactGuid, Lines,
    # PurchaseType, Timestamp, VoucherDate required (a full replacement)
    dinero.integration.settings = {**dinero.integration.settings, "book_vouchers": False}
    wire.answer("POST", r"/files$", {"headers": JSON, "body": {"FileGuid": FILE_GUID}})
    wire.answer("GET", r"/contacts$", {"headers": JSON, "body": {"Collection": [
        {"ContactGuid": "716a3105-e8fd-4fdd-a886-0490b047986f"}], "Pagination": {"Result": 1}}})
    wire.answer("PUT", rf"^/v1\.1/\d+/vouchers/purchase/{GUID}$", {"headers": JSON, "body": {"Guid": GUID}})
    wire.answer("GET", rf"/vouchers/purchase/{GUID}$", {"headers": JSON, "body": READ_MODEL})
    from integrations.base import RemoteVoucher

    dinero.update_voucher(_invoice(), RemoteVoucher(remote_id=GUID, timestamp=TIMESTAMP, status="Draft"))
    put = wire.last("PUT", "/vouchers/purchase")
    assert put.path == f"/v1.1/{ORG}/vouchers/purchase/{GUID}"
    assert_api_headers(put, body=True)
    assert {"ContactGuid", "Lines", "PurchaseType", "Timestamp", "VoucherDate"} <= set(put.json())
    assert put.json()["Timestamp"] == TIMESTAMP


def test_delete_a_draft_after_a_total_mismatch(dinero, wire):
    # [MANYFOLD] DELETE /v1/{org}/vouchers/purchase/{guid} with {"Timestamp": …} in the body
    # (TimestampObject; "an empty-body DELETE is rejected with 400")
    wire.answer("POST", r"/files$", {"headers": JSON, "body": {"FileGuid": FILE_GUID}})
    wire.answer("GET", r"/contacts$", {"headers": JSON, "body": {"Collection": [
        {"ContactGuid": "716a3105-e8fd-4fdd-a886-0490b047986f"}], "Pagination": {"Result": 1}}})
    wire.answer("POST", r"^/v1\.2/\d+/vouchers/purchase$", {"status": 201, "headers": JSON, "body": {"Guid": GUID}})
    zero = {**READ_MODEL, "VoucherTotals": [{"Type": "Total", "Total": 0.0}]}  # Dinero ignored the lines
    wire.answer("GET", rf"/vouchers/purchase/{GUID}$", {"headers": JSON, "body": zero})
    wire.answer("DELETE", rf"/vouchers/purchase/{GUID}$", {"status": 204, "headers": {}, "body": None})
    from integrations.base import RemoteValidationError

    with pytest.raises(RemoteValidationError):
        dinero.post_voucher(_invoice())
    delete = wire.last("DELETE", "/vouchers/purchase")
    assert delete.path == f"/v1/{ORG}/vouchers/purchase/{GUID}" and delete.json() == {"Timestamp": TIMESTAMP}
    assert_api_headers(delete, body=True)


def test_credit_note_for_a_booked_voucher(dinero, wire):
    # [HEXIO] POST /v1/{org}/vouchers/purchase/creditnotes, CreatePurchaseVoucherCreditNoteModel:
    # Date, FileGuid, ContactGuid (nullable), Currency, CreditNoteFor, Timestamp, Lines — no
    # ExternalReference; GET …/creditnotes/{guid} (PurchaseVoucherCreditNoteReadModel); POST …/{guid}/book
    booked = {**READ_MODEL, "Status": "Booked", "VoucherNumber": 7}
    note_guid = "9d1f0b7e-2222-4c3d-8e9f-0a1b2c3d4e5f"
    wire.answer("GET", r"/files$", {"headers": JSON, "body": {"Collection": [], "Pagination": {"Result": 0}}})
    wire.answer("POST", r"/files$", {"headers": JSON, "body": {"FileGuid": "credit0file0guid"}})
    wire.answer("POST", r"/vouchers/purchase/creditnotes$", {"status": 201, "headers": JSON,
                                                             "body": {"Guid": note_guid, "Timestamp": "2"}})
    note = {"Guid": note_guid, "Timestamp": "2", "Status": "Draft", "Date": "2026-03-14", "CreditNoteFor": GUID,
            "ContactGuid": booked["ContactGuid"], "Currency": "DKK", "FileGuid": "credit0file0guid", "Lines": []}
    wire.answer("GET", rf"/creditnotes/{note_guid}$", {"headers": JSON, "body": note})
    wire.answer("POST", rf"/creditnotes/{note_guid}/book$", {"headers": JSON, "body": {"Guid": note_guid}})
    wire.answer("GET", rf"/creditnotes/{note_guid}$", {"headers": JSON, "body": {**note, "Status": "Booked",
                                                                                 "VoucherNumber": 8}})
    dinero._credit(_invoice(), booked, steps := [])
    files = wire.last("GET", "/files")
    assert files.query["fields"] == "FileGuid,Name,Linked,UploadedAt" and files.query["fileStatus"] == "Used"
    create = [c for c in wire.captured if c.method == "POST" and c.path.endswith("/creditnotes")][-1]
    assert create.path == f"/v1/{ORG}/vouchers/purchase/creditnotes"
    assert set(create.json()) == {"Date", "FileGuid", "ContactGuid", "Currency", "CreditNoteFor", "Lines"}
    assert create.json()["CreditNoteFor"] == GUID
    book = wire.last("POST", "/book")
    assert book.path == f"/v1/{ORG}/vouchers/purchase/creditnotes/{note_guid}/book" and book.json() == {
        "Timestamp": "2"}
    assert steps and note_guid in steps[0]


def test_create_contact(dinero, wire):
    # [CLI] docs/resources.md: POST /v1/{org}/contacts {"Name":"Acme A/S","CountryKey":"DK","IsPerson":false,
    # "IsMember":false,"UseCvr":false}; ContactGuid may be supplied (ContactCreateModel)
    wire.answer("GET", r"/contacts$", {"headers": JSON, "body": {"Collection": [], "Pagination": {"Result": 0}}})
    wire.answer("GET", r"/contacts$", {"headers": JSON, "body": {"Collection": [], "Pagination": {"Result": 0}}})
    wire.answer("GET", r"/contacts$", {"headers": JSON, "body": {"Collection": [], "Pagination": {"Result": 0}}})
    wire.answer("POST", r"/contacts$", {"status": 201, "headers": JSON, "body": {"ContactGuid": "c-1"}})
    assert dinero._contact(_invoice(extra={"supplier": {"name": "Acme A/S", "vat": "DK87654321"}})) == "c-1"
    create = wire.last("POST", "/contacts")
    assert create.path == f"/v1/{ORG}/contacts"
    assert {"Name", "CountryKey", "IsPerson", "IsMember", "UseCvr"} <= set(create.json())
    assert set(create.json()) - {"Name", "CountryKey", "IsPerson", "IsMember", "UseCvr"} <= {"ContactGuid", "VatNumber"}


def test_token_429_is_a_rate_limit(dinero, wire):
    # dinero-cli src/dinero_cli/personal.py handles 429 from the token endpoint with Retry-After
    from integrations.base import RetryableError

    wire.answers.clear()
    wire.answer("POST", r"^/dineroapi/oauth/token$", {"status": 429, "headers": {"Retry-After": "20",
                                                                                 "Content-Type": "text/plain"},
                                                      "body": "API calls quota exceeded!"})
    with pytest.raises(RetryableError) as limited:
        DineroClient(dinero.integration).access_token()
    assert limited.value.retry_after == 20.0
