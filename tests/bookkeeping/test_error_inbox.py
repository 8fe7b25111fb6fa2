"""The error inbox: failures of every flow grouped by their error code, explained, and dealt with in bulk —
send again, or handled outside Kontera with a note (audited). And the pre-flight result, kept from import on."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from bookkeeping.models import AuditEvent, Voucher, VoucherState
from bookkeeping.services.preflight import vouchers_preflight_refresh
from bookkeeping.services.vouchers import voucher_queue
from tests.factories import (
    AccountFactory,
    CompanyFactory,
    IntegrationFactory,
    UserFactory,
    VoucherFactory,
    balanced_voucher,
    fortnox_plan,
)

S = VoucherState
INBOX = "admin:bookkeeping_voucher_inbox"


@pytest.fixture
def bureau(db):
    mine = CompanyFactory(name="Mitt Bolag AB", slug="mitt")
    theirs = CompanyFactory(name="Annat Bolag AB", slug="annat")
    anna = UserFactory(username="anna")
    anna.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_voucher", "change_voucher", "handle_outside_voucher",
                      "send_voucher"]))  # sending again is sending: the named permission (issue 11)
    mine.members.add(anna)
    return mine, theirs, anna


def failed(company, code, n=1, system="fortnox", kind="journal", error="Refused"):
    return [VoucherFactory(company=company, system=system, kind=kind, state=S.FAILED, last_error_code=code,
                           last_error=error, source_reference=f"{code or 'none'}-{uuid.uuid4().hex[:8]}")
            for _ in range(n)]


def test_failures_are_grouped_by_code_with_what_it_means_and_what_to_do(client, bureau):
    mine, theirs, anna = bureau
    failed(mine, "2000423", 3)
    failed(mine, "unknown_account", 2)
    failed(mine, "58", 1, system="dinero", kind="receipt")
    failed(theirs, "2000423", 9)  # not anna's
    client.force_login(anna)
    page = client.get(reverse(INBOX)).content.decode()
    assert "6 failed vouchers" in page
    assert "An account on the voucher does not exist in Fortnox." in page and "code 2000423 · 3 vouchers" in page
    assert "An account is not in the target&#x27;s chart of accounts." in page
    assert "What to do:" in page and "import the master data again" in page
    assert "Dinero" in page and "code 58" in page
    assert "Annat Bolag" not in page


def test_in_swedish(client, bureau):
    mine, _theirs, anna = bureau
    failed(mine, "unknown_account", 1)
    client.force_login(anna)
    page = client.get(reverse(INBOX), HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Felinkorg" in page and "Ett konto finns inte i målsystemets kontoplan." in page
    assert "Skicka igen" in page and "Hanterad utanför Kontera" in page


def test_handled_outside_needs_a_note_and_is_audited(client, bureau):
    mine, _theirs, anna = bureau
    vouchers = failed(mine, "2000423", 2)
    client.force_login(anna)
    data = {"system": "fortnox", "code": "2000423", "voucher": [v.pk for v in vouchers],
            "action": "handled_outside", "note": "  "}
    page = client.post(reverse(INBOX), data, follow=True).content.decode()
    assert "Write a note" in page
    assert set(Voucher.objects.filter(pk__in=[v.pk for v in vouchers]).values_list("state", flat=True)) == {S.FAILED}
    data["note"] = "Booked by hand as A 31 in Fortnox"
    client.post(reverse(INBOX), data)
    for voucher in vouchers:
        voucher.refresh_from_db()
        assert voucher.state == S.HANDLED_OUTSIDE
        event = AuditEvent.objects.filter(voucher=voucher).latest("id")
        assert event.actor == anna and "Booked by hand as A 31" in event.message
    assert "No failed vouchers" in client.get(reverse(INBOX)).content.decode()


def test_another_companys_vouchers_cannot_be_touched(client, bureau):
    mine, theirs, anna = bureau
    others = failed(theirs, "2000423", 1)
    failed(mine, "2000423", 1)
    client.force_login(anna)
    client.post(reverse(INBOX), {"system": "fortnox", "code": "2000423", "voucher": [others[0].pk],
                                 "action": "handled_outside", "note": "mine now"})
    client.post(reverse(INBOX), {"system": "fortnox", "code": "2000423", "whole_group": "1",
                                 "action": "handled_outside", "note": "all of them"})
    others[0].refresh_from_db()
    assert others[0].state == S.FAILED
    assert Voucher.objects.filter(company=mine, state=S.HANDLED_OUTSIDE).count() == 1


def test_each_action_needs_its_permission(client, bureau):
    mine, _theirs, _anna = bureau
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_voucher"))
    mine.members.add(viewer)
    vouchers = failed(mine, "2000423", 1)
    client.force_login(viewer)
    page = client.get(reverse(INBOX)).content.decode()
    assert "An account on the voucher does not exist" in page and 'value="handled_outside"' not in page
    response = client.post(reverse(INBOX), {"system": "fortnox", "code": "2000423", "voucher": [vouchers[0].pk],
                                            "action": "handled_outside", "note": "x"})
    assert response.status_code == 403
    assert client.post(reverse(INBOX), {"system": "fortnox", "code": "2000423", "voucher": [vouchers[0].pk],
                                        "action": "send_again"}).status_code == 403
    outsider = UserFactory(username="outsider")
    client.force_login(outsider)
    assert client.get(reverse(INBOX)).status_code == 403


def test_send_again_checks_again_and_queues_what_passes(client, bureau):
    mine, _theirs, anna = bureau
    fortnox_plan(mine)
    IntegrationFactory(company=mine, system="fortnox", status="active")
    good = balanced_voucher(mine, state=S.FAILED, last_error_code="2000423")
    still_bad = balanced_voucher(mine, rows=((9999, "5.00", "0"), (3011, "0", "5.00")), state=S.FAILED,
                                 last_error_code="2000423")
    client.force_login(anna)
    page = client.post(reverse(INBOX), {"system": "fortnox", "code": "2000423", "voucher": [good.pk, still_bad.pk],
                                        "action": "send_again"}, follow=True).content.decode()
    assert "1 voucher queued again" in page and "1 refused again by the pre-flight check" in page
    good.refresh_from_db()
    still_bad.refresh_from_db()
    assert good.state in (S.QUEUED, S.SENDING, S.POSTED, S.AWAITING_AUTHORISATION)
    assert still_bad.state == S.FAILED and still_bad.last_error_code == "unknown_account"


def test_handled_outside_from_the_voucher_list_too(client, bureau):
    mine, _theirs, anna = bureau
    vouchers = failed(mine, "", 1)
    client.force_login(anna)
    url = reverse("admin:bookkeeping_voucher_changelist")
    page = client.post(url, {"action": "mark_handled_outside", "_selected_action": [vouchers[0].pk]}).content.decode()
    assert "Note (required)" in page
    client.post(url, {"action": "mark_handled_outside", "_selected_action": [vouchers[0].pk], "confirm": "yes",
                      "note": "Paid and booked by the client's own accountant"})
    vouchers[0].refresh_from_db()
    assert vouchers[0].state == S.HANDLED_OUTSIDE


def test_a_document_handled_outside_says_so(bureau):
    from expense_documents.models import ExpenseDocument
    from expense_documents.selectors import document_sync_state

    mine, _theirs, _anna = bureau
    [voucher] = failed(mine, "58", 1, system="dinero", kind="receipt")
    voucher.state = S.HANDLED_OUTSIDE
    voucher.save()
    document = ExpenseDocument.objects.create(company=mine, reference="R-1", supplier_name="Q8",
                                              document_date=dt.date.today(), voucher=voucher)
    state = document_sync_state(document)
    assert state.code == "handled_outside" and str(state.label) == "Handled outside Kontera"


# --- the pre-flight result, kept on the voucher ----------------------------------------------------


def test_an_imported_journal_says_why_it_cannot_be_sent_before_anyone_tries(db):
    from ledger_journals.services.journal_import import journals_import

    company = CompanyFactory(slug="brf")
    fortnox_plan(company)
    csv = ("journal,date,series,account,debit,credit,cost_centre,project,text\n"
           f"A1,{dt.date.today()},A,1930,100,0,,,x\n"
           f"A1,{dt.date.today()},A,3011,0,100,999,,y\n")
    journals_import(company=company, data=csv.encode(), filename="j.csv", actor="test")
    voucher = Voucher.objects.get()
    assert voucher.state == S.DRAFT and voucher.preflight_ok is False
    assert voucher.preflight_problems[0]["code"] == "unknown_cost_centre"


def test_fixing_the_cause_clears_the_old_message_and_sends_what_was_asked(db):
    company = CompanyFactory(slug="brf")
    plan = fortnox_plan(company)
    IntegrationFactory(company=company, system="fortnox", status="paused")  # nothing leaves in this test
    voucher = balanced_voucher(company, rows=((1930, "5.00", "0"), (4999, "0", "5.00")))
    voucher_queue(voucher=voucher, actor="test")
    voucher.refresh_from_db()
    assert voucher.state == S.FAILED and "4999" in voucher.last_error and voucher.preflight_ok is False

    AccountFactory(plan=plan, number=4999, kind="pl")  # added in Fortnox, master data imported again
    result = vouchers_preflight_refresh(company=company, system="fortnox")
    voucher.refresh_from_db()
    assert result.queued_again == 1
    assert voucher.state == S.QUEUED and voucher.last_error == "" and voucher.preflight_ok is True
    assert AuditEvent.objects.filter(voucher=voucher, action="preflight:passes").exists()


def test_a_draft_edited_until_it_passes_is_ready_and_its_old_reason_gone(db):
    company = CompanyFactory(slug="brf")
    fortnox_plan(company)
    voucher = balanced_voucher(company, rows=((1930, "5.00", "0"), (4999, "0", "5.00")))
    vouchers_preflight_refresh(company=company, system="fortnox", voucher_ids=[voucher.pk], queue_fixed=False)
    voucher.refresh_from_db()
    assert voucher.preflight_ok is False
    row = voucher.rows.get(account="4999")
    row.account = "3011"
    row.save()
    vouchers_preflight_refresh(company=company, system="fortnox", voucher_ids=[voucher.pk], queue_fixed=False)
    voucher.refresh_from_db()
    assert voucher.preflight_ok is True and voucher.preflight_problems == [] and voucher.state == S.DRAFT
