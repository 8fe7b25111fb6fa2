"""The Dinero expense flow end to end against the sandbox over HTTP: exact payloads, attachments,
read-back, updates while draft, corrections after booking, stale timestamps, unknown outcomes."""

from __future__ import annotations

import json
from decimal import Decimal

from django.utils import timezone

from bookkeeping.models import AuditEvent, Voucher, VoucherState
from bookkeeping.services.sending import vouchers_dispatch
from expense_documents.models import ExpenseLine
from expense_documents.services.sync import expense_document_sync
from integrations.dinero import mapping
from integrations.models import Integration, IntegrationStatus
from tests.dinero_fixtures import DINERO_ORG, PDF, expense, sync_and_send


def _set(integration, **values):
    integration.settings = {**integration.settings, **values}
    integration.save()


def _retry_now(document):
    Voucher.objects.filter(pk=document.voucher_id).update(next_attempt_at=timezone.now())
    vouchers_dispatch(system="dinero", max_seconds=30)
    document.refresh_from_db()
    document.voucher.refresh_from_db()


def _change_line(document, **values):
    line = document.lines.first()
    for key, value in values.items():
        setattr(line, key, value)
    line.save()
    document.needs_sync = True
    document.save()


# --- the two purchase types -----------------------------------------------------------------------


