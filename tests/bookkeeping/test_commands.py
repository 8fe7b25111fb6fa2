"""The automation twins: --json output and honest exit codes."""

import io
import json

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from bookkeeping.models import Company, Voucher
from bookkeeping.schedules import SCHEDULES


def run_json(*args):
    out = io.StringIO()
    call_command(*args, "--json", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def test_company_add(db, staff_user):
    result = run_json("company_add", "brf-solsidan", "--name", "Brf Solsidan", "--country", "SE",
                      "--org-number", "769600-9999", "--member", staff_user.username)
    assert result["ok"] and result["base_currency"] == "SEK"
    company = Company.objects.get(slug="brf-solsidan")
    assert list(company.members.all()) == [staff_user]
    dk = run_json("company_add", "demo-dk", "--name", "Demo ApS", "--country", "DK")
    assert dk["base_currency"] == "DKK"


def test_company_add_refuses_a_duplicate_with_exit_code(db):
    run_json("company_add", "dup", "--name", "A", "--country", "SE")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("company_add", "dup", "--name", "B", "--country", "SE", "--json", stdout=out)
    assert exit_info.value.code == 1
    assert json.loads(out.getvalue())["ok"] is False


def test_setup_schedules_is_idempotent(db):
    first = run_json("setup_schedules")
    second = run_json("setup_schedules")
    assert all(item["created"] for item in first["schedules"])
    assert not any(item["created"] for item in second["schedules"])
    assert Schedule.objects.filter(name__startswith="kontera: ").count() == len(SCHEDULES)
    Schedule.objects.create(name="kontera: retired job", func="bookkeeping.tasks.sweep", schedule_type="I", minutes=1)
    assert run_json("setup_schedules")["removed"] == ["kontera: retired job"]


def test_demo_is_idempotent(db):
    first = run_json("demo", "--no-sandboxes")
    count = Voucher.objects.count()
    second = run_json("demo", "--no-sandboxes")
    assert first["companies"] == second["companies"] == ["brf-exempelgarden", "exempel-handel", "demo-aps"]
    assert Voucher.objects.count() == count == 3
    a25 = Voucher.objects.get(source_reference="A25")
    assert a25.totals()[0] == 83849
