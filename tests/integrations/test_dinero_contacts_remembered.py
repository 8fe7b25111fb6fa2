"""Dinero's requests per document: the supplier's contact is remembered per organisation (issue 15), and a
remembered contact Dinero no longer knows is looked up again — never a voucher without its contact."""

from __future__ import annotations

from bookkeeping.models import VoucherState
from tests.dinero_fixtures import DINERO_ORG, expense, sync_and_send


def _contact_requests(sandbox) -> list:
    return [r for r in sandbox.received.requests if "/contacts" in r.path]


def test_a_second_invoice_of_a_supplier_looks_up_no_contact(connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    first = expense(company, "C-1")
    sync_and_send(first)
    assert first.voucher.state == VoucherState.POSTED, first.voucher.last_error
    looked_up = len(_contact_requests(dinero_sandbox))
    assert looked_up >= 1
    second = expense(company, "C-2")
    sync_and_send(second)
    assert second.voucher.state == VoucherState.POSTED, second.voucher.last_error
    assert len(_contact_requests(dinero_sandbox)) == looked_up
    first_voucher = dinero_sandbox.get_purchase_voucher(DINERO_ORG, first.voucher.remote_id)
    assert dinero_sandbox.get_purchase_voucher(DINERO_ORG, second.voucher.remote_id)["ContactGuid"] == \
        first_voucher["ContactGuid"]


def test_a_remembered_contact_gone_from_dinero_is_looked_up_again_and_the_voucher_posted_once(
        connected_dinero, dinero_sandbox):
    company = connected_dinero.company
    first = expense(company, "G-1", supplier="Nyt Firma ApS", supplier_vat="DK87654321")
    sync_and_send(first)
    assert first.voucher.state == VoucherState.POSTED, first.voucher.last_error
    remembered = dinero_sandbox.get_purchase_voucher(DINERO_ORG, first.voucher.remote_id)["ContactGuid"]
    with dinero_sandbox._lock:  # deleted in Dinero's web app
        del dinero_sandbox.organization(DINERO_ORG).contacts[remembered]
    vouchers_before = len(_vouchers(dinero_sandbox))
    creates_before = len(_creates(dinero_sandbox))
    second = expense(company, "G-2", supplier="Nyt Firma ApS", supplier_vat="DK87654321")
    sync_and_send(second)
    assert second.voucher.state == VoucherState.POSTED, second.voucher.last_error
    landed = dinero_sandbox.get_purchase_voucher(DINERO_ORG, second.voucher.remote_id)
    assert landed["ContactGuid"] in {c["ContactGuid"] for c in dinero_sandbox.list_contacts(DINERO_ORG)}
    # Refused for the contact (nothing created), then created once with the contact found again.
    assert len(_creates(dinero_sandbox)) == creates_before + 2
    assert len(_vouchers(dinero_sandbox)) == vouchers_before + 1


def _creates(sandbox) -> list:
    return [r for r in sandbox.received.find("POST", "/vouchers/purchase") if r.path.endswith("/vouchers/purchase")]


def _vouchers(sandbox) -> list[dict]:
    return list(sandbox.organization(DINERO_ORG).purchase_vouchers.values())
