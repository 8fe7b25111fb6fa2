"""netseasy_setup, netseasy_sync and netseasy_confirm: --json output and honest exit codes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from bookkeeping.models import Voucher, VoucherKind
from card_payments.models import NetsPayout
from integrations.models import Integration, IntegrationStatus
from tests.netseasy_fixtures import NETS_KEY, OTHER_NETS_KEY, days_ago, sell

SETUP = ["--start-date", days_ago(30).isoformat(), "--sales-account-se", "3001", "--sales-account-eu", "3106",
         "--sales-account-world", "3105"]


def run(*args, capture=None) -> tuple[int, dict]:
    out = StringIO()
    code = 0
    try:
        if capture:
            with capture(execute=True):
                call_command(*args, "--json", stdout=out, stderr=StringIO())
        else:
            call_command(*args, "--json", stdout=out, stderr=StringIO())
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


def test_setup_saves_checks_the_key_and_queues_the_test_voucher(connected_fortnox, nets_sandbox,
                                                                 django_capture_on_commit_callbacks):
    code, result = run("netseasy_setup", "brf-exempel", "--secret-key", NETS_KEY, *SETUP, "--mode", "per_day",
                       capture=django_capture_on_commit_callbacks)
    assert code == 0 and result["ok"] is True
    assert result["status"] == "awaiting_confirmation"
    assert result["settings"]["receivable_account"] == 1580 and result["settings"]["fee_account"] == 6040
    assert result["settings"]["mode"] == "per_day"
    assert result["key_check"] == "Nets Easy accepts the secret key."
    assert result["test_voucher"]["id"] == Voucher.objects.get(kind=VoucherKind.TEST).pk
    assert NETS_KEY not in json.dumps(result) and result["secret_key"].startswith("••••")
    assert "netseasy_confirm brf-exempel" in result["next"]


def test_setup_refuses_a_wrong_account_with_exit_1(connected_fortnox, nets_sandbox):
    code, result = run("netseasy_setup", "brf-exempel", "--secret-key", NETS_KEY, *SETUP, "--fee-account", "6999")
    assert code == 1 and result["ok"] is False
    assert "fee account" in result["error"] and "6999 is not in the account plan" in result["error"]
    assert not Integration.objects.filter(system="netseasy").exists()


def test_setup_with_a_refused_key_exits_1(connected_fortnox, nets_sandbox):
    code, result = run("netseasy_setup", "brf-exempel", "--secret-key", OTHER_NETS_KEY, *SETUP)
    assert code == 1 and "does not accept the secret key" in result["key_check"]


def test_setup_for_an_unknown_company_exits_1(db):
    code, result = run("netseasy_setup", "finns-inte", "--secret-key", NETS_KEY, *SETUP)
    assert code == 1 and "No company with slug" in result["error"]


def test_confirm_before_the_test_voucher_landed_exits_1(connected_fortnox, nets_sandbox):
    run("netseasy_setup", "brf-exempel", "--secret-key", NETS_KEY, *SETUP)  # on_commit not run: still queued
    code, result = run("netseasy_confirm", "brf-exempel")
    assert code == 1 and "test voucher must be in Fortnox" in result["message"]
    assert result["status"] == "awaiting_confirmation"


def test_confirm_then_sync(nets_saved, nets_sandbox):
    sell(nets_sandbox, day=days_ago(3))
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    code, result = run("netseasy_sync", "brf-exempel")
    assert code == 0 and result["vouchers_created"] == 0 and result["booking_paused"]
    code, result = run("netseasy_confirm", "brf-exempel")
    assert code == 0 and result["status"] == IntegrationStatus.ACTIVE
    code, result = run("netseasy_sync", "brf-exempel", "--from", days_ago(10).isoformat())
    assert code == 0 and result["ok"] is True
    assert (result["payouts_seen"], result["vouchers_created"], result["payouts_booked"]) == (1, 2, 1)
    assert result["from_date"] == days_ago(10).isoformat()
    code, again = run("netseasy_sync", "brf-exempel")
    assert code == 0 and again["vouchers_created"] == 0


def test_sync_exits_1_when_a_payout_needs_attention(nets_active, nets_sandbox):
    sell(nets_sandbox, day=days_ago(3), country="DEU", lines=((10000, 1900, 1),))  # 19 % VAT: no account set
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    code, result = run("netseasy_sync", "brf-exempel")
    assert code == 1 and result["ok"] is False and result["needs_attention"] == 1
    payout = NetsPayout.objects.get()
    assert "19 % VAT" in payout.state_message
    assert not Voucher.objects.exclude(kind=VoucherKind.TEST).exists()  # the whole payout waits


def test_sync_exits_1_when_nets_is_down(nets_active, nets_sandbox):
    nets_sandbox.faults.inject("status", status=500, times=3)
    code, result = run("netseasy_sync", "brf-exempel")
    assert code == 1 and "internal error (500)" in result["errors"][0]


@pytest.mark.parametrize("command", ["netseasy_sync", "netseasy_confirm"])
def test_commands_need_the_integration(connected_fortnox, command):
    code, result = run(command, "brf-exempel")
    assert code == 1 and "not set up" in result["error"]


def test_sync_rejects_a_bad_date(nets_active):
    code, result = run("netseasy_sync", "brf-exempel", "--from", "igår")
    assert code == 1 and "YYYY-MM-DD" in result["error"]


def test_the_worker_schedules_are_declared():
    from bookkeeping.schedules import SCHEDULES

    funcs = {spec.func for spec in SCHEDULES if spec.func.startswith("card_payments.tasks.")}
    assert funcs == {"card_payments.tasks.sync_all", "card_payments.tasks.test_voucher_followups"}
    from importlib import import_module

    for func in funcs:
        module, name = func.rsplit(".", 1)
        assert callable(getattr(import_module(module), name))


def test_the_scheduled_sync_books_every_active_integration(nets_active, nets_sandbox):
    from card_payments.services.sync import sync_progress
    from card_payments.tasks import sync_all

    sell(nets_sandbox, day=days_ago(3))
    nets_sandbox.settle_payout(NETS_KEY, date=days_ago(2))
    assert sync_all() == {"queued": [nets_active.pk]}  # tasks run inline in tests
    assert NetsPayout.objects.get().state == "booked"
    assert sync_progress(nets_active.pk)["state"] == "done"
