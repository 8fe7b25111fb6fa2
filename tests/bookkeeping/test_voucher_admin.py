from django.urls import reverse

from bookkeeping.services.vouchers import voucher_queue
from tests.factories import CompanyFactory, IntegrationFactory, balanced_voucher, fortnox_plan


def test_change_page_shows_rows_preflight_and_audit_trail(client, db, superuser):
    company = CompanyFactory()
    fortnox_plan(company)
    IntegrationFactory(company=company, status="paused")
    voucher = balanced_voucher(company, rows=((1930, "10.00", "0"), (9999, "0", "10.00")))
    voucher_queue(voucher=voucher, actor="test")
    client.force_login(superuser)
    page = client.get(reverse("admin:bookkeeping_voucher_change", args=[voucher.pk])).content.decode()
    assert "Account 9999 is not in the account plan." in page  # the pre-flight report, in words
    # the audit trail in words (issue 14: human labels, not the internal code state:draft->failed)
    assert "Audit trail" in page and "Refused by the pre-flight check" in page and "state:draft" not in page
    assert 'name="rows-0-account"' in page  # a failed voucher's rows can be corrected


def test_posted_voucher_rows_are_read_only(client, db, superuser):
    voucher = balanced_voucher()
    voucher.state = "posted"
    voucher.save()
    client.force_login(superuser)
    page = client.get(reverse("admin:bookkeeping_voucher_change", args=[voucher.pk])).content.decode()
    assert 'name="rows-0-account"' not in page
