"""The unmapped-values page and the voucher page: who may look and map, what they show, and a voucher
whose row has no account number yet (a placeholder or a value waiting for a mapping) still has a page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from bookkeeping.models import AccountMapping, VoucherState
from bookkeeping.services.vouchers import voucher_queue
from ledger_journals.services.journal_import import journals_import
from tests.factories import CompanyFactory, IntegrationFactory, UserFactory, balanced_voucher, fortnox_plan

PERMS = ("view_accountmapping", "change_accountmapping", "add_accountmapping", "view_voucher", "change_voucher",
         "view_voucherrow", "change_voucherrow")


@pytest.fixture
def brf(db):
    company = CompanyFactory(slug="brf")
    fortnox_plan(company, accounts=(1930, 3011, 3015, 2440), cost_centres=("100",))
    IntegrationFactory(company=company, system="fortnox", status="active")
    return company


@pytest.fixture
def waiting(brf):
    import datetime as dt

    day = dt.date.today()
    data = (f"journal,date,account,debit,credit,category\nJ1,{day},1930,100,0,\nJ1,{day},,0,100,Hyra bostad\n"
            f"J2,{day},1930,50,0,\nJ2,{day},,0,50,Hyra bostad\n").encode()
    journals_import(company=brf, data=data, filename="j.csv", actor="test")
    return brf


def staff(company, *codenames):
    user = UserFactory(username=f"staff-{company.slug}-{len(codenames)}")
    company.members.add(user)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def page_url(company, flow="ledger_journals"):
    return reverse("admin:bookkeeping_accountmapping_unmapped") + f"?company={company.pk}&flow={flow}"


def test_the_page_lists_each_value_with_its_count_and_waiting_vouchers(client, waiting):
    client.force_login(staff(waiting, *PERMS))
    page = client.get(page_url(waiting))
    [row] = page.context["rows"]
    assert (row["gap"].kind, row["gap"].key, row["gap"].occurrences) == ("ledger_category", "Hyra bostad", 2)
    assert [item.label for item in row["gap"].items] == ["J1", "J2"]
    assert row["gap"].items[0].url.startswith(reverse("admin:bookkeeping_voucher_changelist"))
    choices = dict(row["form"].fields["account_number"].choices)
    assert {1930, 3011, 3015, 2440} <= set(choices)


def test_another_companys_staff_may_neither_look_nor_map(client, waiting):
    other = CompanyFactory(slug="annan")
    client.force_login(staff(other, *PERMS))
    assert client.get(page_url(waiting)).status_code == 403
    response = client.post(page_url(waiting), {"system": "fortnox", "kind": "ledger_category", "key": "Hyra bostad",
                                               "account_number": "3011"})
    assert response.status_code == 403
    assert not AccountMapping.objects.exists()


def test_mapping_needs_the_change_permission(client, waiting):
    client.force_login(staff(waiting, "view_accountmapping"))
    page = client.get(page_url(waiting))
    assert page.status_code == 200 and page.context["can_change"] is False
    response = client.post(page_url(waiting), {"system": "fortnox", "kind": "ledger_category",
                                               "key": "Hyra bostad", "account_number": "3011"})
    assert response.status_code == 403
    assert not AccountMapping.objects.exists()
    client.force_login(staff(waiting))  # a member without any mapping permission
    assert client.get(page_url(waiting)).status_code == 403


def test_a_value_of_another_flow_or_a_wrong_account_is_refused_with_reasons(client, waiting):
    client.force_login(staff(waiting, *PERMS))
    client.post(page_url(waiting), {"system": "fortnox", "kind": "output_vat", "key": "25", "account_number": "2440"})
    response = client.post(page_url(waiting), {"system": "fortnox", "kind": "ledger_category", "key": "Hyra bostad",
                                               "account_number": "9999"}, follow=True)
    assert "Account 9999 is not in the account plan." in response.content.decode()
    assert not AccountMapping.objects.exists()


def test_mapping_from_the_page_resolves_the_waiting_drafts(client, waiting, django_capture_on_commit_callbacks):
    client.force_login(staff(waiting, *PERMS))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page_url(waiting), {"system": "fortnox", "kind": "ledger_category",
                                                   "key": "Hyra bostad", "account_number": "3011",
                                                   "cost_centre": "100"})
    assert response.status_code == 302
    j1 = waiting.vouchers.get(source_reference="J1")
    assert j1.state == VoucherState.DRAFT and j1.last_error == ""  # drafts stay drafts until staff send them
    assert list(j1.rows.values_list("account", "cost_centre")) == [("1930", ""), ("3011", "100")]


def test_the_voucher_page_shows_what_the_source_said_and_links_to_the_page(client, waiting):
    voucher = waiting.vouchers.get(source_reference="J1")
    voucher_queue(voucher=voucher, actor="test")
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.AWAITING_MAPPING
    client.force_login(staff(waiting, *PERMS))
    page = client.get(reverse("admin:bookkeeping_voucher_change", args=[voucher.pk])).content.decode()
    assert "Ledger category “Hyra bostad”: no mapping yet" in page
    assert "Source account “1930” → 1930 (the same account)" in page
    assert page_url(waiting).replace("&", "&amp;") in page  # "Map the missing values"


def test_an_account_typed_by_hand_is_kept_when_mappings_change(client, waiting, django_capture_on_commit_callbacks):
    voucher = waiting.vouchers.get(source_reference="J1")
    client.force_login(staff(waiting, *PERMS))
    url = reverse("admin:bookkeeping_voucher_change", args=[voucher.pk])
    form = client.get(url).context["adminform"].form
    rows = list(voucher.rows.order_by("position"))
    data = {name: ("" if value is None else value) for name, value in form.initial.items()
            if name in ("company", "system", "kind", "source_system", "source_reference", "description", "series",
                        "currency")}
    data.update({"date": voucher.date.isoformat(), "company": voucher.company_id,
                 "rows-TOTAL_FORMS": 2, "rows-INITIAL_FORMS": 2})
    for i, row in enumerate(rows):
        data.update({f"rows-{i}-id": row.pk, f"rows-{i}-voucher": voucher.pk, f"rows-{i}-position": row.position,
                     f"rows-{i}-account": row.account or "3015", f"rows-{i}-debit": row.debit,
                     f"rows-{i}-credit": row.credit, f"rows-{i}-cost_centre": "100" if i else ""})
    prefix = [f.formset.prefix for f in client.get(url).context["inline_admin_formsets"]]
    for p in prefix:
        data.setdefault(f"{p}-TOTAL_FORMS", 0)
        data.setdefault(f"{p}-INITIAL_FORMS", 0)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    typed = voucher.rows.get(position=1)
    assert (typed.account, typed.awaits_mapping, typed.source["via"]) == ("3015", False, "manual")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(page_url(waiting), {"system": "fortnox", "kind": "ledger_category", "key": "Hyra bostad",
                                        "account_number": "3011", "cost_centre": "100"})
    typed.refresh_from_db()
    assert typed.account == "3015"  # what staff typed stays as typed


def test_a_placeholder_account_does_not_break_the_voucher_page(client, brf, superuser):
    """A SIE file may carry 'FEL' as an account; the page used to fail building the Fortnox preview."""
    voucher = balanced_voucher(brf, rows=((1930, "10.00", "0"), ("FEL", "0", "10.00")))
    client.force_login(superuser)
    response = client.get(reverse("admin:bookkeeping_voucher_change", args=[voucher.pk]))
    assert response.status_code == 200
    assert "Account FEL is not in the account plan." in response.content.decode()


def test_the_admin_index_links_to_the_page_when_something_waits(client, waiting):
    client.force_login(staff(waiting, *PERMS))
    page = client.get(reverse("admin:index")).content.decode()
    assert "2 vouchers wait for account mappings" in page
    assert reverse("admin:bookkeeping_accountmapping_unmapped") in page
    client.force_login(staff(CompanyFactory(slug="tom"), *PERMS))
    assert "wait for account mappings" not in client.get(reverse("admin:index")).content.decode()


def test_retry_resolves_a_waiting_voucher_again_at_once(client, waiting):
    from bookkeeping.models import AccountMapping as Mapping

    voucher = waiting.vouchers.get(source_reference="J1")
    voucher_queue(voucher=voucher, actor="test")
    # a mapping that arrived without its re-evaluation (e.g. the task was lost)
    Mapping.objects.bulk_create([Mapping(company=waiting, system="fortnox", kind="ledger_category",
                                         key="Hyra bostad", account_number=3011, cost_centre="100")])
    client.force_login(staff(waiting, *PERMS))
    client.post(reverse("admin:bookkeeping_voucher_changelist"),
                {"action": "retry_selected", "_selected_action": [voucher.pk]})
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED
    assert list(voucher.rows.values_list("account", flat=True)) == ["1930", "3011"]


@pytest.mark.parametrize(("language", "title", "state"), [
    ("sv", "Värden utan kontomappning", "Väntar på kontomappning"),
    ("da", "Værdier uden kontotilknytning", "Afventer kontotilknytning")])
def test_the_page_speaks_swedish_and_danish(client, waiting, language, title, state):
    voucher_queue(voucher=waiting.vouchers.get(source_reference="J1"), actor="test")
    client.force_login(staff(waiting, *PERMS))
    page = client.get(page_url(waiting), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert title in page and state in page
