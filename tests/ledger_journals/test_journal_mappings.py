"""A property-ledger file in the source's own language goes to Fortnox through the account mappings.

The source (as the dinafastigheter guide's checklist has it) books on its own accounts, categories
and add-on codes, puts a property on each rent row and an owner on each journal. Mapped, it lands in
Fortnox on the mapped accounts, cost centres and series; unmapped, it waits (and says so), is listed
on the unmapped-values page, and goes on by itself once mapped; a mapping changed after posting
leaves the posted voucher as it is.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from bookkeeping.models import AccountMapping, AuditEvent, Voucher, VoucherState
from bookkeeping.services.mappings import account_mapping_save
from bookkeeping.services.sending import vouchers_dispatch
from bookkeeping.services.sie_export import sie_export
from ledger_journals.services.journal_import import JournalImportError, journals_import
from ledger_journals.services.journal_push import journals_push
from tests.conftest import FORTNOX_CLIENT  # noqa: F401  (the sandbox fixtures come from conftest)

TENANT = 1046823
OWNER = "Brf Exempelgården"

# The source's own chart: its 1101 (rent ledger) is Fortnox 1510, its 1510 (bank) is Fortnox 1930, its 3011
# (rents) is Fortnox 3015; 2610 and 3015 are the same in both; P-plats is a category; properties are
# cost centres; the owner has its own voucher series.
MAPPINGS = (
    "company,system,kind,key,account,cost_centre,project,vat_code,series,note\n"
    "brf-exempel,fortnox,ledger_account,1101,1510,,,,,hyresreskontra\n"
    "brf-exempel,fortnox,ledger_account,1510,1930,,,,,bank\n"
    "brf-exempel,fortnox,ledger_account,3011,3015,,,,,\n"
    "brf-exempel,fortnox,ledger_category,P-plats,3016,,,,,\n"
    "brf-exempel,fortnox,property,Gården 1,,100,,,,\n"
    "brf-exempel,fortnox,property,Gården 2,,200,,,,\n"
    "brf-exempel,fortnox,property,Parkeringen,,300,,,,\n"
    f"brf-exempel,fortnox,owner,{OWNER},,,,,K,\n"
)


def source_csv(day, journal="A25", category="P-plats") -> bytes:
    rows = [
        # account, debit, credit, property, category, text
        ("1101", "0", "12000", "", "", "Hyresavier december"),
        ("1510", "83849", "0", "", "", "Inbetalningar"),
        ("2610", "0", "904", "", "", "Moms lokaler"),
        ("3011", "0", "65568", "Gården 1", "", "Hyror bostäder"),
        ("3015", "0", "5247", "Gården 2", "", "Hyror lokaler"),
        ("", "0", "130", "Parkeringen", category, "P-platser"),
    ]
    lines = ["journal,date,account,debit,credit,property,category,owner,text"]
    lines += [f"{journal},{day},{a},{d},{c},{p},{cat},{OWNER},{t}" for a, d, c, p, cat, t in rows]
    return ("\n".join(lines) + "\n").encode()


def import_mappings(tmp_path, text=MAPPINGS):
    path = tmp_path / "mappings.csv"
    path.write_text(text, encoding="utf-8")
    call_command("import", "bookkeeping.resources.AccountMappingResource", str(path), "--no-input")


def remote_rows(voucher):
    return sorted((r.account, r.debit, r.credit, r.cost_center) for r in voucher.rows if not r.removed)


@pytest.fixture
def series_k(connected_fortnox, fortnox_sandbox):
    """A manual series for the owner (the seeded chart has K)."""
    return "K"


def test_a_file_in_the_sources_own_plan_lands_on_the_mapped_accounts(connected_fortnox, fortnox_sandbox, tmp_path,
                                                                      series_k):
    company = connected_fortnox.company
    import_mappings(tmp_path)
    result = journals_import(company=company, data=source_csv(timezone.localdate()), filename="a25.csv",
                             actor="test")
    assert (result.created, result.waiting) == (1, 0)
    voucher = Voucher.objects.get(company=company, source_reference="A25")
    assert voucher.series == "K"  # the owner's series
    assert journals_push(company=company, references=["A25"], actor="test").queued == 1
    vouchers_dispatch(max_seconds=20)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED, voucher.last_error

    [remote] = fortnox_sandbox.vouchers(TENANT)
    assert remote.series == "K"
    assert remote_rows(remote) == sorted([
        (1510, Decimal("0.00"), Decimal("12000.00"), ""),
        (1930, Decimal("83849.00"), Decimal("0.00"), ""),
        (2610, Decimal("0.00"), Decimal("904.00"), ""),  # a valid Fortnox account without a mapping passes
        (3015, Decimal("0.00"), Decimal("65568.00"), "100"),
        (3015, Decimal("0.00"), Decimal("5247.00"), "200"),
        (3016, Decimal("0.00"), Decimal("130.00"), "300"),
    ])
    # each row keeps what the source said beside what was posted
    said = [(r.source_kind, r.source_key, r.account) for r in voucher.rows.order_by("position")]
    assert said == [("ledger_account", "1101", "1510"), ("ledger_account", "1510", "1930"),
                    ("ledger_account", "2610", "2610"), ("ledger_account", "3011", "3015"),
                    ("ledger_account", "3015", "3015"), ("ledger_category", "P-plats", "3016")]


def test_an_unmapped_value_waits_is_listed_and_goes_on_by_itself_once_mapped(
        client, connected_fortnox, fortnox_sandbox, tmp_path, series_k, staff_user,
        django_capture_on_commit_callbacks):
    company = connected_fortnox.company
    import_mappings(tmp_path)
    day = timezone.localdate()
    result = journals_import(company=company, data=source_csv(day, "A26", category="Tvättstuga"),
                             filename="a26.csv", actor="test")
    assert (result.created, result.waiting) == (1, 1)  # imported, not refused
    voucher = Voucher.objects.get(company=company, source_reference="A26")
    assert voucher.state == VoucherState.DRAFT and voucher.last_error_code == "unmapped"
    assert "Tvättstuga" in voucher.last_error

    queued = journals_push(company=company, references=["A26"], actor="test")
    assert (queued.queued, queued.failed, queued.awaiting_mapping) == (0, 0, 1)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.AWAITING_MAPPING
    vouchers_dispatch(max_seconds=5)
    assert fortnox_sandbox.vouchers(TENANT) == []  # nothing went out

    # the unmapped-values page lists it, with the waiting journal, and maps it
    company.members.add(staff_user)
    staff_user.user_permissions.set(Permission.objects.filter(
        codename__in=["view_accountmapping", "change_accountmapping", "add_accountmapping", "view_voucher"]))
    client.force_login(staff_user)
    url = reverse("admin:bookkeeping_accountmapping_unmapped") + f"?company={company.pk}&flow=ledger_journals"
    page = client.get(url)
    assert page.status_code == 200
    [row] = page.context["rows"]
    assert (row["gap"].kind, row["gap"].key, row["gap"].occurrences) == ("ledger_category", "Tvättstuga", 1)
    assert [item.label for item in row["gap"].items] == ["A26"]
    assert "A26" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(url, {"system": "fortnox", "kind": "ledger_category", "key": "Tvättstuga",
                                  "account_number": "3990", "cost_centre": ""})
    assert saved.status_code == 302
    vouchers_dispatch(max_seconds=20)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    [remote] = fortnox_sandbox.vouchers(TENANT)
    assert (3990, Decimal("0.00"), Decimal("130.00"), "300") in remote_rows(remote)
    assert client.get(url).context["rows"] == []


def test_a_mapping_changed_after_posting_leaves_the_posted_voucher_untouched(
        connected_fortnox, fortnox_sandbox, tmp_path, series_k, django_capture_on_commit_callbacks):
    company = connected_fortnox.company
    import_mappings(tmp_path)
    journals_import(company=company, data=source_csv(timezone.localdate()), filename="a25.csv", actor="test")
    journals_push(company=company, references=["A25"], actor="test")
    vouchers_dispatch(max_seconds=20)
    voucher = Voucher.objects.get(company=company, source_reference="A25")
    before = list(voucher.rows.values_list("account", "cost_centre", "debit", "credit"))
    remote_before = remote_rows(fortnox_sandbox.vouchers(TENANT)[0])

    with django_capture_on_commit_callbacks(execute=True):
        account_mapping_save(company=company, system="fortnox", kind="ledger_account", key="3011",
                             account_number=3001, actor="test")
    vouchers_dispatch(max_seconds=5)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED
    assert list(voucher.rows.values_list("account", "cost_centre", "debit", "credit")) == before
    assert len(fortnox_sandbox.vouchers(TENANT)) == 1
    assert remote_rows(fortnox_sandbox.vouchers(TENANT)[0]) == remote_before
    # the same file imported again is unchanged, not rewritten with the new meaning
    again = journals_import(company=company, data=source_csv(timezone.localdate()), filename="a25.csv", actor="t")
    assert (again.unchanged, again.updated, again.created) == (1, 0, 0)


def test_a_change_before_sending_is_applied_to_the_waiting_draft(connected_fortnox, tmp_path, series_k,
                                                                  django_capture_on_commit_callbacks):
    company = connected_fortnox.company
    import_mappings(tmp_path)
    journals_import(company=company, data=source_csv(timezone.localdate()), filename="a25.csv", actor="test")
    voucher = Voucher.objects.get(company=company, source_reference="A25")
    with django_capture_on_commit_callbacks(execute=True):
        account_mapping_save(company=company, system="fortnox", kind="owner", key=OWNER, series="A", actor="t")
        account_mapping_save(company=company, system="fortnox", kind="ledger_account", key="3011",
                             account_number=3011, actor="test")
    voucher.refresh_from_db()
    assert voucher.series == "A" and voucher.state == VoucherState.DRAFT
    row = voucher.rows.get(source_key="3011")
    assert (row.account, row.cost_centre) == ("3011", "100")
    assert AuditEvent.objects.filter(voucher=voucher, action="mapping:applied").exists()


def test_a_file_that_already_speaks_fortnox_passes_as_before(connected_fortnox):
    day = timezone.localdate()
    data = f"journal,date,account,debit,credit,cost_centre\nX1,{day},1930,100,0,\nX1,{day},3011,0,100,100\n"
    result = journals_import(company=connected_fortnox.company, data=data.encode(), filename="x.csv", actor="t")
    assert (result.created, result.waiting) == (1, 0)
    assert not AccountMapping.objects.exists()
    voucher = Voucher.objects.get(source_reference="X1")
    assert list(voucher.rows.values_list("account", "cost_centre")) == [("1930", ""), ("3011", "100")]


def test_the_fortnox_account_named_explicitly_wins_over_a_mapping(connected_fortnox, tmp_path):
    import_mappings(tmp_path)
    day = timezone.localdate()
    data = (f"journal,date,account,fortnox_account,debit,credit\nE1,{day},1510,1940,100,0\n"
            f"E1,{day},1101,,0,100\n").encode()
    journals_import(company=connected_fortnox.company, data=data, filename="e.csv", actor="t")
    accounts = list(Voucher.objects.get(source_reference="E1").rows.values_list("account", flat=True))
    assert accounts == ["1940", "1510"]


def test_format_errors_still_refuse_the_whole_file_with_line_numbers(connected_fortnox):
    day = timezone.localdate()
    data = (f"journal,date,account,debit,credit,category\nB1,{day},1930,100,0,\nB1,{day},,0,90,Okänd\n"
            f"B2,{day},,abc,0,\n").encode()
    with pytest.raises(JournalImportError) as caught:
        journals_import(company=connected_fortnox.company, data=data, filename="b.csv", actor="t")
    lines = {line for line, _message in caught.value.errors}
    assert {4} <= lines  # the row that names no account at all
    assert any("differ" in message for _line, message in caught.value.errors)  # unbalanced B1
    assert not Voucher.objects.exists()


def test_the_sie_export_shows_what_the_source_called_a_row(connected_fortnox, fortnox_sandbox, tmp_path, series_k):
    company = connected_fortnox.company
    import_mappings(tmp_path)
    day = timezone.localdate()
    journals_import(company=company, data=source_csv(day), filename="a25.csv", actor="test")
    journals_push(company=company, references=["A25"], actor="test")
    vouchers_dispatch(max_seconds=20)
    exported = sie_export(company=company, date_from=day, date_to=day).decode("cp437")
    assert '#TRANS 3016 {1 "300"} -130.00' in exported and "P-platser [P-plats]" in exported
    assert "Hyresavier december [1101]" in exported
    assert "Moms lokaler" in exported and "[2610]" not in exported  # the same account: nothing to add
