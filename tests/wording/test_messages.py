"""Texts written by the worker are stored as a code with parameters and shown in the reader's language."""

from __future__ import annotations

import ast
import gettext
import pickle
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy

from bookkeeping.models import AuditEvent, Voucher, VoucherState
from bookkeeping.services.audit import audit_record
from bookkeeping.services.vouchers import voucher_queue
from tests.factories import CompanyFactory, UserFactory, VoucherFactory, balanced_voucher, fortnox_plan
from wording import Msg, MsgN, amount, english, render, set_text, stored, text_of

ROOT = Path(settings.BASE_DIR)


def in_language(language, value):
    with translation.override(language):
        return render(stored(value))


def test_a_msg_is_a_string_with_its_code_and_parameters():
    message = Msg("Posted to %(system)s: %(ref)s", system="Fortnox", ref="A 25")
    assert message == "Posted to Fortnox: A 25" and isinstance(message, str)
    assert message.code == "Posted to %(system)s: %(ref)s" and message.params == {"system": "Fortnox", "ref": "A 25"}
    assert pickle.loads(pickle.dumps(message)).data() == message.data()


def test_rendered_in_swedish_and_danish_with_numbers_in_the_readers_format():
    message = Msg("Debit %(debit)s and credit %(credit)s differ by %(diff)s.", debit=Decimal("1234.50"),
                  credit=Decimal("1000.00"), diff=Decimal("234.50"))
    assert in_language("en", message) == "Debit 1234.50 and credit 1000.00 differ by 234.50."
    assert in_language("sv", message) == "Debet 1\xa0234,50 och kredit 1\xa0000,00 skiljer sig åt med 234,50."
    assert in_language("da", message) == "Debet 1\xa0234,50 og kredit 1\xa0000,00 afviger med 234,50."


def test_parameters_that_are_texts_themselves_are_translated_too():
    inner = Msg("Account %(account)s is not active.", account=3001)
    outer = Msg("Row %(row)s: %(message)s", row=2, message=inner)
    assert in_language("sv", outer) == "Rad 2: Konto 3001 är inte aktivt."
    assert in_language("da", Msg("Voucher state %(state)s", state=gettext_lazy("Posted"))).endswith("Bogført")
    assert in_language("da", Msg.join("\n", [inner, "Fortnox: “Konto saknas”"])) == \
        "Konto 3001 er ikke aktiv.\nFortnox: “Konto saknas”"  # the remote's own words stay as they came


def test_plural_forms():
    assert in_language("sv", MsgN("%(n)s voucher queued again.", "%(n)s vouchers queued again.", 1)) == \
        "1 verifikation har lagts i kö igen."
    assert in_language("da", MsgN("%(n)s voucher queued again.", "%(n)s vouchers queued again.", 3)) == \
        "3 bilag er sat i kø igen."


def test_amounts_follow_the_language():
    with translation.override("sv"):
        assert amount(Decimal("83849")) == "83\xa0849,00"
    with translation.override("da"):
        assert amount("1234.5") == "1\xa0234,50"
    with translation.override("en"):
        assert amount(Decimal("1234.5")) == "1234.50"


@pytest.mark.django_db
def test_stored_as_english_text_and_code_and_shown_translated():
    company = CompanyFactory()
    with translation.override("sv"):  # written while Swedish is active: still stored in English, with its code
        event = audit_record(action="test", company=company,
                             message=Msg("Account %(account)s is not active.", account=3001))
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.message == "Account 3001 is not active."
    assert event.coded_texts["message"]["m"] == "Account %(account)s is not active."
    with translation.override("da"):
        assert text_of(event, "message") == "Konto 3001 er ikke aktiv."


@pytest.mark.django_db
def test_rows_written_before_and_fields_overwritten_in_plain_text_show_as_they_are():
    company = CompanyFactory()
    old = AuditEvent.objects.create(company=company, action="old", message="Written by an older version")
    with translation.override("sv"):
        assert text_of(old, "message") == "Written by an older version"
    voucher = VoucherFactory(company=company)
    set_text(voucher, "last_error", Msg("Account %(account)s is not active.", account=1))
    voucher.last_error = "overwritten by code that knows nothing of codes"
    with translation.override("sv"):
        assert text_of(voucher, "last_error") == "overwritten by code that knows nothing of codes"


@pytest.mark.django_db
def test_secrets_are_redacted_in_the_parameters_too():
    company = CompanyFactory()
    event = audit_record(action="test", company=company,
                         message=Msg("Refused: %(error)s", error="Bearer abcdefghijklmnopqrstuvwxyz0123456789"))
    assert "abcdefghijklmnop" not in event.message and "abcdefghijklmnop" not in str(event.coded_texts)


@pytest.mark.django_db
def test_a_voucher_refused_by_the_worker_reads_swedish_in_the_admin(client):
    company = CompanyFactory(name="Brf Testgården")
    fortnox_plan(company)
    voucher = balanced_voucher(company, rows=((9999, "100.00", "0"), (3011, "0", "100.00")))
    voucher_queue(voucher=voucher, actor="worker")
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.FAILED and "Account 9999 is not in the account plan" in voucher.last_error
    client.force_login(UserFactory(username="root", is_superuser=True))
    page = client.get(reverse("admin:bookkeeping_voucher_change", args=[voucher.pk]),
                      HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Konto 9999 finns inte i kontoplanen" in page
    assert "Account 9999 is not in the account plan" not in page


def _msg_literals():
    """Every ``Msg("…")`` and ``MsgN("…", "…", n)`` text in the project's code."""
    found = set()
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in (".venv", "tests", "var", "node_modules") or "migrations" in parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Msg", "MsgN"):
                # the singular (MsgN's plural is in the same catalog entry)
                strings = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                found.update((str(path.relative_to(ROOT)), s) for s in strings)
    return found


@pytest.mark.parametrize("language", ["sv", "da"])
def test_every_text_the_worker_writes_has_a_swedish_and_a_danish_translation(language):
    catalog = gettext.translation("django", localedir=str(settings.LOCALE_PATHS[0]), languages=[language])
    missing = sorted({f"{where}: {text!r}" for where, text in _msg_literals()
                      if text not in catalog._catalog and (text, 0) not in catalog._catalog})
    assert not missing, f"{len(missing)} texts without a {language} translation:\n" + "\n".join(missing[:40])


def test_makemessages_collects_msg():
    from wording.management.commands.makemessages import Command

    assert "--keyword=Msg" in Command.xgettext_options and "--keyword=MsgN:1,2" in Command.xgettext_options


def test_english_is_what_fields_and_logs_keep():
    with translation.override("da"):
        assert english(Msg("Account %(account)s is not active.", account=3001)) == "Account 3001 is not active."
    assert english("plain") == "plain"
    assert Voucher.coded_text_fields == ("last_error",)
