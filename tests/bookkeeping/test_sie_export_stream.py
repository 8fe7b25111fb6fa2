"""The SIE export streams: the file is written a batch of vouchers at a time (bench/import_scale.py measures
100,000), yet it is the same file the one-piece writer makes, and the command and the page hand it out whole."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from bookkeeping import sie
from bookkeeping.models import Voucher, VoucherRow, VoucherState
from bookkeeping.services import sie_export as export
from bookkeeping.services.voucher_totals import voucher_totals_refresh
from tests.factories import fortnox_plan


@pytest.fixture
def posted(company):
    fortnox_plan(company, accounts=(1510, 3011, 2610), cost_centres=("100",))
    today = timezone.localdate()
    for number in range(1, 8):
        voucher = Voucher.objects.create(
            company=company, system="fortnox", kind="journal", source_system="ledger", source_reference=f"J{number}",
            date=today, description=f"Hyror {number}", series="A", state=VoucherState.POSTED, remote_series="A",
            remote_number=str(number))
        VoucherRow.objects.create(voucher=voucher, position=0, account="1510", debit=Decimal("125.00"), text="Avi")
        VoucherRow.objects.create(voucher=voucher, position=1, account="3011", credit=Decimal("100.00"),
                                  cost_centre="100", project="P1" if number % 2 else "", source_key="Hyra bostad")
        VoucherRow.objects.create(voucher=voucher, position=2, account="2610", credit=Decimal("25.00"))
        voucher_totals_refresh(voucher=voucher)
    # not exported: another state, another day
    Voucher.objects.create(company=company, system="fortnox", kind="journal", source_system="ledger",
                           source_reference="DRAFT", date=today, description="utkast", series="A")
    return today


def test_streamed_in_small_batches_it_is_the_file_the_one_piece_writer_makes(company, posted, monkeypatch):
    monkeypatch.setattr(export, "CHUNK", 4)  # rows fetched four at a time: vouchers cross the chunks
    chunks = []

    class Out(io.BytesIO):
        def write(self, data):
            chunks.append(len(data))
            return super().write(data)

    out = Out()
    real = sie.write_stream
    monkeypatch.setattr(sie, "write_stream", lambda *a, **kw: real(*a, **{**kw, "chunk_lines": 10}))
    assert export.sie_export_write(company=company, date_from=posted, date_to=posted, out=out) == 7
    assert len(chunks) > 3  # written as it went, not at the end

    vouchers = list(sie.read(out.getvalue()).vouchers)
    assert [v.number for v in vouchers] == [str(n) for n in range(1, 8)]
    expected = sie.write(vouchers=vouchers, company_name=company.name, org_number=company.org_number,
                         fiscal_year=(dt.date(posted.year, 1, 1), dt.date(posted.year, 12, 31)),
                         accounts={"1510": "Account 1510", "3011": "Account 3011", "2610": "Account 2610"},
                         objects={("1", "100"): "100", ("6", "P1"): "P1"}, text_limit=export.TEXT_LIMIT)
    assert sie.read(expected).vouchers == vouchers
    text = out.getvalue().decode("cp437")
    assert text.count("#VER ") == 7 and "#OBJEKT 6 \"P1\"" in text and "[Hyra bostad]" in text
    assert "utkast" not in text


def test_a_voucher_that_cannot_be_written_stops_the_file_and_the_command_keeps_nothing(company, posted, tmp_path):
    bad = Voucher.objects.get(source_reference="J4")
    VoucherRow.objects.filter(voucher=bad, position=2).update(credit=Decimal("24.00"))  # no longer balances
    voucher_totals_refresh(voucher=bad)
    target = tmp_path / "export.se"
    with pytest.raises(sie.SieError, match="does not balance"):
        call_command("sie_export", company.slug, "--from", str(posted), "--to", str(posted), "--output", str(target),
                     stdout=io.StringIO())
    assert not target.exists() and not list(tmp_path.iterdir())


def test_the_command_and_the_page_hand_out_the_whole_file(company, posted, tmp_path, admin_client):
    target = tmp_path / "export.se"
    call_command("sie_export", company.slug, "--from", str(posted), "--to", str(posted), "--output", str(target),
                 stdout=io.StringIO())
    from_command = target.read_bytes()
    assert from_command.count(b"#VER ") == 7
    response = admin_client.post(reverse("admin:bookkeeping_voucher_export_sie"),
                                 {"company": company.pk, "date_from": posted, "date_to": posted})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    from_page = b"".join(response.streaming_content)
    assert from_page == from_command
