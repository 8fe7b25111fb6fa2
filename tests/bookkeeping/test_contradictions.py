"""Issue 14, "Contradictions and crashes found in the walk": one test per item (each failed before its fix)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from bookkeeping.models import Voucher, VoucherKind, VoucherState
from card_payments.models import NetsPayout, PayoutState
from integrations.models import Integration, IntegrationStatus
from tests.factories import CompanyFactory, IntegrationFactory, UserFactory, balanced_voucher, fortnox_plan
from tests.netseasy_fixtures import NETS_KEY, OTHER_NETS_KEY, days_ago, nets_values, sell, sync_and_post

S = VoucherState


# --- the pre-flight page ------------------------------------------------------------------------------


def test_the_send_page_counts_what_it_shows_and_says_what_happens_to_refused_vouchers(client, db):
    company = CompanyFactory(slug="brf")
    fortnox_plan(company)
    posted = balanced_voucher(company, state=S.POSTED, source_reference="POSTED-1")
    refused = balanced_voucher(company, rows=((9999, "5.00", "0"), (3011, "0", "5.00")), source_reference="BAD-1")
    client.force_login(UserFactory(username="root", is_superuser=True))
    page = client.post(reverse("admin:bookkeeping_voucher_changelist"),
                       {"action": "send_selected", "_selected_action": [posted.pk, refused.pk]}).content.decode()
    summary = page.split("You selected", 1)[1].split("</p>", 1)[0]
    assert "0 are ready to send" in summary
    posted_row = page.split("POSTED-1", 1)[1].split("</tr>", 1)[0]
    assert "✔" not in posted_row and "ready" not in posted_row  # a posted voucher is not "ready"
    assert "stay where they are" not in page and "marked Failed" in summary  # what really happens to them


# --- Nets Easy ------------------------------------------------------------------------------------------


@pytest.fixture
def anna(staff_user, connected_fortnox, client):
    staff_user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["integrations", "card_payments"]))
    connected_fortnox.company.members.add(staff_user)
    client.force_login(staff_user)
    return staff_user


def nets_url(name, company):
    return reverse(f"admin:card_payments_netspayout_{name}", args=[company.pk])


def save_settings(company, key, capture):
    from card_payments.services.activation import netseasy_settings_save

    with capture(execute=True):
        return netseasy_settings_save(company=company, values=nets_values(), secret_key=key, actor="test")


def test_after_a_wrong_secret_key_the_banner_the_ok_button_and_the_email_agree(
        client, anna, connected_fortnox, nets_sandbox, django_capture_on_commit_callbacks):
    company = connected_fortnox.company
    anna.email = "anna@byra.example"
    anna.save()
    from card_payments.services.activation import netseasy_settings_save

    with django_capture_on_commit_callbacks(execute=True):
        netseasy_settings_save(company=company, values=nets_values(), secret_key=OTHER_NETS_KEY, actor=anna)
    integration = Integration.objects.get(company=company, system="netseasy")
    settings_page = client.get(nets_url("settings", company)).content.decode()
    assert "✘" in settings_page.split('id="key-check"')[1][:400]
    assert "refused the secret key" in settings_page and "then press OK to start" not in settings_page
    assert 'id="confirm-ok"' not in settings_page
    integration_page = client.get(reverse("admin:integrations_integration_change",
                                          args=[integration.pk])).content.decode()
    assert nets_url("confirm", company) not in integration_page  # no OK button offered
    [message] = mail.outbox
    assert "press “OK – start automatic booking”" not in message.body
    assert "refused the secret key" in message.body


def test_saving_unchanged_settings_posts_no_second_test_voucher(connected_fortnox, nets_sandbox, fortnox_sandbox,
                                                                django_capture_on_commit_callbacks):
    company = connected_fortnox.company
    first = save_settings(company, NETS_KEY, django_capture_on_commit_callbacks)
    assert first.test_voucher_sent
    again = save_settings(company, None, django_capture_on_commit_callbacks)
    assert not again.test_voucher_sent
    assert Voucher.objects.filter(kind=VoucherKind.TEST).count() == 1
    assert len(fortnox_sandbox.vouchers(fortnox_sandbox.tenant_id)) == 1
    assert "no new test voucher" in again.message


def test_connect_fortnox_first_disappears_once_fortnox_is_connected(client, anna, connected_fortnox, nets_sandbox):
    from demo.card_payments import demo_netseasy

    company = connected_fortnox.company
    Integration.objects.filter(pk=connected_fortnox.pk).update(status=IntegrationStatus.SETTING_UP)
    demo_netseasy(company)  # the demo prefills the settings while Fortnox is not connected yet
    Integration.objects.filter(pk=connected_fortnox.pk).update(status=IntegrationStatus.ACTIVE)  # now it is
    page = client.get(nets_url("settings", company)).content.decode()
    assert "Connect Fortnox for" not in page and "Connect Fortnox first" not in page


def test_a_stored_secret_key_is_never_shown_as_a_dash(client, anna, connected_fortnox, nets_sandbox):
    company = connected_fortnox.company
    IntegrationFactory(company=company, system="netseasy", status="setting_up", settings=nets_values(),
                       credentials={"secret_key": NETS_KEY})
    page = client.get(nets_url("settings", company)).content.decode()
    assert "Stored: ••••" in page  # the form field's help text
    key_line = page.split('id="key-check"')[1].split("</p>")[0]
    assert "Stored (••••" in key_line and "–" not in key_line


def test_the_sync_result_says_how_many_payouts_are_already_booked(client, anna, nets_active, nets_sandbox):
    sell(nets_sandbox, day=days_ago(3), reference="ORDER-1")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    sync_and_post(nets_active)
    assert NetsPayout.objects.get().state == PayoutState.BOOKED
    from card_payments.tasks import sync_integration

    result = sync_integration(nets_active.pk, actor="anna")
    assert result["payouts_new"] == 0 and result["already_booked"] == 1
    page = client.get(nets_url("progress", nets_active.company)).content.decode()
    assert "1 already booked earlier" in page


# --- Dinero wizard --------------------------------------------------------------------------------------


def test_dinero_wizard_keeps_the_stored_key_when_the_field_is_left_empty(client, superuser, connected_dinero):
    company = connected_dinero.company
    client.force_login(superuser)
    url = reverse("admin:dinero_setup_connect", args=[company.pk])
    page = client.get(url).content.decode()
    assert "leave the field empty to keep it" in page
    response = client.post(url, {"api_key": "", "organization_id": connected_dinero.settings["organization_id"]})
    assert response.status_code == 302
    assert Integration.objects.get(pk=connected_dinero.pk).credentials["api_key"]


def test_dinero_wizard_lists_only_companies_dinero_is_for(client, superuser, dk_company):
    sweden = CompanyFactory(name="Brf Svensk", slug="brf-svensk", country="SE")
    IntegrationFactory(company=sweden, system="fortnox")
    client.force_login(superuser)
    page = client.get(reverse("admin:dinero_setup")).content.decode()
    requirements = page.split('id="requirements"')[1]
    assert "Demo ApS" in requirements and "Brf Svensk" not in requirements


def test_the_error_account_flag_is_a_warning_not_a_green_tick(client, superuser, connected_dinero):
    from expense_documents.models import ExpenseDocument

    document = ExpenseDocument.objects.create(company=connected_dinero.company, reference="Q8-1", supplier_name="Q8",
                                              document_date=dt.date.today(), used_error_account=True)
    clean = ExpenseDocument.objects.create(company=connected_dinero.company, reference="OK-1", supplier_name="Q8",
                                           document_date=dt.date.today(), used_error_account=False)
    client.force_login(superuser)
    flagged = client.get(reverse("admin:expense_documents_expensedocument_change", args=[document.pk])).content
    flagged = flagged.decode().split("Sync to Dinero")[1]
    assert "icon-yes" not in flagged and "⚠" in flagged and "give it a category" in flagged
    fine = client.get(reverse("admin:expense_documents_expensedocument_change", args=[clean.pk])).content.decode()
    assert "icon-no" not in fine.split("Sync to Dinero")[1]


# --- expense import preview ------------------------------------------------------------------------------


def test_the_import_preview_says_refused_in_words_and_shows_no_server_path(client, superuser, connected_dinero):
    from django.conf import settings

    client.force_login(superuser)
    csv = ("reference,type,supplier,date,amount,vat_code,category\n"
           "OK-1,invoice,Kontorland A/S,2026-03-14,100,I25,7200\n"
           "BAD-1,invoice,Kontorland A/S,2026-03-14,100,I25,55000\n")
    page = client.post(reverse("admin:expense_documents_expensedocument_import"),
                       {"company": connected_dinero.company.pk, "file": SimpleUploadedFile("b.csv", csv.encode())}
                       ).content.decode()
    bad_row = page.split("BAD-1", 1)[1].split("</tr>", 1)[0]
    assert "refused" in bad_row and "create" not in bad_row
    assert "will be create" not in page.lower() and "Will be</th>" in page
    assert str(settings.MEDIA_ROOT) not in page and str(settings.BASE_DIR) not in page


# --- manage.py run ----------------------------------------------------------------------------------------


def test_the_demo_summary_speaks_words_not_python(db):
    from demo.management.commands.demo import Command

    out = io.StringIO()
    command = Command(stdout=out)
    command.render({"companies": ["exempel-handel"], "staff": [],
                    "netseasy": {"status": IntegrationStatus.SETTING_UP, "waiting_for": "Connect Fortnox first"}})
    assert "IntegrationStatus" not in out.getvalue() and "Setting up" in out.getvalue()


def test_the_logins_are_printed_again_after_the_worker_starts_and_on_demand(tmp_path, monkeypatch):
    from demo.management.commands import logins, run

    text = run.banner_text(8000, 8100, ("admin", "s3cret-pass"))
    assert "admin / s3cret-pass" in text and "Press Enter to see these lines again" in text
    monkeypatch.setattr(logins, "VAR", tmp_path)
    (tmp_path / "admin-password.txt").write_text("s3cret-pass\n")
    out = io.StringIO()
    logins.Command(stdout=out).handle()
    assert "admin / s3cret-pass" in out.getvalue() and "anna / demo-anna-2026" in out.getvalue()
    assert run.REPRINT_AFTER > 0  # run prints the banner again once the worker's first burst is over
