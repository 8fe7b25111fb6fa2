"""Dinero as documented (issue 9): fields= on every list, files usable only after a moment, 429 from
the token endpoint, accounting years, credit notes with the documented fields only, cash corrections,
and ``Linked`` entries read without guessing. Against the sandbox over real HTTP."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from bookkeeping.models import AccountPlan, AuditEvent, Voucher, VoucherState
from bookkeeping.services.sending import vouchers_dispatch
from integrations.base import RetryableError
from integrations.dinero import client as dinero_client
from integrations.dinero import mapping
from integrations.dinero.connector import DineroConnector
from integrations.models import Integration, IntegrationStatus
from tests.dinero_fixtures import DINERO_ORG, expense, sync_and_send


def _retry_now(document):
    Voucher.objects.filter(pk=document.voucher_id).update(next_attempt_at=timezone.now())
    vouchers_dispatch(system="dinero", max_seconds=30)
    document.refresh_from_db()
    document.voucher.refresh_from_db()


def _credit_note_creates(sandbox):
    return [r for r in sandbox.received.find("POST", "/vouchers/purchase/creditnotes")
            if r.path.endswith("/creditnotes")]


def _change_line(document, **values):
    line = document.lines.first()
    for key, value in values.items():
        setattr(line, key, value)
    line.save()
    document.needs_sync = True
    document.save()


# --- fields= --------------------------------------------------------------------------------------------

# Lists that take fields= (dinero-cli docs/api/endpoint-matrix.json; tests/contracts/read_cases.py):
# accounts entry/purchase/deposit, contacts, files, organizations. vatTypes and accountingyears take none.
FIELD_LISTS = ("/accounts/entry", "/accounts/purchase", "/accounts/deposit", "/contacts", "/files", "/organizations")


def test_every_list_kontera_reads_names_its_fields(dinero_sandbox, connected_dinero):
    dinero_sandbox.received.clear()
    from bookkeeping.services.plans import chart_import

    chart_import(integration=connected_dinero, actor="test")
    document = expense(connected_dinero.company, "F-1", supplier="Ny Leverandør ApS", supplier_vat="DK87654321")
    dinero_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/v1.2/123456/vouchers/purchase")
    sync_and_send(document)
    _retry_now(document)  # the look-up lists files
    lists = [r for r in dinero_sandbox.received.requests
             if r.method == "GET" and any(r.path.endswith(p) for p in FIELD_LISTS)]
    assert {p for p in FIELD_LISTS if any(r.path.endswith(p) for r in lists)} == set(FIELD_LISTS)
    for request in lists:
        assert parse_qs(request.query).get("fields"), (request.path, request.query)
    # what was asked for arrived: the VAT codes and hidden flags of the chart
    plan = AccountPlan.objects.get(company=connected_dinero.company, system="dinero")
    assert plan.accounts.get(number=7200).vat_code == "I25"
    assert plan.accounts.get(number=55000).kind == "balance"


# --- a just-uploaded file -------------------------------------------------------------------------------


def test_a_file_not_usable_yet_is_retried_briefly_never_failed(connected_dinero, dinero_sandbox):
    dinero_sandbox.file_accessible_after = 4.0  # a slow moment at Dinero: longer than our head start
    document = expense(connected_dinero.company, "FILE-1")
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    creates = dinero_sandbox.received.find("POST", "/v1.2/123456/vouchers/purchase")
    assert len(creates) >= 2  # refused (file not accessible yet), then accepted after a short pause
    assert len(dinero_sandbox.org.purchase_vouchers) == 1
    assert 0 < sum(dinero_sandbox.virtual_time.sleeps) <= 1 + 7.5 + 10  # head start, retries, pacing
    assert not AuditEvent.objects.filter(voucher=voucher, action__endswith="->failed").exists()


def test_the_connector_waits_for_the_file_before_naming_it(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "FILE-2")
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED
    assert len(dinero_sandbox.received.find("POST", "/v1.2/123456/vouchers/purchase")) == 1  # never refused


def test_a_file_that_stays_unusable_waits_for_the_next_attempt(connected_dinero, dinero_sandbox):
    dinero_sandbox.file_accessible_after = 60.0  # longer than the bounded retry
    document = expense(connected_dinero.company, "FILE-3")
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.QUEUED and voucher.last_error_code == "file_not_ready"
    assert voucher.pending_since is None  # refused: nothing was created, so no look-up is needed
    assert dinero_sandbox.org.purchase_vouchers == {}
    dinero_sandbox.file_accessible_after = 1.0  # Dinero is itself again
    _retry_now(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    assert len(dinero_sandbox.org.purchase_vouchers) == 1


# --- 429 from the token endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [30, None])
def test_429_from_the_token_endpoint_is_a_rate_limit_not_a_wrong_key(connected_dinero, dinero_sandbox, retry_after):
    integration = Integration.objects.get(pk=connected_dinero.pk)
    integration.credentials = {**integration.credentials, "expires_at": 0}  # a new token is needed
    integration.save()
    dinero_sandbox.token_requests_per_minute = 0
    dinero_sandbox.token_retry_after = retry_after
    document = expense(connected_dinero.company, "TOKEN-1")
    sync_and_send(document)
    voucher = document.voucher
    integration.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED and voucher.last_error_code == "429"
    assert "busy" in voucher.last_error and "API key" not in voucher.last_error
    assert integration.status == IntegrationStatus.ACTIVE  # not "needs re-authorisation"
    wait = (voucher.next_attempt_at - timezone.now()).total_seconds()
    assert wait >= (retry_after or 60) - 5

    connector = DineroConnector(Integration.objects.get(pk=connected_dinero.pk))
    with pytest.raises(RetryableError) as refused:
        connector.check_connection()  # the setup wizard's check says the same
    assert refused.value.retry_after == (retry_after or 60)

    dinero_sandbox.token_requests_per_minute = None
    dinero_sandbox.clock.advance(120)
    _retry_now(document)
    assert document.voucher.state == VoucherState.POSTED


def test_retry_after_as_an_http_date():
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    seconds = dinero_client.retry_after_seconds(when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert 80 <= seconds <= 90
    assert dinero_client.retry_after_seconds("12") == 12.0
    assert dinero_client.retry_after_seconds("soon") is None


# --- accounting years -----------------------------------------------------------------------------------


def test_accounting_years_come_in_and_the_preflight_checks_the_date(connected_dinero, dinero_sandbox):
    plan = AccountPlan.objects.get(company=connected_dinero.company, system="dinero")
    this_year = timezone.localdate().year
    assert sorted((y.start.year, y.remote_id) for y in plan.financial_years.all()) == [
        (this_year - 1, str(this_year - 1)), (this_year, str(this_year))]
    document = expense(connected_dinero.company, "OLD-1", day=dt.date(this_year - 3, 5, 1),
                       due=dt.date(this_year - 3, 6, 1))
    dinero_sandbox.received.clear()
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.FAILED and voucher.last_error_code == "no_financial_year"
    assert dinero_sandbox.received.find("POST", "/vouchers/purchase") == []  # refused before sending


# --- credit notes and a cash correction -------------------------------------------------------------------

CREDIT_NOTE_FIELDS = {"Date", "ContactGuid", "CreditNoteFor", "Currency", "FileGuid", "Lines"}


def test_a_credit_note_has_exactly_the_documented_fields(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "CN-1")
    sync_and_send(document)
    _change_line(document, amount=Decimal("99.00"))
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    [create] = _credit_note_creates(dinero_sandbox)
    assert set(create.json()) == CREDIT_NOTE_FIELDS  # no ExternalReference (HEXIO's model has none)
    assert create.json()["ContactGuid"]  # a credit purchase has its supplier


def test_a_lost_credit_note_answer_is_found_without_external_reference(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "CN-2")
    sync_and_send(document)
    _change_line(document, amount=Decimal("80.00"))
    dinero_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/vouchers/purchase/creditnotes")
    sync_and_send(document)
    assert len(dinero_sandbox.org.credit_notes) == 1  # it landed; the answer was lost
    _retry_now(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    assert len(dinero_sandbox.org.credit_notes) == 1  # found by its file, not made twice
    [note] = dinero_sandbox.org.credit_notes.values()
    assert note["Booked"] and "ExternalReference" not in note
    assert len(_credit_note_creates(dinero_sandbox)) == 1


def test_a_booked_receipt_is_corrected_end_to_end(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "REC-9", type="receipt", supplier="Café Norden", supplier_vat="",
                       lines=(("200.00", "I25", 7200, "Kuglepenne"),))
    sync_and_send(document)
    old_guid = document.voucher.remote_id
    old = dinero_sandbox.get_purchase_voucher(DINERO_ORG, old_guid)
    assert old["PurchaseType"] == "cash" and old["ContactGuid"] is None and old["Status"] != "Draft"

    _change_line(document, amount=Decimal("150.00"))
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    [create] = _credit_note_creates(dinero_sandbox)
    assert set(create.json()) == CREDIT_NOTE_FIELDS and create.json()["ContactGuid"] is None
    [note] = dinero_sandbox.org.credit_notes.values()
    assert note["CreditNoteFor"] == old_guid and note["Booked"] and note["ContactGuid"] is None
    new = dinero_sandbox.get_purchase_voucher(DINERO_ORG, voucher.remote_id)
    assert new["PurchaseType"] == "cash" and new["ContactGuid"] is None
    assert new["DepositAccountNumber"] == 55010 and mapping.voucher_total(new) == Decimal("150.00")
    assert len(dinero_sandbox.org.purchase_vouchers) == 2  # the booked original stays, as Dinero keeps it
    assert not any(c["Name"] == "Café Norden" for c in dinero_sandbox.list_contacts(DINERO_ORG))


# --- Linked entries ------------------------------------------------------------------------------------------


def _lost_create(connected_dinero, dinero_sandbox, reference):
    document = expense(connected_dinero.company, reference)
    dinero_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/v1.2/123456/vouchers/purchase")
    sync_and_send(document)
    assert document.voucher.pending_since is not None
    [record] = [f for f in dinero_sandbox.org.files.values() if f["Linked"]]
    return document, record


def test_linked_entries_are_read_in_any_casing(connected_dinero, dinero_sandbox):
    document, record = _lost_create(connected_dinero, dinero_sandbox, "LNK-1")
    record["Linked"] = [{"guid": link["Guid"], "TYPE": "purchaseVoucher"} for link in record["Linked"]]
    _retry_now(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    assert len(dinero_sandbox.org.purchase_vouchers) == 1


def test_an_unknown_linked_shape_waits_instead_of_posting_again(connected_dinero, dinero_sandbox, caplog):
    document, record = _lost_create(connected_dinero, dinero_sandbox, "LNK-2")
    record["Linked"] = [{"EntityId": link["Guid"], "EntityType": "Voucher"} for link in record["Linked"]]
    with caplog.at_level(logging.WARNING, logger="kontera.dinero"):
        _retry_now(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.QUEUED and voucher.last_error_code == "linked_shape_unknown"
    assert voucher.pending_since is not None  # still unknown: the next attempt looks up again
    assert "cannot tell whether the voucher already exists" in voucher.last_error
    assert len(dinero_sandbox.org.purchase_vouchers) == 1  # not posted a second time
    assert len(dinero_sandbox.received.find("POST", "/v1.2/123456/vouchers/purchase")) == 1
    assert any("{EntityId, EntityType}" in r.getMessage() for r in caplog.records)  # the shape, logged


def test_file_links_reads_only_the_documented_names():
    assert mapping.file_links({"Linked": [{"Guid": "g", "Type": "PurchaseVoucher"}]}) == [("g", "voucher")]
    assert mapping.file_links({"linked": [{"GUID": "n", "type": "purchase_credit_note"}]}) == [("n", "credit_note")]
    assert mapping.file_links({"Linked": []}) == []
    assert mapping.file_links({"Name": "x"}) is None  # Linked not there: cannot tell
    assert mapping.file_links({"Linked": ["g"]}) is None
    assert mapping.file_links({"Linked": [{"VoucherGuid": "g", "Type": "PurchaseVoucher"}]}) is None
    assert mapping.file_links({"Linked": [{"Guid": "g", "Type": "ManualVoucher"}]}) is None
