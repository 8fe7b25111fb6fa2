"""Uploads: a limit per kind checked before the file is read, files kept between preview and confirmation
only for their uploader, deleted on cancel, and abandoned ones cleaned by a scheduled job."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from bookkeeping.models import Voucher
from bookkeeping.schedules import SCHEDULES
from bookkeeping.services.uploads import uploads_cleanup
from tests.factories import CompanyFactory, UserFactory

CSV = (b"journal,date,series,account,debit,credit\n"
       b"J1,2022-12-01,A,1930,100.00,0\nJ1,2022-12-01,A,3011,0,100.00\n")
IMPORT = "admin:bookkeeping_voucher_import_journals"


@pytest.fixture
def bookkeeper(db, client):
    company = CompanyFactory(name="Brf Uppladdning", slug="brf-upp")
    user = UserFactory(username="uppladdare")
    user.groups.add(Group.objects.get(name="Bookkeeper"))
    company.members.add(user)
    client.force_login(user)
    return company, user


def stored_files(settings) -> list[Path]:
    root = Path(settings.KONTERA_UPLOAD_DIR)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_file_over_the_limit_is_stopped_before_it_is_read(client, bookkeeper, settings, monkeypatch):
    company, _user = bookkeeper
    settings.KONTERA_UPLOAD_LIMITS = {**settings.KONTERA_UPLOAD_LIMITS, "journals": 1024}
    from django.core.files.uploadhandler import MemoryFileUploadHandler

    received = []
    original = MemoryFileUploadHandler.receive_data_chunk
    monkeypatch.setattr(MemoryFileUploadHandler, "receive_data_chunk",
                        lambda self, data, start: received.append(len(data)) or original(self, data, start))
    big = CSV + b"#" * 200_000
    response = client.post(reverse(IMPORT), {"company": company.pk, "file": SimpleUploadedFile("big.csv", big)})
    page = response.content.decode()
    assert response.status_code == 200
    assert ("The file is larger than 1 KB, the most this import takes (set by KONTERA_MAX_UPLOAD_JOURNALS_MB)"
            in page)
    assert sum(received) == 0  # the body's length gave it away: not one byte was kept
    assert not stored_files(settings) and not Voucher.objects.exists()


def test_the_limit_is_counted_while_reading_when_the_request_length_does_not_tell(client, bookkeeper, settings,
                                                                                 monkeypatch):
    """A file just over the limit fits in the room left for the form's fields: counting its chunks stops it."""
    from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler

    company, _user = bookkeeper
    settings.KONTERA_UPLOAD_LIMITS = {**settings.KONTERA_UPLOAD_LIMITS, "journals": 100 * 1024}
    kept = []
    for handler in (MemoryFileUploadHandler, TemporaryFileUploadHandler):
        original = handler.receive_data_chunk
        monkeypatch.setattr(handler, "receive_data_chunk",
                            lambda self, data, start, original=original: kept.append(len(data)) or original(
                                self, data, start))
    response = client.post(reverse(IMPORT), {"company": company.pk, "series": "",
                                             "file": SimpleUploadedFile("j.csv", CSV + b"#" * 150 * 1024)})
    assert "The file is larger than 100 KB" in response.content.decode()
    assert sum(kept) <= 100 * 1024  # reading stopped at the limit, not at the end of the file
    assert not stored_files(settings)


def test_the_command_refuses_a_file_over_the_limit_before_reading_it(bookkeeper, settings, tmp_path, monkeypatch):
    company, _user = bookkeeper
    settings.KONTERA_UPLOAD_LIMITS = {**settings.KONTERA_UPLOAD_LIMITS, "journals": 1024}
    path = tmp_path / "big.se"
    path.write_bytes(b"#FLAGGA 0\n" + b" " * 5000)
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or b"")
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("journals_import", company.slug, str(path), "--json", stdout=out, stderr=io.StringIO())
    assert "KONTERA_MAX_UPLOAD_JOURNALS_MB" in json.loads(out.getvalue())["errors"][0]["message"]
    assert not read


def test_cancel_deletes_the_uploaded_file(client, bookkeeper, settings):
    company, _user = bookkeeper
    preview = client.post(reverse(IMPORT), {"company": company.pk, "file": SimpleUploadedFile("j.csv", CSV)})
    token = preview.context["token"]
    assert len(stored_files(settings)) == 2  # the file and its note
    response = client.post(reverse(IMPORT), {"cancel": token})
    assert response.status_code == 302 and not stored_files(settings)
    expired = client.post(reverse(IMPORT), {"token": token}, follow=True)
    assert "The upload expired" in expired.content.decode() and not Voucher.objects.exists()


def test_confirming_deletes_the_file_and_nobody_else_can_confirm_it(client, bookkeeper, settings):
    company, _user = bookkeeper
    token = client.post(reverse(IMPORT), {"company": company.pk,
                                          "file": SimpleUploadedFile("j.csv", CSV)}).context["token"]
    intruder = UserFactory(username="inkraktare")
    intruder.groups.add(Group.objects.get(name="Bookkeeper"))
    company.members.add(intruder)
    client.force_login(intruder)
    client.post(reverse(IMPORT), {"token": token})
    assert not Voucher.objects.exists() and stored_files(settings)
    client.force_login(bookkeeper[1])
    assert client.post(reverse(IMPORT), {"token": token}).status_code == 302
    assert Voucher.objects.filter(company=company).count() == 1 and not stored_files(settings)


def test_abandoned_uploads_are_cleaned_on_a_schedule(client, bookkeeper, settings):
    company, _user = bookkeeper
    client.post(reverse(IMPORT), {"company": company.pk, "file": SimpleUploadedFile("j.csv", CSV)})
    fresh = stored_files(settings)
    assert uploads_cleanup() == 0 and stored_files(settings) == fresh
    hours_ago = time.time() - 3 * 3600
    for path in fresh:
        os.utime(path, (hours_ago, hours_ago))
    from bookkeeping.tasks import clean_abandoned_uploads

    assert clean_abandoned_uploads() == {"uploads_removed": 1}
    assert not stored_files(settings)
    assert any(spec.func == "bookkeeping.tasks.clean_abandoned_uploads" for spec in SCHEDULES)


def test_a_big_preview_lists_a_bounded_number_of_journals(client, bookkeeper):
    company, _user = bookkeeper
    rows = "".join(f"J{n},2022-12-01,A,1930,1.00,0\nJ{n},2022-12-01,A,3011,0,1.00\n" for n in range(450))
    response = client.post(reverse(IMPORT), {"company": company.pk, "file": SimpleUploadedFile(
        "many.csv", ("journal,date,series,account,debit,credit\n" + rows).encode())})
    page = response.content.decode()
    assert "450 journals for Brf Uppladdning" in page
    assert page.count("<tr><td>J") == 200 and "and 250 more journals" in page
