"""The admin for expense documents: sync state and last error in words, actions, company isolation,
the CSV import preview and the Dinero setup wizard."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from bookkeeping.models import PaymentMethodList, VoucherState
from expense_documents.models import ExpenseDocument, WorkflowRule
from integrations.models import Integration
from tests import factories
from tests.dinero_fixtures import DINERO_KEY, DINERO_ORG, expense, sync_and_send

CHANGELIST = "admin:expense_documents_expensedocument_changelist"


def _grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


def test_changelist_shows_each_documents_sync_state_and_last_error_in_words(client, superuser, connected_dinero,
                                                                          dinero_sandbox):
    company = connected_dinero.company
    synced = expense(company, "OK-1")
    sync_and_send(synced)
    refused = expense(company, "BAL-1", lines=(("10.00", "I25", 51020, "Computer"),))
    sync_and_send(refused)
    waiting = expense(company, "EUR-1", currency="EUR")
    sync_and_send(waiting)
    WorkflowRule.objects.create(company=company, name="Ingen parkering", supplier_contains="parkering")
    opted = expense(company, "P-1", supplier="Parkering Nord", supplier_vat="")
    sync_and_send(opted)

    client.force_login(superuser)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "Synced to Dinero" in page and f"Dinero voucher number {synced.voucher.remote_number}" in page
    assert "Refused" in page and "51020 is a balance-sheet account" in page
    assert "Waiting" in page and "Waiting for the DKK amount" in page
    assert "Opted out" in page and "Ingen parkering" in page

    detail = client.get(reverse("admin:expense_documents_expensedocument_change", args=[refused.pk])).content.decode()
    assert "profit and loss (drift)" in detail and "Not synced to Dinero" in detail


def test_staff_see_and_change_only_their_companies(client, connected_dinero, staff_user):
    company = connected_dinero.company
    other = factories.CompanyFactory(name="Andet ApS", slug="andet", country="DK")
    mine = expense(company, "MINE-1")
    theirs = expense(other, "THEIRS-1")
    their_rule = WorkflowRule.objects.create(company=other, name="Their rule")
    company.members.add(staff_user)
    _grant(staff_user, "view_expensedocument", "change_expensedocument", "view_workflowrule", "change_workflowrule")
    client.force_login(staff_user)

    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "MINE-1" in page and "THEIRS-1" not in page
    assert client.get(reverse("admin:expense_documents_expensedocument_change", args=[mine.pk])).status_code == 200
    assert client.get(reverse("admin:expense_documents_expensedocument_change", args=[theirs.pk])).status_code == 302
    assert "Their rule" not in client.get(reverse("admin:expense_documents_workflowrule_changelist")).content.decode()
    assert client.get(reverse("admin:expense_documents_workflowrule_change", args=[their_rule.pk])).status_code == 302
    # an action on another company's document does nothing
    client.post(reverse(CHANGELIST), {"action": "sync_to_dinero", "_selected_action": [theirs.pk]})
    theirs.refresh_from_db()
    assert theirs.voucher is None
    # the wizard refuses another company
    assert client.get(reverse("admin:dinero_setup_connect", args=[other.pk])).status_code == 403


def test_sync_actions_queue_and_sync_again_retries_refused(client, superuser, connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    document = expense(company, "ACT-1")
    client.force_login(superuser)
    response = client.post(reverse(CHANGELIST), {"action": "sync_to_dinero", "_selected_action": [document.pk]},
                           follow=True)
    assert "Sync to Dinero: 1 queued" in response.content.decode()
    document.refresh_from_db()
    assert document.voucher.state == VoucherState.QUEUED

    dinero_sandbox.faults.inject("status", status=400, method="POST", path_contains="/v1.2/", content_type="application/json",
                                 body='{"code":42,"message":"Validation Error","validationErrors":{"VoucherDate":"There is no accounting year for the date 2026-01-01."}}')
    sync_and_send(document)
    assert document.voucher.state == VoucherState.FAILED and "no accounting year" in document.voucher.last_error
    client.post(reverse(CHANGELIST), {"action": "sync_to_dinero", "_selected_action": [document.pk]})
    document.voucher.refresh_from_db()
    assert document.voucher.state == VoucherState.FAILED  # unchanged and refused: stays until fixed
    client.post(reverse(CHANGELIST), {"action": "sync_again", "_selected_action": [document.pk]})
    document.voucher.refresh_from_db()
    assert document.voucher.state == VoucherState.QUEUED


def test_saving_a_document_in_the_admin_marks_it_for_the_sync(client, superuser, connected_dinero, dinero_sandbox,
                                                               django_capture_on_commit_callbacks):
    company = connected_dinero.company
    client.force_login(superuser)
    data = {
        "company": company.pk, "type": "invoice", "reference": "ADM-1", "supplier_name": "Kontorland A/S",
        "supplier_vat": "DK12345678", "document_date": "2026-03-14", "due_date": "2026-04-13", "currency": "DKK",
        "description": "Papir", "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000", "lines-0-position": "0", "lines-0-amount": "250.00",
        "lines-0-vat_code": "I25", "lines-0-category": "7200", "lines-0-text": "Papir",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:expense_documents_expensedocument_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    document = ExpenseDocument.objects.get(reference="ADM-1")
    assert document.lines.get().amount == Decimal("250.00")
    # on commit the worker ran (tasks run inline in tests), queued it, and the dispatcher sent it
    assert document.voucher.state == VoucherState.POSTED and not document.needs_sync


def test_saving_a_rule_in_the_admin_re_evaluates(client, superuser, connected_dinero):
    company = connected_dinero.company
    document = expense(company, "RULE-1", supplier="Q8", supplier_vat="")
    client.force_login(superuser)
    response = client.post(reverse("admin:expense_documents_workflowrule_add"), {
        "company": company.pk, "name": "Ingen Q8", "active": "on", "action": "opt_out_documents",
        "position": "0", "supplier_contains": "Q8"}, follow=True)
    assert "1 document not yet sent was judged again" in response.content.decode()
    document.refresh_from_db()
    assert document.opted_out_by.name == "Ingen Q8" and document.voucher.state == VoucherState.OPTED_OUT


def test_admin_csv_import_previews_then_imports(client, superuser, connected_dinero):
    company = connected_dinero.company
    client.force_login(superuser)
    url = reverse("admin:expense_documents_expensedocument_import")
    csv = ("reference,type,supplier,date,amount,vat_code,category\n"
           "CSV-1,invoice,Kontorland A/S,2026-03-14,100,I25,7200\n")
    preview = client.post(url, {"company": company.pk, "file": SimpleUploadedFile("b.csv", csv.encode())})
    page = preview.content.decode()
    assert "CSV-1" in page and "create" in page and not ExpenseDocument.objects.exists()
    token = preview.context["token"]
    done = client.post(url, {"confirm": token}, follow=True)
    assert "1 created" in done.content.decode()
    assert ExpenseDocument.objects.get(reference="CSV-1").lines.count() == 1

    bad = client.post(url, {"company": company.pk, "file": SimpleUploadedFile(
        "b.csv", b"reference,type,supplier,date,amount\nX,bill,S,2026-03-14,1\n")})
    assert "Nothing can be imported" in bad.content.decode() and "must be invoice or receipt" in bad.content.decode()
    assert not bad.context["token"]


# --- the setup wizard ---------------------------------------------------------------------------------


def test_wizard_walks_the_guides_steps_and_activates_the_integration(client, superuser, dinero_sandbox, dk_company):
    client.force_login(superuser)
    start = client.get(reverse("admin:dinero_setup"))
    assert "Dinero Pro" in start.content.decode() and "payment methods for receipts" in start.content.decode()
    response = client.post(reverse("admin:dinero_setup"), {"company": dk_company.pk})
    connect_url = reverse("admin:dinero_setup_connect", args=[dk_company.pk])
    assert response["Location"] == connect_url

    wrong = client.post(connect_url, {"api_key": "nope", "organization_id": str(DINERO_ORG)})
    assert "refused the API key" in wrong.content.decode()
    wrong_org = client.post(connect_url, {"api_key": DINERO_KEY, "organization_id": "42"})
    assert "organisation id 42 does not belong" in wrong_org.content.decode()
    assert not Integration.objects.filter(company=dk_company).exists()

    response = client.post(connect_url, {"api_key": DINERO_KEY, "organization_id": str(DINERO_ORG)})
    integration = Integration.objects.get(company=dk_company, system="dinero")
    assert response["Location"] == reverse("admin:dinero_setup_step", args=[integration.pk, "accounts"])
    assert integration.status == "setting_up"
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [integration.pk])
        assert DINERO_KEY not in cursor.fetchone()[0]

    accounts = client.get(response["Location"]).content.decode()
    assert "7480 Diverse ekskl. moms" in accounts and "55000 Bank" not in accounts  # P&L purchase accounts only
    balance = client.post(response["Location"], {"error_account": "55000", "import_chart": "on"})
    assert "not one of the available choices" in balance.content.decode()
    response = client.post(response["Location"], {"error_account": "7480", "import_chart": "on"})
    response = client.post(response["Location"], {"invoice_counter_account": "63000"})
    receipts_url = response["Location"]
    payment_list = PaymentMethodList.objects.get(company=dk_company)
    response = client.post(receipts_url, {"receipt_payment_list": payment_list.pk, "book_vouchers": "on"})
    assert response["Location"] == reverse("admin:integrations_integration_change", args=[integration.pk])
    integration.refresh_from_db()
    assert integration.status == "active"
    assert integration.settings["error_account"] == 7480 and integration.settings["invoice_counter_account"] == 63000
    tools = client.get(response["Location"]).content.decode()
    assert "Dinero setup wizard" in tools


def test_wizard_refuses_to_finish_without_a_payment_method_list(client, superuser, dinero_sandbox, dk_company):
    client.force_login(superuser)
    client.post(reverse("admin:dinero_setup_connect", args=[dk_company.pk]),
                {"api_key": DINERO_KEY, "organization_id": str(DINERO_ORG)})
    integration = Integration.objects.get(company=dk_company)
    PaymentMethodList.objects.filter(company=dk_company).delete()
    page = client.get(reverse("admin:dinero_setup_step", args=[integration.pk, "receipts"])).content.decode()
    assert "has no payment-method list for receipts" in page
    assert reverse("admin:bookkeeping_paymentmethodlist_add") in page
    client.post(reverse("admin:dinero_setup_step", args=[integration.pk, "receipts"]), {"receipt_payment_list": "1"})
    integration.refresh_from_db()
    assert integration.status == "setting_up"
