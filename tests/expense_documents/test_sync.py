"""The sync rules for expense documents: P&L-only categories, the error account, foreign currency,
workflow rules (with re-evaluation), re-queueing after changes, the worker."""

from __future__ import annotations

from decimal import Decimal

from bookkeeping.models import PaymentMethod, Voucher, VoucherState
from bookkeeping.schedules import SCHEDULES
from demo.expense_documents import demo_expenses
from expense_documents.models import ExpenseDocument, WorkflowAction, WorkflowRule
from expense_documents.services.sync import expense_document_sync, workflow_rule_delete, workflow_rule_save
from expense_documents.services.voucher_content import allocate
from expense_documents.tasks import sync_documents
from tests import factories
from tests.dinero_fixtures import DINERO_ORG, expense, sync_and_send


def test_a_balance_account_is_refused_before_sending_with_the_guides_explanation(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "BAL-1", lines=(("500.00", "I25", 51020, "Computer"),))
    outcome = sync_and_send(document)
    assert outcome.state == "refused"
    voucher = document.voucher
    assert voucher.state == VoucherState.FAILED and voucher.last_error_code == "balance_account"
    assert "51020 is a balance-sheet account" in voucher.last_error
    assert "profit and loss (drift)" in voucher.last_error
    assert dinero_sandbox.received.api_calls() == []  # no request reached Dinero


def test_an_income_account_is_refused_as_not_a_purchase_account(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "INC-1", lines=(("100.00", "", 1000, "?"),))
    sync_and_send(document)
    assert document.voucher.state == VoucherState.FAILED
    assert "not one of Dinero's purchase accounts" in document.voucher.last_error
    assert dinero_sandbox.received.api_calls() == []


def test_fixing_the_category_sends_the_refused_document(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "BAL-2", lines=(("500.00", "I25", 51020, "Computer"),))
    sync_and_send(document)
    line = document.lines.get()
    line.category = 8040
    line.save()
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error


def test_a_line_without_category_goes_to_the_error_account_and_is_flagged(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "NOCAT", lines=(("60.00", "", None, "Parkering"),))
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    assert document.used_error_account is True
    [create] = dinero_sandbox.received.find("POST", "/v1.2/123456/vouchers/purchase")
    assert create.json()["Lines"][0]["AccountNumber"] == 7480


def test_foreign_currency_waits_for_the_dkk_amount_then_posts_it(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    document = expense(company, "EUR-1", supplier="Hetzner Online GmbH", supplier_vat="DE812871812", currency="EUR",
                       lines=(("10.00", "IEUY", 7300, "Server"), ("5.24", "IEUY", 7320, "Backup")))
    outcome = sync_and_send(document)
    voucher = document.voucher
    assert outcome.state == "waiting"
    assert voucher.state == VoucherState.DRAFT  # waits: never queued, nothing failed
    assert "Waiting for the DKK amount" in voucher.last_error and "EUR" in voucher.last_error
    assert dinero_sandbox.received.api_calls() == []

    document.amount_dkk = Decimal("113.70")
    document.needs_sync = True
    document.save()
    sync_and_send(document)
    assert document.voucher.state == VoucherState.POSTED, document.voucher.last_error
    [create] = dinero_sandbox.received.find("POST", "/v1.2/123456/vouchers/purchase")
    body = create.json()
    assert "CurrencyKey" not in body  # Dinero is told DKK, the amount drawn from the bank
    assert [line["Amount"] for line in body["Lines"]] == [74.61, 39.09]
    assert sum(Decimal(str(line["Amount"])) for line in body["Lines"]) == Decimal("113.70")
    remote = dinero_sandbox.get_purchase_voucher(DINERO_ORG, document.voucher.remote_id)
    assert remote["CurrencyKey"] == "DKK"


def test_allocation_keeps_the_exact_total():
    parts = allocate(Decimal("100.00"), [Decimal("1"), Decimal("1"), Decimal("1")])
    assert parts == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]


def test_a_receipt_without_payment_method_is_refused(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "R-NOPM", type="receipt")
    document.payment_method = None
    document.save()
    sync_and_send(document)
    assert document.voucher.state == VoucherState.FAILED
    assert "payment method" in document.voucher.last_error
    assert dinero_sandbox.received.api_calls() == []


def test_a_synced_unchanged_document_is_left_alone(connected_dinero, dinero_sandbox):
    document = expense(connected_dinero.company, "SAME")
    sync_and_send(document)
    dinero_sandbox.received.clear()
    outcome = sync_and_send(document)
    assert outcome.state == "synced"
    assert dinero_sandbox.received.api_calls() == []


# --- workflow rules -------------------------------------------------------------------------------


def _rule(company, name="No Q8", **fields):
    rule = WorkflowRule(company=company, name=name, **fields)
    workflow_rule_save(rule=rule, actor="test")
    return rule


