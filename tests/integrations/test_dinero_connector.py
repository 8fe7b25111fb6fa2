"""The Dinero connector against the sandbox over HTTP: tokens, connection check, master data, pacing,
429 and the typed errors. Plus the pure mapping functions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from bookkeeping.models import AccountPlan, VatCode
from integrations.base import AuthError, RemoteValidationError, RetryableError, VoucherDTO, VoucherRowDTO
from integrations.dinero import mapping
from integrations.dinero.connector import DineroConnector
from integrations.models import Integration
from tests.dinero_fixtures import DINERO_KEY, DINERO_NOPRO_KEY, DINERO_NOPRO_ORG, DINERO_ORG


def connector_for(company, *, key=DINERO_KEY, org=DINERO_ORG, save=True, **settings):
    integration = Integration(company=company, system="dinero", status="active",
                              settings=DineroConnector.validate_settings({"organization_id": str(org), **settings}),
                              credentials={"api_key": key})
    if save:
        integration.save()
    return DineroConnector(integration)


def token_requests(sandbox):
    return [r for r in sandbox.received.requests if r.path.endswith("/oauth/token")]


# --- tokens ---------------------------------------------------------------------------------------


def test_token_is_cached_encrypted_and_renewed_before_expiry(dinero_sandbox, dk_company):
    connector = connector_for(dk_company)
    connector.check_connection()
    stored = Integration.objects.get(pk=connector.integration.pk)
    assert stored.credentials["access_token"] and stored.credentials["api_key"] == DINERO_KEY
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [stored.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith("fernet:") and DINERO_KEY not in raw

    connector.client.get("accounts/deposit")
    assert len(token_requests(dinero_sandbox)) == 1  # reused
    grant = token_requests(dinero_sandbox)[0].body.decode()
    assert "grant_type=password" in grant and f"username={DINERO_KEY}" in grant and f"password={DINERO_KEY}" in grant
    assert "scope=read+write" in grant
    dinero_sandbox.clock.advance(3500)  # within two minutes of the hour: a new grant, no refresh token
    connector.client.get("accounts/deposit")
    assert len(token_requests(dinero_sandbox)) == 2


def test_a_replaced_api_key_gets_its_own_token_at_once(dinero_sandbox, dk_company):
    connector = connector_for(dk_company)
    connector.client.get("accounts/deposit")
    integration = Integration.objects.get(pk=connector.integration.pk)
    integration.credentials = {**integration.credentials, "api_key": "typed-wrong"}  # e.g. in the generic form
    integration.save()
    with pytest.raises(AuthError):
        DineroConnector(integration).client.get("accounts/deposit")
    assert len(token_requests(dinero_sandbox)) == 2


def test_a_401_runs_the_grant_again_once(dinero_sandbox, dk_company):
    connector = connector_for(dk_company)
    connector.client.get("accounts/deposit")
    dinero_sandbox._tokens.clear()  # Dinero forgot the token before it expired
    assert connector.client.get("accounts/deposit")
    assert len(token_requests(dinero_sandbox)) == 2
    assert [r.status for r in dinero_sandbox.log].count(401) == 1


# --- connection check: distinct messages ------------------------------------------------------------


def test_check_connection_names_the_organisation(dinero_sandbox, dk_company):
    info = connector_for(dk_company, save=False).check_connection()
    assert info.ok and info.company_name == "Demo ApS" and info.remote_company_id == "123456"


def test_wrong_api_key_has_its_own_message(dinero_sandbox, dk_company):
    with pytest.raises(AuthError) as caught:
        connector_for(dk_company, key="not-a-key", save=False).check_connection()
    assert "refused the API key" in caught.value.message
    assert caught.value.code == "invalid_grant"


def test_wrong_organisation_id_has_its_own_message(dinero_sandbox, dk_company):
    with pytest.raises(AuthError) as caught:
        connector_for(dk_company, org=999999, save=False).check_connection()
    assert "organisation id 999999 does not belong to this API key" in caught.value.message
    assert "Demo ApS (123456)" in caught.value.message


def test_non_pro_organisation_has_its_own_message(dinero_sandbox, dk_company):
    with pytest.raises(AuthError) as caught:
        connector_for(dk_company, key=DINERO_NOPRO_KEY, org=DINERO_NOPRO_ORG, save=False).check_connection()
    assert "Dinero Pro subscription required" in caught.value.message


@pytest.mark.parametrize("code", [48, 90])
def test_pro_refusal_on_an_organisation_call_is_an_auth_error(dinero_sandbox, dk_company, code):
    dinero_sandbox.set_pro_error_code(DINERO_NOPRO_ORG, code)
    connector = connector_for(dk_company, key=DINERO_NOPRO_KEY, org=DINERO_NOPRO_ORG, save=False)
    with pytest.raises(AuthError) as caught:
        connector.client.get("accounts/entry")
    assert "Dinero Pro subscription required" in caught.value.message and caught.value.code == str(code)


def test_bad_client_secret_is_a_server_setting_not_the_key(dinero_sandbox, dk_company, settings):
    settings.DINERO_CLIENT_SECRET = "wrong"
    with pytest.raises(AuthError) as caught:
        connector_for(dk_company, save=False).check_connection()
    assert "DINERO_CLIENT_SECRET" in caught.value.message


# --- master data ------------------------------------------------------------------------------------


def test_master_data_separates_profit_and_loss_from_balance(dinero_sandbox, dk_company):
    data = connector_for(dk_company).import_master_data()
    accounts = {a.number: a for a in data.accounts}
    assert not accounts[7200].is_balance and accounts[7200].is_purchase and accounts[7200].vat_code == "I25"
    assert not accounts[1000].is_balance and not accounts[1000].is_purchase  # income: P&L, not for purchases
    assert accounts[55000].is_balance and accounts[55000].is_deposit
    assert accounts[55010].is_deposit and not accounts[63000].is_deposit and accounts[63000].is_balance
    vat = {v.code: v for v in data.vat_codes}
    assert vat["I25"].rate == Decimal("25.00") and "IEUY" in vat
    assert data.company_info["name"] == "Demo ApS"
    assert 7200 in data.company_info["purchase_accounts"] and 1000 not in data.company_info["purchase_accounts"]
    assert data.company_info["deposit_accounts"] == [55000, 55010, 55040]


def test_chart_import_stores_the_plan(connected_dinero):
    plan = AccountPlan.objects.get(company=connected_dinero.company, system="dinero")
    assert plan.accounts.get(number=7200).kind == "pl"
    assert plan.accounts.get(number=55010).kind == "balance" and plan.accounts.get(number=55010).is_deposit
    assert plan.accounts.count() >= 180
    assert VatCode.objects.get(plan=plan, code="I25").rate == Decimal("25.00")
    assert plan.company_info["chart"] == "full"


def test_manual_categories_keep_only_the_balance_sheet_and_the_error_account(dinero_sandbox, dk_company):
    from bookkeeping.services.plans import chart_import

    connector = connector_for(dk_company, import_chart=False, error_account=7480)
    chart_import(integration=connector.integration, connector=connector, actor="test")
    plan = AccountPlan.objects.get(company=dk_company, system="dinero")
    active = set(plan.accounts.filter(active=True).values_list("number", flat=True))
    assert {7480, 55000, 55010, 63000} <= active and 7200 not in active
    assert plan.company_info["chart"] == "manual"


# --- pacing and 429 ---------------------------------------------------------------------------------


def test_429_pauses_the_whole_window_and_never_storms(dinero_sandbox, dk_company):
    dinero_sandbox.set_rate_limit(DINERO_ORG, 5)  # Dinero allows fewer than our setting (100)
    connector = connector_for(dk_company)
    for _ in range(12):
        assert connector.client.get("accounts/deposit")
    api = [r for r in dinero_sandbox.log if "/oauth/" not in r.path]
    statuses = [r.status for r in api]
    assert statuses.count(200) == 12
    assert 1 <= statuses.count(429) <= 3  # one per window at most, not a storm of retries
    for index, request in enumerate(api[:-1]):
        if request.status == 429:
            assert api[index + 1].at - request.at >= 60  # everyone waited the minute out
    assert max(dinero_sandbox.virtual_time.sleeps) >= 59


def test_pacing_at_the_configured_rate_never_triggers_429(dinero_sandbox, dk_company):
    dinero_sandbox.set_rate_limit(DINERO_ORG, 10)
    connector = connector_for(dk_company, rate_limit_per_minute=10)
    for _ in range(25):
        connector.client.get("accounts/deposit")
    api = [r for r in dinero_sandbox.log if "/oauth/" not in r.path]
    assert [r.status for r in api].count(429) == 0
    assert api[-1].at - api[0].at >= 24 * 60 / 9


def test_pacing_is_shared_by_every_worker_of_the_organisation(dinero_sandbox, dk_company):
    first = connector_for(dk_company, rate_limit_per_minute=10)
    second = DineroConnector(Integration.objects.get(pk=first.integration.pk))
    assert first.client.rate_key == second.client.rate_key == "dinero:kontera-demo:123456"
    for _ in range(5):
        first.client.get("accounts/deposit")
        second.client.get("accounts/deposit")
    api = [r for r in dinero_sandbox.log if "/oauth/" not in r.path]
    gaps = [b.at - a.at for a, b in zip(api, api[1:], strict=False)]
    # The slots are 60/9 s apart on the shared clock; a request reaches the sandbox a little after its
    # slot, later on a loaded machine, so two gaps may differ by that jitter (unshared pacing: gaps ≈ 0).
    assert min(gaps) >= 60 / 9 - 0.3, gaps
    assert api[-1].at - api[0].at >= 9 * 60 / 9 - 0.3


def test_a_429_that_does_not_end_gives_up_as_retryable(dinero_sandbox, dk_company):
    dinero_sandbox.faults.inject("status", status=429, method="GET", times=10,
                                 body="API calls quota exceeded! maximum admitted 100 per 1m.")
    connector = connector_for(dk_company)
    with pytest.raises(RetryableError) as caught:
        connector.client.get("accounts/deposit")
    assert caught.value.retry_after == 60 and caught.value.http_status == 429
    assert [r.status for r in dinero_sandbox.log].count(429) == 4


# --- errors -----------------------------------------------------------------------------------------


def test_retired_endpoint_is_a_refusal_in_words(dinero_sandbox, dk_company):
    connector = connector_for(dk_company)
    with pytest.raises(RemoteValidationError) as caught:
        connector.client.request("POST", "vouchers/purchase", version="v1.1", payload={"PurchaseType": "cash"})
    assert "retired" in caught.value.message and caught.value.http_status == 480


def test_validation_errors_are_put_in_plain_words(dinero_sandbox, dk_company):
    connector = connector_for(dk_company)
    body = {"PurchaseType": "cash", "VoucherDate": dt.date.today().isoformat(), "DepositAccountNumber": 55000,
            "Lines": [{"AccountNumber": 55000, "Amount": 10, "VatCode": "I25"}]}
    with pytest.raises(RemoteValidationError) as caught:
        connector.client.post("vouchers/purchase", body, version="v1.2")
    assert "Lines[0].AccountNumber" in caught.value.message
    assert "profit and loss" in caught.value.message and caught.value.code == "42"


def test_dropped_connection_on_a_write_is_an_unknown_outcome(dinero_sandbox, dk_company):
    connector = connector_for(dk_company)
    dinero_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/contacts")
    with pytest.raises(RetryableError) as caught:
        connector.client.post("contacts", {"Name": "X", "CountryKey": "DK", "IsPerson": False, "IsMember": False,
                                           "UseCvr": False})
    assert caught.value.outcome_unknown


def test_settings_are_validated(dk_company):
    assert DineroConnector.validate_settings({"organization_id": "123456"}) == {
        "organization_id": "123456", "book_vouchers": True, "rate_limit_per_minute": 100, "import_chart": True}
    for bad in ({}, {"organization_id": "abc"}, {"organization_id": "1", "rate_limit_per_minute": 101},
                {"organization_id": "1", "rate_limit_per_minute": 0}, {"organization_id": "1", "error_account": "x"},
                {"organization_id": "1", "book_vouchers": "maybe"}):
        with pytest.raises(ValidationError):
            DineroConnector.validate_settings(bad)
    assert DineroConnector.validate_settings({"organization_id": "1", "rate_limit_per_minute": "60",
                                              "book_vouchers": "false"})["rate_limit_per_minute"] == 60


def test_the_api_key_is_a_secret_field_never_shown(dk_company):
    assert DineroConnector.secret_fields == ("api_key",)
    integration = Integration.objects.create(company=dk_company, system="dinero",
                                             settings={"organization_id": "1"}, credentials={"api_key": DINERO_KEY})
    assert DINERO_KEY not in str(integration.masked_credentials())


# --- mapping (pure) ---------------------------------------------------------------------------------


def _dto(**extra):
    rows = (VoucherRowDTO(account=7200, debit=Decimal("100.00"), vat_code="IEUY", text="Server"),
            VoucherRowDTO(account=63000, credit=Decimal("100.00")))
    return VoucherDTO(reference="KONTERA-9", kind="supplier_invoice", date=dt.date(2026, 3, 14),
                      description="Hetzner", rows=rows, extra={"document_reference": "H-1", **extra})


def test_mapping_credit_payload_and_region():
    body = mapping.create_payload(_dto(payment_date="2026-04-01"), contact_guid="c", file_guid="f")
    assert body["PurchaseType"] == "credit" and body["PaymentDate"] == "2026-04-01"
    assert body["Lines"] == [{"Description": "Server", "AccountNumber": 7200, "VatCode": "IEUY", "Amount": 100.0}]
    assert "CurrencyKey" not in body and "DepositAccountNumber" not in body
    cash = mapping.create_payload(_dto(purchase_type="cash", deposit_account=55000), contact_guid=None, file_guid=None)
    assert cash["RegionKey"] == "EU" and cash["DepositAccountNumber"] == 55000 and "ContactGuid" not in cash
    assert mapping.expected_total(_dto()) == Decimal("100.00")
    assert mapping.carries_reference({"ExternalReference": "KONTERA-9:H-1"}, "KONTERA-9")
    assert not mapping.carries_reference({"ExternalReference": "KONTERA-99:H-1"}, "KONTERA-9")


def test_mapping_cover_sheet_is_a_pdf_with_the_document():
    pdf = mapping.cover_sheet_pdf(mapping.cover_sheet_lines(_dto(supplier={"name": "Hetzner (DE)", "vat": ""})))
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert b"H-1" in pdf and b"Hetzner \\(DE\\)" in pdf and b"xref" in pdf


def test_mapping_vat_variants_and_contact_guid():
    assert mapping.vat_variants("DK 12.34.56.78") == ["DK12345678", "12345678"]
    assert mapping.vat_variants("12345678") == ["12345678", "DK12345678"]
    assert mapping.contact_guid_for("1", name="A", vat_number="DK12345678") == \
        mapping.contact_guid_for("1", name="B", vat_number="dk 12345678")
    assert mapping.query_literal("O'Brien") == "'O''Brien'"
