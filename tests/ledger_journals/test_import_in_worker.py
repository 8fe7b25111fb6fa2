"""A big journal file is imported by a worker (issue 15): the confirmation hands it over, a page shows how it
goes, the import stays all or nothing, runs once, and only who may import for the company sees it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation

from bookkeeping.models import AuditEvent, Voucher
from ledger_journals.models import JournalImportJob
from ledger_journals.services.journal_import_jobs import journal_import_run
from tests import factories

J = JournalImportJob.State
URL = "admin:bookkeeping_voucher_import_journals"


def _csv(journals: int, *, broken: int | None = None) -> bytes:
    lines = ["journal,date,series,account,debit,credit"]
    for n in range(journals):
        credit = "99.00" if n == broken else "100.00"
        lines += [f"W{n},2022-12-01,A,1930,100.00,0", f"W{n},2022-12-01,A,3011,0,{credit}"]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def small_limit(settings):
    settings.KONTERA_JOURNAL_IMPORT_IN_WORKER_BYTES = 1000  # a few dozen journals count as big here


def _preview_and_confirm(client, company, data, *, capture):
    preview = client.post(reverse(URL), {"company": company.pk, "series": "",
                                         "file": SimpleUploadedFile("big.csv", data, "text/csv")})
    assert preview.status_code == 200, preview.content[:500]
    with capture(execute=True):
        return client.post(reverse(URL), {"token": preview.context["token"]})


def test_a_big_file_is_imported_by_a_worker_and_its_page_says_how_it_went(
        client, company, superuser, small_limit, django_capture_on_commit_callbacks):
    client.force_login(superuser)
    data = _csv(40)
    assert len(data) > 1000
    done = _preview_and_confirm(client, company, data, capture=django_capture_on_commit_callbacks)
    job = JournalImportJob.objects.get()
    assert done.status_code == 302 and done["Location"] == reverse(URL + "_job", args=[job.pk])
    # the task ran when the confirmation committed (tasks run inline in the tests)
    job.refresh_from_db()
    assert job.state == J.DONE and job.result["created"] == 40 and job.attempts == 1
    assert bytes(job.data) == b"" and job.size == len(data)  # the file is not kept once imported
    assert Voucher.objects.filter(company=company, kind="journal").count() == 40
    page = client.get(done["Location"]).content.decode()
    assert "40 new, 0 updated and 0 unchanged journals" in page and 'http-equiv="refresh"' not in page
    assert AuditEvent.objects.filter(company=company, action="journals:import_queued").count() == 1


def test_a_small_file_is_still_imported_in_the_request(client, company, superuser,
                                                        django_capture_on_commit_callbacks):
    client.force_login(superuser)
    done = _preview_and_confirm(client, company, _csv(3), capture=django_capture_on_commit_callbacks)
    assert done.status_code == 302 and "voucher/?company__id__exact" in done["Location"]
    assert not JournalImportJob.objects.exists()
    assert Voucher.objects.filter(company=company).count() == 3


def test_a_refused_file_imports_nothing_and_the_page_gives_the_line_in_the_readers_language(
        client, company, superuser, small_limit):
    job = JournalImportJob.objects.create(company=company, requested_by=superuser, filename="bad.csv",
                                          data=_csv(30, broken=17), size=1)
    assert journal_import_run(job_id=job.pk) == J.REFUSED
    assert not Voucher.objects.filter(company=company).exists()  # all or nothing
    client.force_login(superuser)
    url = reverse(URL + "_job", args=[job.pk])
    page = client.get(url).content.decode()
    assert "nothing was imported" in page and "Line 36" in page
    with translation.override("sv"):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Avvisad" in page and "Rad 36" in page


def test_a_job_runs_once_and_a_claim_left_by_a_dead_worker_is_taken_again(company, superuser, small_limit):
    job = JournalImportJob.objects.create(company=company, requested_by=superuser, filename="big.csv",
                                          data=_csv(5), size=1)
    # a worker claimed it a moment ago and is still on it: another run leaves it alone
    JournalImportJob.objects.filter(pk=job.pk).update(state=J.RUNNING, started_at=timezone.now(), attempts=1)
    assert journal_import_run(job_id=job.pk) == J.RUNNING
    assert not Voucher.objects.filter(company=company).exists()
    # that worker died (its transaction rolled back): once a task could no longer be alive, it is run again
    JournalImportJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - dt.timedelta(minutes=30))
    assert journal_import_run(job_id=job.pk) == J.DONE
    assert journal_import_run(job_id=job.pk) == J.DONE  # finished: nothing happens again
    job.refresh_from_db()
    assert job.attempts == 2 and Voucher.objects.filter(company=company).count() == 5


def test_the_page_is_only_for_who_may_import_for_that_company(client, company, staff_user):
    job = JournalImportJob.objects.create(company=company, filename="big.csv", data=_csv(2), size=1)
    url = reverse(URL + "_job", args=[job.pk])
    staff_user.is_staff = True
    staff_user.save()
    staff_user.user_permissions.set(Permission.objects.filter(codename="import_journals"))
    client.force_login(staff_user)
    assert client.get(url).status_code == 403  # the permission, but not serving the company
    company.members.add(staff_user)
    page = client.get(url)
    assert page.status_code == 200 and 'http-equiv="refresh"' in page.content.decode()  # waiting: refreshes
    other = factories.CompanyFactory(name="Annan AB", slug="annan")
    other.members.add(staff_user)
    staff_user.user_permissions.clear()
    assert client.get(url).status_code == 403  # serving it, without the permission
    assert client.get(reverse(URL + "_job", args=[job.pk + 999])).status_code == 404