def test_opt_out_rule_by_type_and_supplier(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    _rule(company, action=WorkflowAction.OPT_OUT_RECEIPTS, supplier_contains="q8")
    receipt = expense(company, "Q8-1", type="receipt", supplier="Q8 Tankstation", supplier_vat="")
    invoice = expense(company, "Q8-INV", supplier="Q8 Tankstation", supplier_vat="")
    assert sync_and_send(receipt).state == "opted_out"
    assert receipt.voucher.state == VoucherState.OPTED_OUT
    assert receipt.opted_out_by.name == "No Q8"
    assert sync_and_send(invoice).state == "synced"  # the rule is about receipts
    assert len(dinero_sandbox.org.purchase_vouchers) == 1


def test_conditions_on_category_payment_method_and_amount(connected_dinero):
    company = connected_dinero.company
    cash = PaymentMethod.objects.get(payment_list__company=company, name="Kontant")
    rule = _rule(company, name="Small cash", action=WorkflowAction.OPT_OUT_DOCUMENTS, payment_method=cash,
                 category=7200, min_amount=Decimal("10"), max_amount=Decimal("200"))
    hit = expense(company, "C-1", type="receipt", payment_method=cash)
    too_big = expense(company, "C-2", type="receipt", payment_method=cash, lines=(("250.00", "I25", 7200, "x"),))
    other_method = expense(company, "C-3", type="receipt")
    other_category = expense(company, "C-4", type="receipt", payment_method=cash, lines=(("50.00", "I25", 7300, "x"),))
    states = {d.reference: expense_document_sync(document=d, actor="test", kick=False).state
              for d in (hit, too_big, other_method, other_category)}
    assert states == {"C-1": "opted_out", "C-2": "queued", "C-3": "queued", "C-4": "queued"}
    assert ExpenseDocument.objects.get(reference="C-1").opted_out_by == rule


def test_editing_a_rule_re_evaluates_documents_not_yet_sent(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    rule = _rule(company, name="Shell and Q8", supplier_contains="Q8")
    q8 = expense(company, "RE-1", supplier="Q8", supplier_vat="")
    shell = expense(company, "RE-2", supplier="Shell", supplier_vat="")
    assert sync_and_send(q8).state == "opted_out"
    assert sync_and_send(shell).state == "synced"

    rule.supplier_contains = "Shell"
    outcomes = workflow_rule_save(rule=rule, actor="test")
    q8.refresh_from_db()
    shell.refresh_from_db()
    assert q8.opted_out_by is None and q8.voucher.state == VoucherState.QUEUED  # let go: on its way
    assert shell.opted_out_by is None and shell.voucher.state == VoucherState.POSTED  # already sent: untouched
    assert outcomes == {"queued": 1}

    third = expense(company, "RE-3", supplier="Shell", supplier_vat="")
    assert sync_and_send(third).state == "opted_out"
    workflow_rule_delete(rule=rule, actor="test")
    third.refresh_from_db()
    assert third.voucher.state == VoucherState.QUEUED and third.opted_out_by is None


def test_an_inactive_rule_opts_nothing_out(connected_dinero):
    _rule(connected_dinero.company, name="Off", active=False)
    document = expense(connected_dinero.company, "OFF-1")
    assert expense_document_sync(document=document, actor="test", kick=False).state == "queued"


# --- worker ---------------------------------------------------------------------------------------


def test_worker_syncs_new_and_changed_documents_of_active_integrations(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    expense(company, "W-1")
    expense(company, "W-2", type="receipt")
    result = sync_documents()
    assert result["documents"] == {"queued": 2} and result["remaining"] is False
    assert Voucher.objects.filter(company=company, state=VoucherState.QUEUED).count() == 2
    assert sync_documents()["documents"] == {}  # nothing new: nothing to do
    assert "expense_documents.tasks.sync_documents" in [spec.func for spec in SCHEDULES]


def test_without_a_dinero_integration_documents_wait_for_the_setup(dk_company):
    document = expense(dk_company, "X-1")
    outcome = expense_document_sync(document=document, actor="test", kick=False)
    assert outcome.state == "not_set_up"
    assert sync_documents()["documents"] == {}
    document.refresh_from_db()
    assert document.needs_sync and document.voucher is None


def test_demo_connects_the_sandbox_organisation_through_visma_connect(dinero_sandbox, dk_company, settings):
    """As `manage.py run` configures it: the sandbox's demo Visma Connect application; the demo's Danish
    staff member logs in to the sandbox's Visma Connect and accepts, over HTTP."""
    from demo.services import _grant_staff_permissions
    from expense_documents.services.common import dinero_integration
    from integrations.sandboxes.dinero import (
        DEMO_VISMA_CLIENT_ID,
        DEMO_VISMA_CLIENT_SECRET,
        DEMO_VISMA_REDIRECT_URI,
        DEMO_VISMA_USER,
    )

    settings.VISMA_CONNECT_CLIENT_ID, settings.VISMA_CONNECT_CLIENT_SECRET = DEMO_VISMA_CLIENT_ID, DEMO_VISMA_CLIENT_SECRET
    settings.VISMA_CONNECT_REDIRECT_URI = DEMO_VISMA_REDIRECT_URI
    assert demo_expenses(dk_company)["dinero"].startswith("not connected: no staff member serves")
    lars = factories.UserFactory(username="lars")
    _grant_staff_permissions(lars)
    dk_company.members.add(lars)

    result = demo_expenses(dk_company)
    assert result["dinero"] == "connected to the sandbox organisation 123456 through Visma Connect"
    integration = dinero_integration(dk_company)
    assert integration.status == "active" and integration.settings["auth"] == "visma_connect"
    assert integration.credentials["refresh_token"] and "api_key" not in integration.credentials
    assert any(r.method == "POST" and r.path == "/connect/authorize" for r in dinero_sandbox.received.requests)
    assert [g.email for g in dinero_sandbox.visma.grants.values()] == [DEMO_VISMA_USER[0]]
    again = demo_expenses(dk_company)  # idempotent: connected once
    assert "dinero" not in again and len(dinero_sandbox.visma.grants) == 1


def test_demo_expenses_are_idempotent_and_sync(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    first = demo_expenses(company)
    assert first["documents"] == 4 and first["created"] == 4
    assert demo_expenses(company) == {"payment_method_list": "Kvitteringer", "documents": 4, "unchanged": 4}
    from expense_documents.services.sync import documents_push

    result = documents_push(company=company)
    assert result.ok, result.documents
    assert result.counts == {"synced": 4}
    assert ExpenseDocument.objects.get(reference="DEMO-REC-2").used_error_account
