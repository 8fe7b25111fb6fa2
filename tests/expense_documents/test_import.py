"""CSV import of expense documents (service and ``documents_import``), ``documents_push`` and
``dinero_setup``: their ``--json`` output and exit codes, and the setup's refusals."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from bookkeeping.models import AuditEvent, PaymentMethodList, VoucherState
from expense_documents.models import ExpenseDocument
from expense_documents.services.common import dinero_integration
from expense_documents.services.csv_import import documents_import, parse_amount
from expense_documents.services.dinero_setup import SetupError, dinero_setup
from integrations.models import Integration
from tests.dinero_fixtures import DINERO_KEY, DINERO_NOPRO_KEY, DINERO_NOPRO_ORG, DINERO_ORG, PDF

HEADER = "reference,type,supplier,supplier_vat,date,due_date,description,amount,vat_code,category,currency,amount_dkk,payment_method,attachment\n"


def run(*args):
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exc:
        code = exc.code
    text = out.getvalue()
    return code, (json.loads(text) if "--json" in args else text)


def csv_file(tmp_path, body: str, name="bilag.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


GOOD = (
    "F-100,invoice,Kontorland A/S,DK12345678,2026-03-14,2026-04-13,Kontorartikler,125.00,I25,7200,DKK,,,faktura.pdf\n"
    "F-100,invoice,Kontorland A/S,DK12345678,2026-03-14,2026-04-13,Kontorartikler,\"1.000,00\",I25,7240,DKK,,,faktura.pdf\n"
    "K-7,receipt,Café Norden,,14-03-2026,,Frokost,420,REP,4140,DKK,,Firmakort,\n"
    "H-1,invoice,Hetzner Online GmbH,DE812871812,2026-03-01,2026-03-15,Server,15.24,IEUY,7300,EUR,113.70,,\n"
)


# --- import ---------------------------------------------------------------------------------------


def test_import_groups_lines_by_reference_and_reimport_updates(connected_dinero, tmp_path):
    company = connected_dinero.company
    (tmp_path / "faktura.pdf").write_bytes(PDF)
    path = csv_file(tmp_path, GOOD)
    code, result = run("documents_import", company.slug, str(path), "--json")
    assert code == 0, result
    assert (result["created"], result["updated"], result["unchanged"]) == (3, 0, 0)
    invoice = ExpenseDocument.objects.get(company=company, reference="F-100")
    assert [(str(line.amount), line.category) for line in invoice.lines.all()] == [("125.00", "7200"), ("1000.00", "7240")]
    assert invoice.attachment.read() == PDF and invoice.needs_sync
    receipt = ExpenseDocument.objects.get(reference="K-7")
    assert receipt.payment_method.name == "Firmakort" and str(receipt.document_date) == "2026-03-14"
    assert str(ExpenseDocument.objects.get(reference="H-1").amount_dkk) == "113.70"

    again = run("documents_import", company.slug, str(path), "--json")[1]
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    changed = csv_file(tmp_path, GOOD.replace("420,REP", "450,REP"))
    result = run("documents_import", company.slug, str(changed), "--json")[1]
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 1, 2)
    assert ExpenseDocument.objects.filter(company=company).count() == 3
    assert str(ExpenseDocument.objects.get(reference="K-7").lines.get().amount) == "450.00"


def test_dry_run_writes_nothing(connected_dinero, tmp_path):
    (tmp_path / "faktura.pdf").write_bytes(PDF)
    code, result = run("documents_import", connected_dinero.company.slug, str(csv_file(tmp_path, GOOD)), "--dry-run",
                       "--json")
    assert code == 0 and result["dry_run"] and result["created"] == 3
    assert [d["action"] for d in result["documents"]] == ["create", "create", "create"]
    assert ExpenseDocument.objects.count() == 0


def test_one_bad_row_means_nothing_is_written_and_every_problem_is_named(connected_dinero, tmp_path):
    body = (
        "A-1,invoice,Kontorland A/S,,2026-03-14,,ok,100,I25,7200,DKK,,,\n"
        "A-2,bill,Kontorland A/S,,2026-13-14,,bad,abc,X99,55000,DKK,,,missing.pdf\n"
        "A-3,receipt,Q8,,2026-03-14,,no method,10,,,DKK,,,\n"
        "A-1,invoice,Other Supplier,,2026-03-14,,,50,I25,7200,DKK,,,\n"
    )
    code, result = run("documents_import", connected_dinero.company.slug, str(csv_file(tmp_path, body)), "--json")
    assert code == 1 and result["ok"] is False
    problems = {(e["line"], e["field"]) for e in result["errors"]}
    assert {(3, "type"), (3, "date"), (3, "amount"), (3, "vat_code"), (3, "category"), (3, "attachment"),
            (4, "payment_method"), (5, "supplier")} <= problems
    balance = next(e for e in result["errors"] if e["field"] == "category")
    assert "balance-sheet account" in balance["message"]
    assert ExpenseDocument.objects.count() == 0


def test_import_refuses_a_wrong_header(connected_dinero, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("ref;amount\nA;1\n", encoding="utf-8")
    code, result = run("documents_import", connected_dinero.company.slug, str(path), "--json")
    assert code == 1 and "missing columns" in result["errors"][0]["message"]


def test_import_for_an_unknown_company_exits_non_zero(db, tmp_path):
    code, result = run("documents_import", "nobody", str(csv_file(tmp_path, GOOD)), "--json")
    assert code == 1 and "No company" in result["error"]


def test_amounts_in_danish_and_english_notation():
    assert str(parse_amount("1.234,50")) == "1234.50"
    assert str(parse_amount("1,234.50")) == "1234.50"
    assert str(parse_amount("99,5")) == "99.50"
    with pytest.raises(ValueError):
        parse_amount("1.234")


def test_admin_import_attachments_stay_inside_the_import_folder(connected_dinero, tmp_path):
    (tmp_path / "faktura.pdf").write_bytes(PDF)
    result = documents_import(company=connected_dinero.company, text=HEADER + GOOD, dry_run=True,
                              attachment_root=tmp_path / "imports", allow_outside_root=False)
    assert any(e.field == "attachment" for e in result.errors)


# --- push -----------------------------------------------------------------------------------------


def test_documents_push_json_and_exit_code(connected_dinero, dinero_sandbox, tmp_path):
    company = connected_dinero.company
    (tmp_path / "faktura.pdf").write_bytes(PDF)
    run("documents_import", company.slug, str(csv_file(tmp_path, GOOD)))
    code, result = run("documents_push", company.slug, "--json")
    assert code == 0, result
    assert result["counts"] == {"synced": 3}
    assert all(d["dinero"] and d["number"] for d in result["documents"])
    assert len(dinero_sandbox.org.purchase_vouchers) == 3

    bad = csv_file(tmp_path, "B-1,invoice,X ApS,,2026-03-14,,,10,I25,7200,DKK,,,\n")
    run("documents_import", company.slug, str(bad))
    doc = ExpenseDocument.objects.get(reference="B-1")
    line = doc.lines.get()
    line.category = 55000  # a balance account entered by hand
    line.save()
    code, result = run("documents_push", company.slug, "--json")
    assert code == 1 and result["ok"] is False
    refused = next(d for d in result["documents"] if d["reference"] == "B-1")
    assert refused["state"] == "refused" and "balance-sheet account" in refused["detail"]
    code, text = run("documents_push", company.slug)
    assert code == 1 and "Refused" in text


# --- setup ----------------------------------------------------------------------------------------


def setup_args(company, *extra, key=DINERO_KEY, org=DINERO_ORG):
    return ("dinero_setup", company.slug, "--api-key", key, "--organization-id", str(org), "--error-account", "7480",
            "--invoice-payment-method", "63000", "--receipt-payment-methods", "Kvitteringer", *extra)


def test_dinero_setup_command_json_never_prints_the_key(dinero_sandbox, dk_company):
    code, result = run(*setup_args(dk_company, "--import-chart", "--json"))
    assert code == 0, result
    assert result["status"] == "active" and result["organisation"] == "Demo ApS"
    assert result["api_key"] == "••••-key" and DINERO_KEY not in json.dumps(result)
    integration = dinero_integration(dk_company)
    assert integration.settings["error_account"] == 7480 and integration.settings["receipt_payment_list"]
    assert integration.credentials["api_key"] == DINERO_KEY
    assert not AuditEvent.objects.filter(message__contains=DINERO_KEY).exists()


def test_setup_refuses_without_a_payment_method_list_before_calling_dinero(dinero_sandbox, dk_company):
    PaymentMethodList.objects.filter(company=dk_company).delete()
    code, result = run(*setup_args(dk_company, "--json"))
    assert code == 1 and "payment-method list for receipts" in result["error"]
    assert dinero_sandbox.received.requests == []
    assert not Integration.objects.filter(company=dk_company).exists()


@pytest.mark.parametrize(("key", "org", "words"), [
    ("wrong-key", DINERO_ORG, "refused the API key"),
    (DINERO_KEY, 111, "organisation id 111 does not belong to this API key"),
    (DINERO_NOPRO_KEY, DINERO_NOPRO_ORG, "Dinero Pro subscription required"),
])
def test_setup_refusals_have_distinct_messages_and_store_nothing(dinero_sandbox, dk_company, key, org, words):
    with pytest.raises(SetupError) as caught:
        dinero_setup(company=dk_company, api_key=key, organization_id=str(org), error_account=7480,
                     import_chart=True, invoice_payment_method="63000", receipt_payment_list="Kvitteringer")
    assert words in caught.value.message
    assert not Integration.objects.filter(company=dk_company).exists()
    code, result = run(*setup_args(dk_company, "--json", key=key, org=org))
    assert code == 1 and words in result["error"]


def test_setup_refuses_a_balance_error_account_and_a_non_deposit_payment_method(dinero_sandbox, dk_company):
    with pytest.raises(SetupError) as caught:
        dinero_setup(company=dk_company, api_key=DINERO_KEY, organization_id=str(DINERO_ORG), error_account=63000,
                     import_chart=True, invoice_payment_method="63000", receipt_payment_list="Kvitteringer")
    assert "balance-sheet account" in caught.value.message
    payment_list = PaymentMethodList.objects.get(company=dk_company)
    payment_list.methods.create(name="Privat udlæg", account_number=63100)
    with pytest.raises(SetupError) as caught:
        dinero_setup(company=dk_company, api_key=DINERO_KEY, organization_id=str(DINERO_ORG), error_account=7480,
                     import_chart=True, invoice_payment_method="63000", receipt_payment_list="Kvitteringer")
    assert "Privat udlæg (63100)" in caught.value.message and "deposit account" in caught.value.message
    assert dinero_integration(dk_company).status == "setting_up"  # the key was fine; the choices were not


def test_setup_with_manual_categories(dinero_sandbox, dk_company):
    code, result = run(*setup_args(dk_company, "--json"))  # without --import-chart
    assert code == 0 and result["import_chart"] is False
    from bookkeeping.models import Account

    assert not Account.objects.get(plan__company=dk_company, number=7200).active
    assert Account.objects.get(plan__company=dk_company, number=7480).active


def test_after_setup_waiting_documents_are_synced(dinero_sandbox, dk_company):
    from tests.dinero_fixtures import expense

    document = expense(dk_company, "EARLY-1")
    run(*setup_args(dk_company, "--import-chart"))
    from expense_documents.tasks import sync_documents

    sync_documents()
    document.refresh_from_db()
    assert document.voucher.state == VoucherState.QUEUED
