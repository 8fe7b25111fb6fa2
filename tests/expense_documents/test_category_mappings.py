"""Expense documents whose categories are the expense tool's names: mapped to Dinero purchase accounts and VAT
codes, waiting (listed, never refused) while unmapped, sent by themselves once mapped, untouched once posted."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse

from bookkeeping.models import AccountMapping, Voucher, VoucherState
from bookkeeping.services.mappings import account_mapping_save
from bookkeeping.services.sending import vouchers_dispatch
from expense_documents.models import ExpenseDocument, WorkflowAction, WorkflowRule
from expense_documents.services.csv_import import documents_import
from expense_documents.services.sync import documents_sync, expense_document_sync
from tests.dinero_fixtures import expense, sync_and_send

HEADER = "reference,type,supplier,supplier_vat,date,due_date,description,amount,vat_code,category\n"
NAMED = HEADER + (
    "F-1,invoice,Kontorland A/S,DK12345678,2026-03-14,2026-04-13,Printerpapir,125.00,,Kontorartikler\n"
    "F-1,invoice,Kontorland A/S,DK12345678,2026-03-14,2026-04-13,Togbillet Aarhus,400.00,,Rejser\n"
)
PURCHASE = "/v1.2/123456/vouchers/purchase"


def map_category(company, key, account, vat_code="", **kwargs):
    return account_mapping_save(company=company, system="dinero", kind="expense_category", key=key,
                                account_number=account, vat_code=vat_code, actor="test", **kwargs)


def test_category_names_go_to_dinero_on_the_mapped_accounts_and_vat_codes(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    map_category(company, "Kontorartikler", 7200, "I25")
    map_category(company, "Rejser", 4280)  # Rejseomkostninger, no VAT code of its own
    result = documents_import(company=company, text=NAMED, actor="test")
    assert result.ok and result.documents[0]["waits_for_mapping"] == []
    document = ExpenseDocument.objects.get(reference="F-1")
    # each line keeps its own description (two lines of one document, two texts)
    assert [(line.category, line.text) for line in document.lines.all()] == [
        ("Kontorartikler", "Printerpapir"), ("Rejser", "Togbillet Aarhus")]
    outcome = sync_and_send(document)
    assert outcome.state == "synced", outcome.message
    [create] = dinero_sandbox.received.find("POST", PURCHASE)
    assert create.json()["Lines"] == [
        {"Description": "Printerpapir", "AccountNumber": 7200, "VatCode": "I25", "Amount": 125.0},
        {"Description": "Togbillet Aarhus", "AccountNumber": 4280, "VatCode": None, "Amount": 400.0},
    ]
    rows = document.voucher.rows.exclude(source_kind="").order_by("position")
    assert [(r.source_key, r.account) for r in rows] == [("Kontorartikler", "7200"), ("Rejser", "4280")]


def test_a_lines_own_vat_code_wins_over_the_mappings(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    map_category(company, "Kontorartikler", 7200, "I25")
    document = expense(company, "F-2", lines=(("100.00", "REP", "Kontorartikler", "Kaffe til kunder"),))
    sync_and_send(document)
    [create] = dinero_sandbox.received.find("POST", PURCHASE)
    assert create.json()["Lines"][0]["VatCode"] == "REP"


def test_an_unmapped_category_waits_is_listed_and_is_sent_by_itself_once_mapped(
        client, connected_dinero, dinero_sandbox, staff_user, django_capture_on_commit_callbacks):
    company = connected_dinero.company
    result = documents_import(company=company, text=NAMED, actor="test")
    assert result.ok  # imported, not refused
    assert result.documents[0]["waits_for_mapping"] == ["Kontorartikler", "Rejser"]
    document = ExpenseDocument.objects.get(reference="F-1")
    outcome = sync_and_send(document)
    assert outcome.state == "waiting" and "Kontorartikler" in outcome.message
    assert document.voucher.state == VoucherState.AWAITING_MAPPING
    assert document.used_error_account is False  # a named category is never silently sent to the error account
    assert dinero_sandbox.received.api_calls() == []

    company.members.add(staff_user)
    staff_user.user_permissions.set(Permission.objects.filter(
        codename__in=["view_accountmapping", "change_accountmapping", "add_accountmapping"]))
    client.force_login(staff_user)
    url = reverse("admin:bookkeeping_accountmapping_unmapped") + f"?company={company.pk}&flow=expense_documents"
    page = client.get(url)
    gaps = {row["gap"].key: row for row in page.context["rows"]}
    assert set(gaps) == {"Kontorartikler", "Rejser"}
    assert [item.label for item in gaps["Kontorartikler"]["gap"].items] == ["F-1"]
    assert gaps["Kontorartikler"]["gap"].items[0].url == reverse(
        "admin:expense_documents_expensedocument_change", args=[document.pk])
    assert gaps["Kontorartikler"]["suggestions"][0].account == 7200  # "Kontorartikler og tryksager"
    # the chooser offers profit-and-loss accounts only
    choices = dict(gaps["Rejser"]["form"].fields["account_number"].choices)
    assert 4280 in choices and 55000 not in choices and 63000 not in choices

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"system": "dinero", "kind": "expense_category", "key": "Kontorartikler",
                          "account_number": "7200", "vat_code": "I25"})
    document.refresh_from_db()
    assert document.voucher.state == VoucherState.AWAITING_MAPPING  # Rejser still has no mapping
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"system": "dinero", "kind": "expense_category", "key": "Rejser", "account_number": "4280"})
    vouchers_dispatch(system="dinero", max_seconds=30)
    document.voucher.refresh_from_db()
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    [create] = dinero_sandbox.received.find("POST", PURCHASE)
    assert [line["AccountNumber"] for line in create.json()["Lines"]] == [7200, 4280]


def test_a_mapping_changed_after_posting_leaves_the_posted_voucher_untouched(
        connected_dinero, dinero_sandbox, django_capture_on_commit_callbacks):
    company = connected_dinero.company
    map_category(company, "Kontorartikler", 7200, "I25")
    document = expense(company, "F-3", lines=(("125.00", "", "Kontorartikler", "Papir"),))
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED
    dinero_sandbox.received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        map_category(company, "Kontorartikler", 8040, "I25")
    vouchers_dispatch(system="dinero", max_seconds=30)
    document.refresh_from_db()
    voucher = Voucher.objects.get(pk=document.voucher_id)
    assert voucher.state == VoucherState.POSTED
    assert list(voucher.rows.exclude(source_kind="").values_list("account", flat=True)) == ["7200"]
    assert dinero_sandbox.received.api_calls() == []  # no update, no credit note


def test_a_balance_account_can_never_become_a_dinero_category_through_a_mapping(
        client, connected_dinero, staff_user, tmp_path):
    company = connected_dinero.company
    try:
        map_category(company, "Bank", 55000)
    except ValidationError as exc:
        assert "balance-sheet account" in str(exc)
    else:
        raise AssertionError("a balance account was accepted as a category")
    path = tmp_path / "m.csv"
    path.write_text("company,system,kind,key,account\ndemo-aps,dinero,expense_category,Bank,55000\n")
    from django.core.management import call_command

    try:
        call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")
    except SystemExit as exc:
        assert exc.code == 1
    company.members.add(staff_user)
    staff_user.user_permissions.set(Permission.objects.filter(
        codename__in=["view_accountmapping", "change_accountmapping", "add_accountmapping"]))
    client.force_login(staff_user)
    url = reverse("admin:bookkeeping_accountmapping_unmapped") + f"?company={company.pk}&flow=expense_documents"
    client.post(url, {"system": "dinero", "kind": "expense_category", "key": "Bank", "account_number": "55000"})
    admin_form = client.post(reverse("admin:bookkeeping_accountmapping_add"), {
        "company": company.pk, "system": "dinero", "kind": "expense_category", "key": "Bank",
        "account_number": "55000"})
    assert admin_form.status_code == 200 and "balance-sheet account" in admin_form.content.decode()
    assert not AccountMapping.objects.filter(kind="expense_category", key="Bank").exists()


def test_the_kinds_default_row_catches_the_rest_visibly(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    map_category(company, "*", 7480)
    document = expense(company, "F-4", lines=(("60.00", "", "Ukendt kategori", "Noget"),))
    outcome = sync_and_send(document)
    assert outcome.state == "synced"
    assert document.used_error_account is True  # flagged, like the error account
    [create] = dinero_sandbox.received.find("POST", PURCHASE)
    assert create.json()["Lines"][0]["AccountNumber"] == 7480


def test_a_workflow_rule_on_a_category_account_matches_the_mapped_name(connected_dinero):
    company = connected_dinero.company
    map_category(company, "Kontorartikler", 7200, "I25")
    rule = WorkflowRule.objects.create(company=company, name="Kontor", action=WorkflowAction.OPT_OUT_DOCUMENTS,
                                       category=7200)
    document = expense(company, "F-5", lines=(("10.00", "", "Kontorartikler", "Papir"),))
    expense_document_sync(document=document, actor="test", kick=False)
    document.refresh_from_db()
    assert document.opted_out_by == rule


def test_one_read_of_the_mappings_serves_a_batch(connected_dinero):
    company = connected_dinero.company
    map_category(company, "Kontorartikler", 7200, "I25")
    for n in range(5):
        expense(company, f"B-{n}", lines=(("10.00", "", "Kontorartikler", "Papir"),))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        documents_sync(company=company, actor="test", kick=False)
    reads = [q["sql"] for q in captured.captured_queries if "bookkeeping_accountmapping" in q["sql"]]
    assert len(reads) == 1
