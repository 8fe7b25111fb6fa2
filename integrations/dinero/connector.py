"""Dinero behind the connector interface: master data in, purchase vouchers out (exactly once).

How we find our own voucher after an unknown outcome
----------------------------------------------------
Dinero has no list of purchase vouchers and a purchase voucher cannot carry a GUID we choose
(§2.1, §2.2). What Dinero does list is files, each with the vouchers it is ``Linked`` to (§4), and
a file can be linked to one voucher only. So every voucher (and credit note) we create carries a
file uploaded just before it, named ``<our reference>-…``: the document's own scan, or — when a
document has none — a one-page cover sheet made here. After an unknown outcome ``find_voucher``
lists the used files uploaded since the voucher was prepared, keeps those named for our reference,
reads the vouchers they are linked to (skipping stale links of deleted drafts and vouchers already
cancelled by one of our credit notes) and checks ``ExternalReference``. If the found voucher says
something else than our voucher now does (the document changed meanwhile), it is brought up to date
on the spot, so a retry converges instead of posting twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
from contextlib import contextmanager
from pathlib import Path

from django.core.cache import cache
from django.core.exceptions import ValidationError

from wording import Msg

from ..base import (
    AuthError,
    ConnectionInfo,
    ConnectorError,
    MasterData,
    RemoteOrganisation,
    RemoteValidationError,
    RemoteVoucher,
    RetryableError,
    StaleVersionError,
    VoucherDTO,
)
from . import mapping
from .client import (
    AUTH_MODES,
    DEFAULT_RATE_LIMIT,
    DineroClient,
    FileNotReady,
    NotFound,
    pro_required_message,
    wrong_organisation_message,
)

logger = logging.getLogger("kontera.dinero")

MAX_FILE_BYTES = 6_000_000  # §4: Dinero refuses larger files with 413; we refuse before sending
# "It might take a second for the file to be accessible" (api.dinero.dk/v1/docs, Files): a create
# naming a just-uploaded file may be refused; it is tried again after these pauses (7.5 s at most),
# then left for the next attempt — never a failed voucher for it.
FILE_READY_PAUSES = (0.5, 1.0, 2.0, 4.0)
# Every list Kontera reads names the fields it reads: without fields= Dinero returns only the
# default ones (a recorded accounts list has only AccountNumber and Name, Apaq/dinero-java).
ENTRY_ACCOUNT_FIELDS = "AccountNumber,Name,VatCode,Category,IsHidden"

SETTING_DEFAULTS = {"book_vouchers": True, "rate_limit_per_minute": DEFAULT_RATE_LIMIT, "import_chart": True}
ACCOUNT_SETTINGS = ("error_account", "invoice_counter_account")
CONTACT_REMEMBERED_SECONDS = 24 * 3600
# A voucher's requests at most on the common path: file, create, read-back, book, read after booking
# (when the book's answer lacks the number).
REQUESTS_PER_VOUCHER = 5


@contextmanager
def after_a_create():
    """A create is several calls (POST, read-back, book): once its POST may have taken effect, any
    failure of a later call is an unknown outcome of the create, never "not created" — the next
    attempt finds the voucher by our reference (and books it again if need be) instead of creating
    a second one. A refusal that says for sure nothing stayed (``_verify`` deleted its draft) keeps
    its own verdict."""
    try:
        yield
    except ConnectorError as exc:
        if exc.code != "total_mismatch":
            exc.outcome_unknown = True
        raise


def _bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on", "false", "0", "no", "off", ""}:
        return value.strip().lower() in {"true", "1", "yes", "on"}
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValidationError(Msg("%(name)s must be true or false.", name=name))


class DineroConnector:
    system = "dinero"
    label = "Dinero"
    is_target = True
    requires_series = False
    # GET /v1/{org}/accountingyears (dinero-cli, src/dinero_cli/commands/accounting_years.py): the
    # years come in with the master data and the pre-flight checks the voucher date, as for Fortnox.
    reports_financial_years = True
    secret_fields: tuple[str, ...] = ("api_key",)

    def __init__(self, integration, *, session=None, sleep=None):
        self.integration = integration
        self.client = DineroClient(integration, session=session, sleep=sleep)

    # --- settings -------------------------------------------------------------------------------

    @classmethod
    def validate_settings(cls, settings: dict, *, company=None) -> dict:
        cleaned = {**SETTING_DEFAULTS, **(settings or {})}
        organization_id = str(cleaned.get("organization_id") or "").strip()
        if not organization_id.isdigit():
            raise ValidationError(Msg("organization_id (Dinero's firma-ID) is required and must be a number; "
                                    "use the Dinero setup wizard."))
        cleaned["organization_id"] = organization_id
        if cleaned.get("auth") not in (None, *AUTH_MODES):
            raise ValidationError(Msg("auth must be visma_connect (Visma Connect) or api_key (the company's own "
                                    "personal integration)."))
        cleaned["book_vouchers"] = _bool(cleaned["book_vouchers"], "book_vouchers")
        cleaned["import_chart"] = _bool(cleaned["import_chart"], "import_chart")
        rate = mapping.as_int(cleaned.get("rate_limit_per_minute"))
        if rate is None or not 1 <= rate <= DEFAULT_RATE_LIMIT:
            raise ValidationError(Msg("rate_limit_per_minute must be a whole number from 1 to %(max)s "
                                    "(Dinero allows %(max)s requests a minute per organisation).", max=DEFAULT_RATE_LIMIT))
        cleaned["rate_limit_per_minute"] = rate
        for name in (*ACCOUNT_SETTINGS, "receipt_payment_list"):
            value = cleaned.get(name)
            if value in (None, ""):
                cleaned.pop(name, None)
                continue
            number = mapping.as_int(value)
            if number is None or number <= 0:
                raise ValidationError(Msg("%(name)s must be a positive whole number.", name=name))
            cleaned[name] = number
        return cleaned

    @property
    def settings(self) -> dict:
        return {**SETTING_DEFAULTS, **(self.integration.settings or {})}

    # --- connection and master data -------------------------------------------------------------

    def check_connection(self) -> ConnectionInfo:
        """Token request (wrong key), the organisations the key reaches (wrong id, Pro), then an
        organisation-scoped read (Dinero refuses it with 403 when Pro is missing)."""
        organization_id = self.client.organization_id
        self.client.access_token()
        # VatNumber: the organisation's CVR (HexioDK/Hexio.DineroClient, Models/OrganizationReadModel.cs), compared
        # with the company's before connecting; when Dinero leaves it out, staff are asked to check the name.
        organisations = self.client.get("organizations", org_scoped=False, fields="Id,Name,IsPro,VatNumber") or []
        match = next((o for o in organisations if str(o.get("Id")) == organization_id), None)
        if match is None:
            reachable = ", ".join(f"{o.get('Name')} ({o.get('Id')})" for o in organisations)
            message = wrong_organisation_message(organization_id, self.client.auth)
            if reachable:
                message += " " + Msg("It reaches: %(orgs)s.", orgs=reachable)
            raise AuthError(message, code="41")
        if match.get("IsPro") is False:
            raise AuthError(pro_required_message(organization_id), code="90")
        self.client.get("accounts/deposit", fields="AccountNumber,Name")
        return ConnectionInfo(ok=True, company_name=str(match.get("Name") or ""), remote_company_id=organization_id,
                              organisation_number=str(match.get("VatNumber") or ""))

    def organisations(self) -> tuple[RemoteOrganisation, ...]:
        """The organisations this connection reaches (with Visma Connect: every one the consenting user
        can access), for staff to choose from. ``VatNumber`` is the CVR (HexioDK/Hexio.DineroClient,
        Models/OrganizationReadModel.cs: Id, Name, IsPro, Email, VatNumber); asked for by name because
        a list returns only its default fields otherwise (§11)."""
        found = []
        for item in self.client.get("organizations", org_scoped=False, fields="Id,Name,IsPro,VatNumber") or []:
            if item.get("Id") is None:
                continue
            remote_id = str(item.get("Id"))
            pro = item.get("IsPro") is not False
            found.append(RemoteOrganisation(remote_id=remote_id, name=str(item.get("Name") or ""),
                                            organisation_number=str(item.get("VatNumber") or "").strip(),
                                            usable=pro, problem="" if pro else pro_required_message(remote_id)))
        return tuple(found)

    def import_master_data(self, *, progress=None) -> MasterData:
        def step(message):
            if progress:
                progress(message)

        step(Msg("Reading the organisation"))
        organisations = self.client.get("organizations", org_scoped=False, fields="Id,Name,IsPro") or []
        name = next((str(o.get("Name") or "") for o in organisations
                     if str(o.get("Id")) == self.client.organization_id), "")
        step(Msg("Reading the chart of accounts"))
        entries = self.client.get("accounts/entry", fields=ENTRY_ACCOUNT_FIELDS) or []
        step(Msg("Reading the purchase accounts"))
        purchase = {mapping.as_int(a.get("AccountNumber"))
                    for a in self.client.get("accounts/purchase", fields="AccountNumber") or []}
        step(Msg("Reading the deposit accounts"))
        deposits = self.client.get("accounts/deposit", fields="AccountNumber,Name,IsDefault,IsHidden") or []
        deposit = {mapping.as_int(a.get("AccountNumber")) for a in deposits}
        step(Msg("Reading the VAT types"))
        vat_types = self.client.get("vatTypes") or []
        step(Msg("Reading the accounting years"))
        years = [mapping.accounting_year_dto(y) for y in self.client.get("accountingyears") or []]

        accounts = {}
        for item in [*entries, *deposits]:
            number = mapping.as_int(item.get("AccountNumber"))
            if number is not None and number not in accounts:
                accounts[number] = mapping.account_dto(item, purchase=purchase, deposit=deposit)
        chart = "full"
        if not self.settings.get("import_chart", True):
            # Categories are kept by hand in Kontera: of the P&L accounts only the error account
            # comes in; the balance sheet (counter and deposit accounts) always does.
            chart = "manual"
            keep = {mapping.as_int(self.settings.get(name)) for name in ACCOUNT_SETTINGS}
            accounts = {n: a for n, a in accounts.items() if a.is_balance or a.is_deposit or n in keep}
        return MasterData(
            accounts=tuple(accounts[n] for n in sorted(accounts)),
            vat_codes=tuple(mapping.vat_code_dto(v) for v in vat_types if v.get("VatCode")),
            financial_years=tuple(y for y in years if y is not None),
            company_info={
                "name": name,
                "organization_id": self.client.organization_id,
                "chart": chart,
                "purchase_accounts": sorted(n for n in purchase if n is not None),
                "deposit_accounts": sorted(n for n in deposit if n is not None),
            },
        )

    # --- vouchers ---------------------------------------------------------------------------------

    def post_pace(self):
        """None: a document takes several requests (file, create, read, book), each paced on its own."""
        return None

    def post_voucher(self, voucher: VoucherDTO) -> RemoteVoucher:
        self.client.start_within_budget(REQUESTS_PER_VOUCHER)
        steps: list[str] = []
        read = self._create(voucher, steps)
        with after_a_create():
            read = self._settle(voucher, read, steps)
        return mapping.remote_voucher(read, steps=tuple(steps))

    def find_voucher(self, voucher: VoucherDTO) -> RemoteVoucher | None:
        voucher_guids, credit_notes = self._our_objects(voucher)
        credited = {note.get("CreditNoteFor") for note in credit_notes}
        for guid in voucher_guids:
            try:
                read = self._read(guid)
            except NotFound:
                continue  # a stale link: the draft was deleted (e.g. after a total mismatch)
            if guid in credited or not mapping.carries_reference(read, voucher.reference):
                continue
            if not mapping.same_content(read, voucher):
                # The document changed while the outcome was unknown: bring Dinero's copy up to date.
                return self.update_voucher(voucher, mapping.remote_voucher(read))
            steps = [Msg("Found voucher %(guid)s in Dinero by its file.", guid=guid)]
            read = self._settle(voucher, read, steps)
            return mapping.remote_voucher(read, steps=tuple(steps))
        return None

    def update_voucher(self, voucher: VoucherDTO, previous: RemoteVoucher) -> RemoteVoucher:
        """A draft is replaced in place (PUT, with the Timestamp); a booked voucher is kept, as Dinero
        keeps it, and corrected by a booked credit note plus a new voucher."""
        steps: list[str] = []
        guid = previous.remote_id
        read = None
        if previous.status.lower() in ("", "draft"):
            try:
                read = self._put(voucher, guid, previous.timestamp, steps)
            except StaleVersionError:
                # Changed in Dinero since we read it: read it again, then try once more (or credit
                # it, if it was booked meanwhile).
                current = self._read(guid)
                steps.append(Msg("Voucher %(guid)s had changed in Dinero (outdated Timestamp); read it again.", guid=guid))
                if not mapping.is_booked(current):
                    read = self._put(voucher, guid, current["Timestamp"], steps)
        if read is None:
            old = self._read(guid)
            if not mapping.is_booked(old):
                read = self._put(voucher, guid, old["Timestamp"], steps)
            else:
                self._credit(voucher, old, steps)
                read = self._create(voucher, steps)
        with after_a_create():  # a changed draft or a new voucher is there: never "not created"
            read = self._settle(voucher, read, steps)
        return mapping.remote_voucher(read, steps=tuple(steps))

    # --- steps ----------------------------------------------------------------------------------

    def _read(self, guid: str) -> dict:
        return self.client.get(f"vouchers/purchase/{guid}")

    def _create(self, voucher: VoucherDTO, steps: list[str]) -> dict:
        kind = mapping.purchase_type(voucher)
        self._check_lines(voucher)
        file_guid = self._upload(voucher)  # first: a contact look-up gives the file time to settle
        created = self._with_contact(voucher, kind == "credit", lambda contact: self._once_file_is_ready(
            lambda: self.client.post("vouchers/purchase", mapping.create_payload(
                voucher, contact_guid=contact, file_guid=file_guid), version="v1.2"))) or {}
        with after_a_create():
            guid = str(created.get("Guid") or "")
            if not guid:
                raise RemoteValidationError(Msg("Dinero created the voucher but did not say its Guid."))
            # Verified against what Dinero stored, never against what we sent (§2.2): from the answer
            # when it is the stored voucher, else read back (the documented answer is Guid and
            # Timestamp only, §2.4).
            read = mapping.stored_in_answer(created, guid) or self._read(guid)
            self._verify(voucher, read, delete_on_mismatch=True)
        steps.append(Msg("Created %(kind)s purchase voucher %(guid)s, total %(total)s DKK.", kind=kind, guid=guid, total=f"{mapping.expected_total(voucher):.2f}"))
        return read

    def _put(self, voucher: VoucherDTO, guid: str, timestamp: str, steps: list[str]) -> dict:
        self._check_lines(voucher)
        file_guid = self._upload(voucher)
        self._with_contact(voucher, True, lambda contact: self._once_file_is_ready(
            lambda: self.client.put(f"vouchers/purchase/{guid}", mapping.update_payload(
                voucher, contact_guid=contact, file_guid=file_guid, timestamp=timestamp))))
        read = self._read(guid)
        self._verify(voucher, read, delete_on_mismatch=False)
        steps.append(Msg("Updated draft voucher %(guid)s, total %(total)s DKK.", guid=guid, total=f"{mapping.expected_total(voucher):.2f}"))
        return read

    def _once_file_is_ready(self, call):
        """Run a create or update that names a fresh file; while Dinero says the file is not usable
        yet, wait a little and try again (a refused request created nothing)."""
        self.client.wait_for_file()
        for pause in (*FILE_READY_PAUSES, None):
            try:
                return call()
            except FileNotReady as exc:
                if pause is None:
                    raise RetryableError(Msg("Dinero has not made the uploaded file usable yet; the voucher is "
                                           "sent again shortly. (%(detail)s)", detail=exc.message),
                                         code="file_not_ready", http_status=exc.http_status) from None
                self.client.sleep(pause)
        return None  # not reached

    def _check_lines(self, voucher: VoucherDTO) -> None:
        if not mapping.voucher_lines(voucher):
            raise RemoteValidationError(Msg("The voucher has no expense lines to send."), code="no_lines")

    def _verify(self, voucher: VoucherDTO, read: dict, *, delete_on_mismatch: bool) -> None:
        """Dinero silently drops unknown fields and accepts a zero voucher (§2.2): compare totals."""
        expected = mapping.expected_total(voucher)
        actual = mapping.voucher_total(read)
        if actual == expected:
            return
        deleted = False
        if delete_on_mismatch and not mapping.is_booked(read):
            try:
                self.client.delete(f"vouchers/purchase/{read['Guid']}", {"Timestamp": read["Timestamp"]})
                deleted = True
            except RemoteValidationError:
                deleted = False
        message = Msg("Dinero shows a total of %(actual)s DKK but we sent %(expected)s DKK (Dinero ignores "
                    "fields it does not know).", actual=actual if actual is not None else "–", expected=f"{expected:.2f}")
        message += " " + (Msg("The draft was deleted in Dinero, so nothing wrong stays there.") if deleted
                          else Msg("Check voucher %(guid)s in Dinero.", guid=read.get("Guid")))
        # Not deleted: the voucher stays in Dinero, and the next attempt must find it, not create another.
        raise RemoteValidationError(message, code="total_mismatch", outcome_unknown=not deleted)

    def _settle(self, voucher: VoucherDTO, read: dict, steps: list[str]) -> dict:
        """Book the voucher when the integration books (the default); drafts otherwise."""
        if not self.settings.get("book_vouchers", True) or mapping.is_booked(read):
            return read
        guid = read["Guid"]
        answer = None
        try:
            answer = self.client.post(f"vouchers/purchase/{guid}/book", {"Timestamp": read["Timestamp"]})
        except StaleVersionError:
            read = self._read(guid)
            if not mapping.is_booked(read):
                answer = self.client.post(f"vouchers/purchase/{guid}/book", {"Timestamp": read["Timestamp"]})
        # The voucher number comes with booking: from the answer when it carries the booked voucher
        # (as Dinero documents for invoices' book), else read after booking.
        booked = mapping.booked_in_answer(answer, guid)
        if booked is None:
            # Booked meanwhile by someone else: the read that found it booked has its number.
            booked = read if answer is None and mapping.is_booked(read) else self._read(guid)
        read = booked
        steps.append(Msg("Booked voucher %(guid)s as number %(number)s.", guid=guid, number=read.get("VoucherNumber")))
        return read

    def _credit(self, voucher: VoucherDTO, old: dict, steps: list[str]) -> None:
        """A booked credit note cancelling ``old`` — unless an earlier attempt already made one."""
        _vouchers, notes = self._our_objects(voucher)
        note = next((n for n in notes if n.get("CreditNoteFor") == old["Guid"]), None)
        if note is None:
            lines = [Msg("Credit note made by Kontera: the document changed after voucher %(number)s was booked.", number=old.get("VoucherNumber")), "", *mapping.cover_sheet_lines(voucher)]
            file_guid = self.client.upload(mapping.attachment_name(voucher.reference, "", suffix="credit"),
                                           mapping.cover_sheet_pdf(lines), "application/pdf")
            body = mapping.credit_note_payload(old, file_guid=file_guid)
            created = self._once_file_is_ready(lambda: self.client.post("vouchers/purchase/creditnotes", body)) or {}
            with after_a_create():
                note = self.client.get(f"vouchers/purchase/creditnotes/{created.get('Guid')}")
        with after_a_create():
            if str(note.get("Status") or "").lower() == "draft":
                self.client.post(f"vouchers/purchase/creditnotes/{note['Guid']}/book", {"Timestamp": note["Timestamp"]})
                note = self.client.get(f"vouchers/purchase/creditnotes/{note['Guid']}")
        steps.append(Msg("Credit note %(note)s (number %(number)s) booked for voucher %(guid)s (number %(old)s), "
                       "which Dinero keeps.", note=note.get("Guid"), number=note.get("VoucherNumber"), guid=old["Guid"], old=old.get("VoucherNumber")))

    def _our_objects(self, voucher: VoucherDTO) -> tuple[list[str], list[dict]]:
        """Voucher GUIDs (newest file first) and credit-note read models linked to files named for us."""
        params = {"fields": "FileGuid,Name,Linked,UploadedAt", "fileStatus": "Used"}
        prepared = mapping.as_date(voucher.extra.get("_prepared_on"))
        if prepared:
            params["uploadedAfter"] = (prepared - dt.timedelta(days=2)).strftime("%Y/%m/%d")
        files = [f for f in self.client.get_all("files", **params) if mapping.file_belongs_to(f, voucher.reference)]
        files.sort(key=lambda f: str(f.get("UploadedAt") or ""), reverse=True)
        vouchers, notes = [], []
        for item in files:
            links = mapping.file_links(item)
            if links is None:
                # Never guess what an unknown shape means: a retry waits instead of posting again.
                logger.warning("Dinero file %s: Linked has a shape we do not know (%s); not posting again",
                               item.get("FileGuid"), mapping.shape_of(mapping.ci_get(item, "Linked")))
                raise RetryableError(
                    Msg("Dinero lists the file we sent with this voucher (%(file)s) as used, but in a form Kontera "
                      "does not know, so we cannot tell whether the voucher already exists in Dinero. It waits "
                      "instead of being posted a second time; check Dinero's Bilagsoversigt, and tell whoever "
                      "runs Kontera.", file=item.get("Name") or item.get("FileGuid")),
                    code="linked_shape_unknown", outcome_unknown=True)
            for guid, kind in links:
                if kind == "credit_note":
                    try:
                        notes.append(self.client.get(f"vouchers/purchase/creditnotes/{guid}"))
                    except NotFound:
                        continue
                elif guid not in vouchers:
                    vouchers.append(guid)
        return vouchers, notes

    def _upload(self, voucher: VoucherDTO) -> str:
        """A fresh upload for every voucher version: a file can be linked to one voucher only (§4)."""
        # ``_attachment_path`` is where the file is on this machine; ``attachment`` its stored name.
        path = str(voucher.extra.get("_attachment_path") or voucher.extra.get("attachment") or "")
        if path:
            try:
                content = Path(path).read_bytes()
            except OSError:
                raise RemoteValidationError(Msg("The attached file %(name)s cannot be read; attach it again.", name=Path(path).name), code="attachment_missing") from None
            name = mapping.attachment_name(voucher.reference, path)
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        else:
            content = mapping.cover_sheet_pdf(mapping.cover_sheet_lines(voucher))
            name = mapping.attachment_name(voucher.reference, "", suffix="cover")
            content_type = "application/pdf"
        if len(content) > MAX_FILE_BYTES:
            raise RemoteValidationError(Msg("The attachment %(name)s is %(size).1f MB; Dinero accepts at most 6 MB. "
                                          "Attach a smaller file.", name=Path(path).name, size=len(content) / 1_000_000),
                                        code="attachment_too_large")
        return self.client.upload(name, content, content_type)

    def _with_contact(self, voucher: VoucherDTO, needs_contact: bool, send):
        """``send(contact_guid)`` with the supplier's contact (None when not needed). A remembered
        contact Dinero no longer knows (deleted or merged there) refuses the request, which then created
        nothing: the contact is looked up again and the request sent once more."""
        contact = self._contact(voucher) if needs_contact else None
        try:
            return send(contact)
        except RemoteValidationError as exc:
            if contact is None or exc.outcome_unknown or exc.field_name.lower() != "contactguid":
                raise
            cache.delete(self._contact_key(voucher))
            return send(self._contact(voucher))

    def _contact_key(self, voucher: VoucherDTO) -> str:
        # The supplier as a UUID of the organisation and its VAT number (else name): no spaces in the key.
        supplier = voucher.extra.get("supplier") or {}
        who = mapping.contact_guid_for(self.client.organization_id, name=str(supplier.get("name") or ""),
                                       vat_number=str(supplier.get("vat") or ""))
        return f"kontera:dinero-contact:{who}"

    def _contact(self, voucher: VoucherDTO) -> str:
        """The supplier's contact, remembered per organisation for a day: the look-up costs up to three of
        the organisation's 100 requests a minute, and most documents come from suppliers seen before."""
        key = self._contact_key(voucher)
        guid = cache.get(key)
        if not guid:
            guid = self._contact_looked_up(voucher)
            cache.set(key, guid, CONTACT_REMEMBERED_SECONDS)
        return str(guid)

    def _contact_looked_up(self, voucher: VoucherDTO) -> str:
        """The supplier in Dinero: by VAT number, else by name, else created (with a GUID derived
        from the organisation and the supplier, so a retry or the next document finds it again)."""
        supplier = voucher.extra.get("supplier") or {}
        name = str(supplier.get("name") or "").strip()
        vat = str(supplier.get("vat") or "").strip()
        if not name:
            raise RemoteValidationError(Msg("The document has no supplier name; Dinero needs a contact."),
                                        code="no_supplier")
        fields = "ContactGuid,Name,VatNumber"
        for variant in mapping.vat_variants(vat):
            found = self.client.get("contacts", queryFilter=f"VatNumber eq {mapping.query_literal(variant)}",
                                    fields=fields, pageSize=10) or {}
            if found.get("Collection"):
                return str(found["Collection"][0]["ContactGuid"])
        found = self.client.get("contacts", queryFilter=f"Name eq {mapping.query_literal(name)}",
                                fields=fields, pageSize=10) or {}
        if found.get("Collection"):
            return str(found["Collection"][0]["ContactGuid"])
        guid = mapping.contact_guid_for(self.client.organization_id, name=name, vat_number=vat)
        try:
            created = self.client.post("contacts", mapping.contact_payload(name=name, vat_number=vat, guid=guid))
        except RemoteValidationError as exc:
            if exc.field_name.lower() == "contactguid":
                return guid  # created by an earlier attempt whose answer was lost
            raise
        return str((created or {}).get("ContactGuid") or guid)
