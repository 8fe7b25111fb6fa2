"""The bookkeeping audit trail exported as CSV for an auditor: formula-safe, company-scoped, permission-checked."""

import csv
import io

from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse

from bookkeeping.models import AuditEvent
from bookkeeping.services.audit import audit_record
from bookkeeping.services.audit_export import audit_csv_lines, audit_events_for_export, formula_safe
from tests.factories import CompanyFactory, UserFactory, balanced_voucher


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_cells_a_spreadsheet_would_run_are_defused():
    for dangerous in ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert formula_safe(dangerous) == "'" + dangerous
    assert formula_safe("Posted to Fortnox: A 12") == "Posted to Fortnox: A 12"
    assert formula_safe(None) == "" and formula_safe(404) == "404"


def test_the_export_says_who_sent_which_voucher_where_with_what_result(db):
    company = CompanyFactory(name="Brf Exempelgården", org_number="769600-1234")
    voucher = balanced_voucher(company)
    voucher.remote_id, voucher.remote_series, voucher.remote_number, voucher.remote_year = "A-12", "A", "12", "1"
    voucher.save()
    audit_record(action="state:sending->posted", outcome="ok", voucher=voucher, actor="anna",
                 message="=cmd|' /C calc'!A0")
    lines = rows("".join(audit_csv_lines(audit_events_for_export(company=company))))
    assert lines[0][:6] == ["time", "company", "organisation number", "user", "action", "outcome"]
    header = dict(zip(lines[0], lines[1], strict=True))
    assert header["company"] == "Brf Exempelgården" and header["organisation number"] == "769600-1234"
    assert header["user"] == "anna" and header["action"] == "state:sending->posted" and header["outcome"] == "OK"
    assert header["our reference"] == voucher.reference and header["target voucher"] == "A 12 1"
    assert header["target system"] == "Fortnox"
    assert header["message"] == "'=cmd|' /C calc'!A0"


def test_the_admin_export_is_scoped_to_the_users_companies_and_needs_the_permission(client, db):
    mine, theirs = CompanyFactory(name="Mine AB"), CompanyFactory(name="Theirs AB")
    audit_record(action="company:created", company=mine, message="mine")
    audit_record(action="company:created", company=theirs, message="theirs")
    staff = UserFactory(username="anna")
    mine.members.add(staff)
    client.force_login(staff)
    url = reverse("admin:bookkeeping_auditevent_changelist")
    every = list(AuditEvent.objects.values_list("pk", flat=True))
    post = {"action": "export_csv", "_selected_action": every}

    refused = client.post(url, post)
    assert refused.status_code in (200, 302) and refused.get("Content-Type", "").startswith("text/html")

    staff.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    response = client.post(url, post)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert "Mine AB" in body and "Theirs AB" not in body


def test_the_command_writes_a_file(db, tmp_path):
    company = CompanyFactory(slug="brf")
    audit_record(action="company:created", company=company, message="created")
    call_command("audit_export", "brf", "--output", str(tmp_path / "audit.csv"))
    assert len(rows((tmp_path / "audit.csv").read_text(encoding="utf-8"))) == 2