def test_invoice_becomes_a_credit_purchase_with_the_exact_payload(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    document = expense(company, "INV-2026-17", attachment=("faktura.pdf", PDF))
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.POSTED, voucher.last_error

    files = dinero_sandbox.list_files(DINERO_ORG)
    assert len(files) == 1 and files[0]["Name"].startswith(voucher.reference + "-")
    assert files[0]["Size"] == len(PDF)
    upload = dinero_sandbox.received.find("POST", "/files")[0]
    assert PDF in upload.body  # the very file, as multipart
    kontorland = next(c for c in dinero_sandbox.list_contacts(DINERO_ORG) if c["Name"] == "Kontorland A/S")

    [create] = dinero_sandbox.received.find("POST", "/v1.2/123456/vouchers/purchase")
    assert create.json() == {
        "PurchaseType": "credit",
        "VoucherDate": document.document_date.isoformat(),
        "PaymentDate": document.due_date.isoformat(),
        "ContactGuid": kontorland["ContactGuid"],  # found by VAT number, not created
        "FileGuid": files[0]["FileGuid"],
        "ExternalReference": f"{voucher.reference}:INV-2026-17",
        "Lines": [{"Description": "Kontorartikler", "AccountNumber": 7200, "VatCode": "I25", "Amount": 125.0}],
    }
    assert dinero_sandbox.received.find("POST", "/contacts") == []
    [book] = dinero_sandbox.received.find("POST", "/book")
    assert set(book.json()) == {"Timestamp"}

    remote = dinero_sandbox.get_purchase_voucher(DINERO_ORG, voucher.remote_id)
    assert remote["Status"] == "Booked" and remote["FileGuid"] == files[0]["FileGuid"]
    assert voucher.remote_number == str(remote["VoucherNumber"])
    assert files[0]["FileGuid"] in {f["FileGuid"] for f in dinero_sandbox.list_files(DINERO_ORG) if f["Linked"]}


def test_receipt_becomes_a_cash_purchase_from_its_payment_method(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    document = expense(company, "REC-1", type="receipt", supplier="Café Norden", supplier_vat="",
                       lines=(("420.00", "REP", 4140, "Frokost med kunde"), ("80.00", "I25", 7200, "Kuglepenne")))
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    [create] = dinero_sandbox.received.find("POST", "/v1.2/123456/vouchers/purchase")
    body = create.json()
    file_guid = body.pop("FileGuid")
    assert body == {
        "PurchaseType": "cash",
        "VoucherDate": document.document_date.isoformat(),
        "DepositAccountNumber": 55010,  # Firmakort's deposit account
        "RegionKey": "DK",
        "ExternalReference": f"{voucher.reference}:REC-1",
        "Lines": [{"Description": "Frokost med kunde", "AccountNumber": 4140, "VatCode": "REP", "Amount": 420.0},
                  {"Description": "Kuglepenne", "AccountNumber": 7200, "VatCode": "I25", "Amount": 80.0}],
    }
    assert dinero_sandbox.received.find("GET", "/contacts") == []  # cash purchases have no contact
    remote = dinero_sandbox.get_purchase_voucher(DINERO_ORG, voucher.remote_id)
    assert remote["Status"] == "Paid" and remote["FileGuid"] == file_guid
    assert next(t for t in remote["VoucherTotals"] if t["Type"] == "Total")["Total"] == 500.0


def test_a_document_without_file_gets_a_cover_sheet_so_it_can_be_found(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "INV-NOFILE")
    sync_and_send(document)
    [upload] = dinero_sandbox.received.find("POST", "/files")
    assert b"%PDF-" in upload.body and b"INV-NOFILE" in upload.body
    [file] = dinero_sandbox.list_files(DINERO_ORG)
    assert file["Name"].startswith(document.voucher.reference + "-cover")
    assert file["Linked"] == [{"Type": "PurchaseVoucher", "Guid": document.voucher.remote_id}]


def test_a_new_supplier_is_created_once_and_found_by_vat_number_afterwards(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    before = len(dinero_sandbox.list_contacts(DINERO_ORG))
    first = expense(company, "N-1", supplier="Nyt Firma ApS", supplier_vat="DK 87 65 43 21")
    sync_and_send(first)
    assert first.voucher.state == VoucherState.POSTED, first.voucher.last_error
    [created] = dinero_sandbox.received.find("POST", "/contacts")
    assert created.json()["VatNumber"] == "DK87654321" and created.json()["CountryKey"] == "DK"
    second = expense(company, "N-2", supplier="Nyt Firma ApS (ny adresse)", supplier_vat="87654321")
    sync_and_send(second)
    assert len(dinero_sandbox.list_contacts(DINERO_ORG)) == before + 1
    guid = created.json()["ContactGuid"]
    assert dinero_sandbox.get_purchase_voucher(DINERO_ORG, second.voucher.remote_id)["ContactGuid"] == guid


def test_an_attachment_over_6_mb_is_refused_before_sending(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "BIG", attachment=("scan.pdf", PDF + b"0" * 6_000_000))
    sync_and_send(document)
    assert document.voucher.state == VoucherState.FAILED
    assert "6 MB" in document.voucher.last_error
    assert dinero_sandbox.received.find("POST", "/files") == []


# --- read back ------------------------------------------------------------------------------------


def test_read_back_total_mismatch_is_an_error_and_the_draft_is_deleted(connected_dinero, dinero_sandbox,
                                                                       monkeypatch):
    real_lines = mapping.voucher_lines

    def misspelt(voucher):
        # a payload bug: Dinero silently ignores the unknown field and creates a zero voucher
        return [{**{k: v for k, v in line.items() if k != "Amount"}, "AmountInclVat": line["Amount"]}
                for line in real_lines(voucher)]

    monkeypatch.setattr(mapping, "voucher_lines", misspelt)
    document = expense(connected_dinero.company, "ZERO")
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.FAILED
    assert "0.00 DKK" in voucher.last_error and "125.00" in voucher.last_error and "deleted" in voucher.last_error
    assert voucher.last_error_code == "total_mismatch"
    assert dinero_sandbox.org.purchase_vouchers == {}
    assert len(dinero_sandbox.received.find("DELETE", "/vouchers/purchase/")) == 1


# --- changes after sync ---------------------------------------------------------------------------


def test_a_change_while_draft_is_put_with_the_timestamp(connected_dinero, dinero_sandbox):
    _set(connected_dinero, book_vouchers=False)
    document = expense(connected_dinero.company, "DRAFT-1")
    sync_and_send(document)
    voucher = document.voucher
    guid = voucher.remote_id
    assert voucher.state == VoucherState.POSTED and voucher.remote_status == "Draft"
    first_timestamp = voucher.remote_timestamp

    _change_line(document, amount=Decimal("250.00"), category=7300)
    outcome = sync_and_send(document)
    voucher = document.voucher
    assert outcome.state == "synced"
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    assert voucher.remote_id == guid  # the same draft, replaced in place
    [put] = dinero_sandbox.received.find("PUT", f"/v1.1/123456/vouchers/purchase/{guid}")
    assert put.json()["Timestamp"] == first_timestamp
    assert put.json()["Lines"] == [{"Description": "Kontorartikler", "AccountNumber": 7300, "VatCode": "I25",
                                    "Amount": 250.0}]
    assert put.json()["ContactGuid"]
    remote = dinero_sandbox.get_purchase_voucher(DINERO_ORG, guid)
    assert remote["Status"] == "Draft" and remote["Lines"][0]["AccountNumber"] == 7300
    assert len(dinero_sandbox.org.purchase_vouchers) == 1
    versions = AuditEvent.objects.filter(voucher=voucher, action="expense:version").order_by("id")
    assert [e.data["version"] for e in versions] == [1, 2]
    assert "250.00" in versions[1].message


def test_a_change_after_booking_is_a_credit_note_plus_a_new_voucher(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "BOOKED-1")
    sync_and_send(document)
    old_guid = document.voucher.remote_id
    old_number = document.voucher.remote_number

    _change_line(document, amount=Decimal("99.00"), category=7240)
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    assert voucher.remote_id != old_guid and voucher.remote_number not in ("", old_number)

    old = dinero_sandbox.get_purchase_voucher(DINERO_ORG, old_guid)
    assert old["Status"] == "Booked"  # Dinero keeps the booked voucher
    [note] = dinero_sandbox.org.credit_notes.values()
    assert note["CreditNoteFor"] == old_guid and note["Booked"]
    assert [(line["AccountNumber"], line["Amount"]) for line in note["Lines"]] == [(7200, "125.00")]
    new = dinero_sandbox.get_purchase_voucher(DINERO_ORG, voucher.remote_id)
    assert new["Status"] == "Booked" and new["Lines"][0]["AccountNumber"] == 7240
    assert mapping.voucher_total(new) == Decimal("99.00")

    steps = list(AuditEvent.objects.filter(voucher=voucher, action="remote:step").values_list("message", flat=True))
    assert any("Credit note" in s and old_guid in s for s in steps)
    assert any(voucher.remote_id in s and "Booked" in s for s in steps)
    posted = AuditEvent.objects.filter(voucher=voucher, action="state:sending->posted").values_list("message", flat=True)
    assert any(old_guid in m for m in posted) and any(voucher.remote_id in m for m in posted)


def test_a_stale_timestamp_reads_again_and_retries_once(connected_dinero, dinero_sandbox):
    _set(connected_dinero, book_vouchers=False)
    document = expense(connected_dinero.company, "STALE-1")
    sync_and_send(document)
    guid = document.voucher.remote_id
    # someone edits the voucher in Dinero behind our back: its Timestamp moves on
    dinero_sandbox.org.purchase_vouchers[guid]["Timestamp"] = "00000000FFFF0001"

    _change_line(document, amount=Decimal("130.00"))
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    puts = dinero_sandbox.received.find("PUT", guid)
    assert [p.json()["Timestamp"] for p in puts][1] == "00000000FFFF0001"
    statuses = [r.status for r in dinero_sandbox.log if r.method == "PUT"]
    assert statuses == [400, 200]
    assert mapping.voucher_total(dinero_sandbox.get_purchase_voucher(DINERO_ORG, guid)) == Decimal("130.00")
    assert AuditEvent.objects.filter(voucher=document.voucher, action="remote:step",
                                     message__contains="outdated Timestamp").exists()


def test_a_timestamp_stale_twice_is_refused_in_words(connected_dinero, dinero_sandbox):
    _set(connected_dinero, book_vouchers=False)
    document = expense(connected_dinero.company, "STALE-2")
    sync_and_send(document)
    body = json.dumps({"code": 58, "message": "Timestamp outdated", "validationErrors": None})
    dinero_sandbox.faults.inject("status", status=400, body=body, content_type="application/json", method="PUT",
                                 times=2)
    _change_line(document, amount=Decimal("140.00"))
    sync_and_send(document)
    assert document.voucher.state == VoucherState.FAILED
    assert "changed in Dinero" in document.voucher.last_error
    assert len(dinero_sandbox.received.find("PUT")) == 2  # retried once, not more


def test_a_key_deleted_in_dinero_waits_for_a_new_one(connected_dinero, dinero_sandbox):
    integration = Integration.objects.get(pk=connected_dinero.pk)
    dinero_sandbox.org.api_key = "replaced-in-dinero"
    integration.credentials = {**integration.credentials, "expires_at": 0}
    integration.save()
    document = expense(connected_dinero.company, "KEY-1")
    sync_and_send(document)
    integration.refresh_from_db()
    assert document.voucher.state == VoucherState.AWAITING_AUTHORISATION
    assert integration.status == IntegrationStatus.NEEDS_REAUTHORISATION
    assert "API key" in integration.status_message
    assert dinero_sandbox.org.purchase_vouchers == {}


# --- unknown outcomes -------------------------------------------------------------------------------


def test_dropped_connection_after_create_gives_exactly_one_voucher(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "DROP-1")
    dinero_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/v1.2/123456/vouchers/purchase")
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.QUEUED and voucher.pending_since is not None
    assert len(dinero_sandbox.org.purchase_vouchers) == 1  # it landed; we just do not know

    _retry_now(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    assert len(dinero_sandbox.org.purchase_vouchers) == 1
    assert len(dinero_sandbox.received.find("POST", "/v1.2/123456/vouchers/purchase")) == 1
    [remote] = dinero_sandbox.org.purchase_vouchers.values()
    assert remote["Guid"] == voucher.remote_id and remote["Booked"]
    lookup = AuditEvent.objects.get(voucher=voucher, action="remote:lookup")
    assert voucher.remote_id in lookup.message


def test_a_change_during_an_unknown_outcome_updates_the_voucher_that_landed(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "DROP-2")
    dinero_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/v1.2/123456/vouchers/purchase")
    sync_and_send(document)
    _change_line(document, amount=Decimal("175.00"))
    expense_document_sync(document=document, actor="test", kick=False)
    _retry_now(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    [remote] = dinero_sandbox.org.purchase_vouchers.values()
    assert remote["Lines"][0]["Amount"] == "175.00" and remote["Booked"]


def test_dropped_connection_while_booking_books_once(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "DROP-3")
    dinero_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/book")
    sync_and_send(document)
    assert document.voucher.state == VoucherState.QUEUED
    _retry_now(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    [remote] = dinero_sandbox.org.purchase_vouchers.values()
    assert remote["Booked"] and remote["VoucherNumber"] == int(document.voucher.remote_number)
    assert len(dinero_sandbox.received.find("POST", "/book")) == 1


def test_connection_dropped_before_create_posts_once_after_lookup(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "DROP-4")
    dinero_sandbox.faults.inject("drop_before", method="POST", path_contains="/v1.2/123456/vouchers/purchase")
    sync_and_send(document)
    assert dinero_sandbox.org.purchase_vouchers == {}
    _retry_now(document)
    assert document.voucher.state == VoucherState.POSTED
    assert len(dinero_sandbox.org.purchase_vouchers) == 1
    assert AuditEvent.objects.filter(voucher=document.voucher, action="remote:lookup",
                                     message__contains="not in").exists()


def test_a_5xx_on_create_is_retried_later(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "5XX")
    dinero_sandbox.faults.inject("status", status=503, method="POST", path_contains="/vouchers/purchase",
                                 body="Service Unavailable")
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.QUEUED and voucher.next_attempt_at > timezone.now()
    assert "internal error (503)" in voucher.last_error and voucher.pending_since is not None
    _retry_now(document)
    assert document.voucher.state == VoucherState.POSTED
    assert len(dinero_sandbox.org.purchase_vouchers) == 1


def test_removing_a_line_after_booking_credits_the_old_lines(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "TWO", lines=(("100.00", "I25", 7200, "A"), ("50.00", "", 7220, "B")))
    sync_and_send(document)
    ExpenseLine.objects.filter(document=document, text="B").delete()
    document.needs_sync = True
    document.save()
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    [note] = dinero_sandbox.org.credit_notes.values()
    assert sorted(line["Amount"] for line in note["Lines"]) == ["100.00", "50.00"]
    assert mapping.voucher_total(dinero_sandbox.get_purchase_voucher(DINERO_ORG, document.voucher.remote_id)) == 100


def test_auth_error_type_for_non_pro_organisation_during_send(connected_dinero, dinero_sandbox):
    dinero_sandbox.set_pro(DINERO_ORG, False)
    document = expense(connected_dinero.company, "NOPRO")
    sync_and_send(document)
    assert document.voucher.state == VoucherState.AWAITING_AUTHORISATION
    assert "Dinero Pro subscription required" in document.voucher.last_error
