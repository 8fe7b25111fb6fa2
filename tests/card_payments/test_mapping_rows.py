"""Card payments take "which account" from the account mappings, like the other flows: the settings page edits
exactly those rows, old settings become rows, and an unmapped VAT rate makes a payout wait until it is mapped."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from bookkeeping.models import AccountMapping, Voucher, VoucherState
from bookkeeping.services.mappings import account_mapping_delete, account_mapping_save
from card_payments.models import NetsPaymentAction, NetsPayout, PayoutState
from card_payments.services.settings import NetsConfig
from tests.netseasy_fixtures import FORTNOX_TENANT, NETS_KEY, days_ago, nets_values, sell, sync_and_post

D = Decimal
NETS_ROWS = {
    ("sales_region", "se"): 3001, ("sales_region", "eu"): 3106, ("sales_region", "world"): 3105,
    ("receivable", "*"): 1580, ("bank", "*"): 1930, ("fee", "*"): 6040,
    ("output_vat", "25"): 2611, ("output_vat", "12"): 2621, ("output_vat", "6"): 2631,
}


def rows_of(company) -> dict:
    return {(m.kind, m.key): m.account_number for m in AccountMapping.objects.filter(company=company)}


def settings_form(**overrides) -> dict:
    data = {k: v for k, v in nets_values().items() if k != "vat_accounts"}
    data.update({"vat_account_25": 2611, "vat_account_12": 2621, "vat_account_6": 2631, "sales_account_eu_b2b": "",
                 "secret_key": ""})
    data.update(overrides)
    return data


def test_the_settings_page_edits_exactly_the_mapping_rows(client, nets_saved, staff_user,
                                                          django_capture_on_commit_callbacks):
    company = nets_saved.company
    assert rows_of(company) == NETS_ROWS
    assert not any(k in nets_saved.settings for k in ("sales_account_se", "fee_account", "vat_accounts"))

    staff_user.user_permissions.set(Permission.objects.filter(
        codename__in=["view_integration", "change_integration", "view_netspayout",
                      "configure_netseasy"]))  # saving the settings is the named permission's (issue 11)
    client.force_login(staff_user)
    url = reverse("admin:card_payments_netspayout_settings", args=[company.pk])
    page = client.get(url)
    assert page.context["form"].initial["fee_account"] == 6040  # read from the row
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(url, settings_form(fee_account=6570, sales_account_eu_b2b=3108, vat_account_6=""))
    assert saved.status_code == 302, saved.context["form"].errors
    expected = {**NETS_ROWS, ("fee", "*"): 6570, ("sales_region", "eu_b2b"): 3108}
    del expected[("output_vat", "6")]
    assert rows_of(company) == expected
    config = NetsConfig.of(nets_saved)
    assert (config.fee_account, config.sales_account_eu_b2b, config.vat_accounts) == (
        6570, 3108, {"25": 2611, "12": 2621})


def test_a_row_changed_elsewhere_is_what_the_page_and_the_booking_use(nets_active):
    account_mapping_save(company=nets_active.company, system="fortnox", kind="fee", key="*", account_number=6570)
    assert NetsConfig.of(nets_active).fee_account == 6570


def test_an_unmapped_vat_rate_waits_is_listed_and_books_by_itself_once_mapped(
        client, nets_active, nets_sandbox, fortnox_sandbox, staff_user, django_capture_on_commit_callbacks):
    company = nets_active.company
    six = AccountMapping.objects.get(company=company, kind="output_vat", key="6")
    account_mapping_delete(mapping=six)
    sell(nets_sandbox, day=days_ago(3), country="SWE", lines=((10000, 600, 1),), reference="BOK-1")
    payout_id = nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    sync_and_post(nets_active)
    payout = NetsPayout.objects.get(nets_id=payout_id)
    assert payout.state == PayoutState.NEEDS_ATTENTION and "6 % VAT" in payout.state_message
    action = NetsPaymentAction.objects.get(payout=payout, action="CHARGE")
    assert action.unmapped == [["output_vat", "6"]] and action.booked_at is None
    assert not Voucher.objects.filter(company=company, kind="sale").exists()

    staff_user.user_permissions.set(Permission.objects.filter(
        codename__in=["view_accountmapping", "change_accountmapping", "add_accountmapping"]))
    client.force_login(staff_user)
    url = reverse("admin:bookkeeping_accountmapping_unmapped") + f"?company={company.pk}&flow=card_payments"
    [row] = client.get(url).context["rows"]
    assert (row["gap"].kind, row["gap"].key) == ("output_vat", "6")
    assert [item.pk for item in row["gap"].items] == [payout.pk]
    assert row["gap"].items[0].url == reverse("admin:card_payments_netspayout_change", args=[payout.pk])
    assert row["suggestions"][0].account == 2631  # BAS: Utgående moms 6 %
    choices = dict(row["form"].fields["account_number"].choices)
    assert 2631 in choices and 3001 not in choices  # output VAT goes on the balance sheet

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"system": "fortnox", "kind": "output_vat", "key": "6", "account_number": "2631"})
    from bookkeeping.services.sending import vouchers_dispatch

    vouchers_dispatch(max_seconds=30)
    payout.refresh_from_db()
    assert payout.state == PayoutState.BOOKED, payout.state_message
    sale = NetsPaymentAction.objects.get(pk=action.pk).voucher
    assert sale.state == VoucherState.POSTED
    assert sorted(sale.rows.values_list("account", "source_kind", "source_key")) == [
        ("1580", "receivable", "*"), ("2631", "output_vat", "6"), ("3001", "sales_region", "se")]
    assert client.get(url).context["rows"] == []
    assert len([v for v in fortnox_sandbox.vouchers(FORTNOX_TENANT) if v.rows]) >= 3


def test_a_mapping_changed_after_posting_leaves_posted_vouchers_untouched(
        nets_active, nets_sandbox, fortnox_sandbox, django_capture_on_commit_callbacks):
    sell(nets_sandbox, day=days_ago(3), country="DEU", lines=((10000, 2500, 1),), reference="EU-1")
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    sync_and_post(nets_active)
    sale = NetsPaymentAction.objects.get(reference="EU-1").voucher
    assert sale.state == VoucherState.POSTED
    landed = len(fortnox_sandbox.vouchers(FORTNOX_TENANT))
    with django_capture_on_commit_callbacks(execute=True):
        account_mapping_save(company=nets_active.company, system="fortnox", kind="sales_region", key="eu",
                             account_number=3108)
    sync_and_post(nets_active)
    sale.refresh_from_db()
    assert sale.state == VoucherState.POSTED
    assert sorted(sale.rows.values_list("account", flat=True)) == ["1580", "2611", "3106"]
    assert len(fortnox_sandbox.vouchers(FORTNOX_TENANT)) == landed


# --- the data migration -----------------------------------------------------------------------


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


BEFORE = [("card_payments", "0002_action_waits_for_mappings"), ("bookkeeping", "0005_mappings_drive_the_flows")]


@pytest.mark.django_db(transaction=True)
def test_existing_settings_become_mapping_rows_and_nothing_is_lost():
    old = _migrate(BEFORE)
    company = old.get_model("bookkeeping", "Company").objects.create(slug="gammal-butik", name="Gammal Butik AB")
    Integration = old.get_model("integrations", "Integration")
    integration = Integration.objects.create(company=company, system="netseasy", settings={
        "start_date": "2025-01-01", "sales_account_se": 3001, "sales_account_eu": "3106", "sales_account_world": 3105,
        "sales_account_eu_b2b": 3108, "receivable_account": 1516, "bank_account": 1930, "fee_account": 6570,
        "vat_accounts": {"25": 2611, "12": 2621}, "sales_series": "A", "payout_series": "B", "mode": "per_day",
        "activation": {"test_voucher_id": 7}, "last_sync": {"to": "2025-02-01"}})
    # a row nobody read before, for a key the settings also give: the settings' account (the one in use) wins
    old.get_model("bookkeeping", "AccountMapping").objects.create(
        company=company, system="fortnox", kind="fee", key="*", account_number=6040)

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    rows = {(m.kind, m.key): m.account_number for m in AccountMapping.objects.filter(company_id=company.pk)}
    assert rows == {("sales_region", "se"): 3001, ("sales_region", "eu"): 3106, ("sales_region", "world"): 3105,
                    ("sales_region", "eu_b2b"): 3108, ("receivable", "*"): 1516, ("bank", "*"): 1930,
                    ("fee", "*"): 6570, ("output_vat", "25"): 2611, ("output_vat", "12"): 2621}
    assert "6040" in AccountMapping.objects.get(company_id=company.pk, kind="fee").note
    from integrations.models import Integration as Live

    settings = Live.objects.get(pk=integration.pk).settings
    assert settings == {"start_date": "2025-01-01", "sales_series": "A", "payout_series": "B", "mode": "per_day",
                        "activation": {"test_voucher_id": 7}, "last_sync": {"to": "2025-02-01"}}

    back = _migrate(BEFORE)
    restored = back.get_model("integrations", "Integration").objects.get(pk=integration.pk).settings
    assert restored["receivable_account"] == 1516 and restored["fee_account"] == 6570
    assert restored["vat_accounts"] == {"25": 2611, "12": 2621} and restored["payout_series"] == "B"
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_nets_config_waits_when_a_payout_account_is_missing(nets_active, nets_sandbox):
    AccountMapping.objects.filter(company=nets_active.company, kind="bank").delete()
    assert NetsConfig.of(nets_active).missing() == [("bank", "*")]
    sell(nets_sandbox, day=days_ago(3), country="SWE", reference="B-1")
    payout_id = nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    sync_and_post(nets_active)
    payout = NetsPayout.objects.get(nets_id=payout_id)
    assert payout.state == PayoutState.NEEDS_ATTENTION and "bank" in payout.state_message
    assert not Voucher.objects.filter(company=nets_active.company, kind__in=["sale", "payout"]).exists()
    assert dt.date.today() >= payout.date and D(payout.amount) > 0
