"""Pure functions: our voucher <-> Dinero purchase-voucher JSON, Dinero errors -> plain words. No HTTP.

Reference: ``shared/reference/dinero-api.md`` (section numbers below).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_lazy

from wording import Msg

from ..base import AccountDTO, FinancialYearDTO, RemoteVoucher, VatCodeDTO, VoucherDTO

CENT = Decimal("0.01")
# §5.2: Dinero's own chart numbers P&L (drift) accounts 1000–9999 and the balance sheet 50000–99999.
# The number is the signal we use for P&L vs balance: the ``Category`` enum of /accounts/entry is
# unverified, so it only confirms (a known balance category also makes an account a balance account).
BALANCE_FROM = 10000
BALANCE_CATEGORIES = frozenset({
    "fixed assets", "current assets", "cash and bank", "equity", "provisions and long-term debt",
    "short-term debt", "analysis", "assets", "liabilities",
})
# §2.2: ExternalReference is 0..128 characters.
MAX_EXTERNAL_REFERENCE = 128
# Contacts we create get a GUID derived from the organisation and the supplier, so a retry after an
# unknown outcome (or the next document from the same supplier) lands on the same contact.
CONTACT_NAMESPACE = uuid.UUID("6f1c2b0e-3d4a-5b6c-8d7e-0f1a2b3c4d5e")


def as_int(value, default: int | None = None) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def as_decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)).quantize(CENT)
    except (InvalidOperation, ValueError):
        return None


def money(amount) -> float:
    # Dinero takes JSON numbers; two-decimal amounts below 10^12 are exact enough as doubles.
    return float(Decimal(amount).quantize(CENT))


# --- our voucher -> purchase voucher ------------------------------------------------------------


def voucher_lines(voucher: VoucherDTO) -> list[dict]:
    """One purchase line per debit row (the expense side); the credit row is the counter account,
    which Dinero derives itself (the creditor for credit purchases, the deposit account for cash)."""
    lines = []
    for row in voucher.rows:
        if not row.debit:
            continue
        lines.append({
            "Description": (row.text or voucher.description or voucher.reference)[:250],
            "AccountNumber": int(row.account),
            "VatCode": row.vat_code or None,
            "Amount": money(row.debit),
        })
    return lines


def expected_total(voucher: VoucherDTO) -> Decimal:
    """The VAT-inclusive total Dinero must show after reading the voucher back."""
    return sum((Decimal(row.debit) for row in voucher.rows if row.debit), Decimal("0.00")).quantize(CENT)


def region_key(voucher: VoucherDTO) -> str:
    """§2.3: a cash purchase names its region; it must agree with the VAT codes used."""
    codes = {(row.vat_code or "").upper() for row in voucher.rows if row.debit}
    if any(code.startswith("IEU") for code in codes):
        return "EU"
    if any(code in {"IVV", "IVY"} for code in codes):
        return "World"
    return "DK"


def external_reference(voucher: VoucherDTO) -> str:
    """Our idempotency key first, then the document's own reference for people reading Dinero."""
    document = str(voucher.extra.get("document_reference") or "")
    text = f"{voucher.reference}:{document}" if document else voucher.reference
    return text[:MAX_EXTERNAL_REFERENCE]


def carries_reference(item: dict, reference: str) -> bool:
    value = str(item.get("ExternalReference") or "")
    return value == reference or value.startswith(reference + ":")


def purchase_type(voucher: VoucherDTO) -> str:
    kind = voucher.extra.get("purchase_type")
    if kind in ("cash", "credit"):
        return kind
    return "cash" if voucher.kind == "receipt" else "credit"


def payment_date(voucher: VoucherDTO) -> str:
    """Credit purchases need a due date before booking; without one the voucher date is used."""
    return str(voucher.extra.get("payment_date") or voucher.date.isoformat())


def create_payload(voucher: VoucherDTO, *, contact_guid: str | None, file_guid: str | None) -> dict:
    """``PurchaseVoucherCreateModelV2`` for POST /v1.2/{org}/vouchers/purchase (§2.2).

    Always DKK: Dinero is told the DKK amount actually drawn from the bank, never a currency.
    """
    kind = purchase_type(voucher)
    body: dict = {"PurchaseType": kind, "VoucherDate": voucher.date.isoformat()}
    if kind == "cash":
        body["DepositAccountNumber"] = as_int(voucher.extra.get("deposit_account"))
        body["RegionKey"] = region_key(voucher)
    else:
        body["PaymentDate"] = payment_date(voucher)
        body["ContactGuid"] = contact_guid
    if file_guid:
        body["FileGuid"] = file_guid
    body["ExternalReference"] = external_reference(voucher)
    body["Lines"] = voucher_lines(voucher)
    return body


def update_payload(voucher: VoucherDTO, *, contact_guid: str, file_guid: str | None, timestamp: str) -> dict:
    """``PurchaseVoucherUpdateModel`` for PUT /v1.1/…/{guid}: a full replacement (§2.6).

    ContactGuid is required by the update model even for cash purchases (Dinero then drops it).
    """
    body = create_payload(voucher, contact_guid=contact_guid, file_guid=file_guid)
    body["ContactGuid"] = contact_guid
    body["Timestamp"] = timestamp
    return body


def credit_note_payload(previous: dict, *, file_guid: str | None) -> dict:
    """A purchase credit note cancelling ``previous`` (a read model) line for line, on its date.

    Exactly the documented fields (HEXIO, Models/PurchaseVouchers/CreatePurchaseVoucherCreditNoteModel.cs):
    no ExternalReference. Our reference travels in the file's name, which is how a credit note is
    found again after an unknown outcome. A cash purchase has no contact: ContactGuid is null then.
    """
    return {
        "Date": str(previous.get("VoucherDate") or ""),
        "ContactGuid": previous.get("ContactGuid") or None,
        "CreditNoteFor": previous.get("Guid"),
        "Currency": "DKK",
        "FileGuid": file_guid,
        "Lines": [
            {
                "Description": line.get("Description"),
                "AccountNumber": as_int(line.get("AccountNumber")),
                "VatCode": line.get("VatCode") or None,
                "Amount": money(as_decimal(line.get("AmountInclVatValue")) or 0),
            }
            for line in previous.get("Lines") or []
        ],
    }


def contact_payload(*, name: str, vat_number: str, guid: str) -> dict:
    vat_number = normalise_vat(vat_number)
    country = vat_number[:2] if re.match(r"^[A-Z]{2}", vat_number) else "DK"
    body = {
        "ContactGuid": guid,
        "Name": name[:255],
        "CountryKey": country,
        "IsPerson": False,
        "IsMember": False,
        "UseCvr": False,
    }
    if vat_number:
        body["VatNumber"] = vat_number
    return body


def contact_guid_for(organization_id: str, *, name: str, vat_number: str) -> str:
    key = f"{organization_id}:{normalise_vat(vat_number) or name.strip().lower()}"
    return str(uuid.uuid5(CONTACT_NAMESPACE, key))


def normalise_vat(vat_number: str) -> str:
    return re.sub(r"[\s.\-]", "", vat_number or "").upper()


def vat_variants(vat_number: str) -> list[str]:
    """How the same Danish CVR may be written in Dinero: with or without the DK prefix."""
    value = normalise_vat(vat_number)
    if not value:
        return []
    variants = [value]
    if value.startswith("DK") and value[2:].isdigit():
        variants.append(value[2:])
    elif value.isdigit():
        variants.append("DK" + value)
    return variants


def query_literal(value: str) -> str:
    """A value inside a queryFilter literal: single quotes doubled (§11)."""
    return "'" + value.replace("'", "''") + "'"


def attachment_name(reference: str, path: str, *, suffix: str = "") -> str:
    """The file name in Dinero starts with our reference: the files list is how we find our vouchers."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", path.rsplit("/", 1)[-1]) if path else "bilag.pdf"
    tag = f"{reference}-{suffix}-" if suffix else f"{reference}-"
    return (tag + base)[:200]


def file_belongs_to(item: dict, reference: str) -> bool:
    return str(ci_get(item, "Name") or "").startswith(reference + "-")


def ci_get(item: dict, name: str, default=None):
    """A property by name in any casing (Dinero binds and writes names inconsistently, §2.5, §11)."""
    if not isinstance(item, dict):
        return default
    for key, value in item.items():
        if str(key).lower() == name.lower():
            return value
    return default


# The entries of a file's ``Linked`` (§4): what they are called is UNVERIFIED. We read the names the
# sandbox and our reference use, Guid and Type, in any casing — and nothing else.
LINK_KINDS = {"purchasevoucher": "voucher", "purchasecreditnote": "credit_note"}


def file_links(item: dict) -> list[tuple[str, str]] | None:
    """``[(guid, "voucher" | "credit_note")]`` from a files-list item; None when the shape is unknown."""
    links = ci_get(item, "Linked")
    if links is None:
        return None  # asked for with fields=…Linked; missing means we cannot tell
    if not isinstance(links, list):
        return None
    found = []
    for link in links:
        guid, kind = str(ci_get(link, "Guid") or ""), str(ci_get(link, "Type") or "")
        kind = LINK_KINDS.get(re.sub(r"[^a-z]", "", kind.lower()))
        if not guid or kind is None:
            return None
        found.append((guid, kind))
    return found


def shape_of(value) -> str:
    """What a JSON value looks like, without its content (for a log line)."""
    if isinstance(value, dict):
        return "{" + ", ".join(sorted(str(k) for k in value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(sorted({shape_of(v) for v in value})) + "]"
    return type(value).__name__


def accounting_year_dto(item: dict) -> FinancialYearDTO | None:
    """``GET /v1/{org}/accountingyears`` item (dinero-cli, accounting_years.py). The property names are
    UNVERIFIED: Name, FromDate and ToDate, in any casing; an item without both dates is skipped."""
    start, end = as_date(ci_get(item, "FromDate")), as_date(ci_get(item, "ToDate"))
    if start is None or end is None:
        return None
    return FinancialYearDTO(start=start, end=end, remote_id=str(ci_get(item, "Name") or start.year))


# --- read model -> ours ----------------------------------------------------------------------------


def voucher_total(read_model: dict) -> Decimal | None:
    """``VoucherTotals[Type=Total].Total`` (§2.5); None when Dinero did not send it."""
    for item in read_model.get("VoucherTotals") or []:
        if str(item.get("Type") or "").lower() == "total":
            return as_decimal(item.get("Total"))
    lines = read_model.get("Lines")
    if lines:
        return sum((as_decimal(line.get("AmountInclVatValue")) or Decimal("0") for line in lines),
                   Decimal("0.00"))
    return None


def _answer_read_model(answer, guid: str) -> dict | None:
    """``answer`` as a read model of voucher ``guid`` with its Timestamp under §2.5's name, or None when
    it is not one (another voucher's, no Timestamp, no Status)."""
    if not isinstance(answer, dict) or str(ci_get(answer, "Guid") or "").lower() != guid.lower():
        return None
    timestamp = ci_get(answer, "Timestamp")
    if not timestamp or ci_get(answer, "Status") in (None, ""):
        return None
    return {**answer, "Guid": guid, "Timestamp": str(timestamp), "Status": ci_get(answer, "Status")}


def stored_in_answer(answer, guid: str) -> dict | None:
    """The create's answer when it says what Dinero stored (§2.5's read model: the stored total in
    ``VoucherTotals``, or every line with its stored ``AmountInclVatValue``), else None and the voucher
    is read back. An answer that only echoes what we sent (lines with ``Amount``) says nothing about
    what was kept: that is exactly what Dinero may silently drop (§2.2)."""
    read = _answer_read_model(answer, guid)
    if read is None:
        return None
    if any(str(t.get("Type") or "").lower() == "total" and as_decimal(t.get("Total")) is not None
           for t in read.get("VoucherTotals") or [] if isinstance(t, dict)):
        return read
    lines = read.get("Lines")
    if lines and all(isinstance(line, dict) and as_decimal(line.get("AmountInclVatValue")) is not None
                     for line in lines):
        return read
    return None


def booked_in_answer(answer, guid: str) -> dict | None:
    """The book's answer when it is the booked voucher's read model with its number, else None (then
    the voucher is read after booking). What a purchase voucher's book answers is not documented (see
    integrations/sandboxes/dinero.py, DEFAULT_BOOK_ANSWER)."""
    read = _answer_read_model(answer, guid)
    if read is None or read.get("VoucherNumber") is None or not is_booked(read):
        return None
    return read


def remote_voucher(read_model: dict, *, steps: tuple[str, ...] = ()) -> RemoteVoucher:
    number = read_model.get("VoucherNumber")
    return RemoteVoucher(
        remote_id=str(read_model.get("Guid") or ""),
        number=str(number) if number is not None else "",
        year=str(read_model.get("VoucherDate") or "")[:4],
        timestamp=str(read_model.get("Timestamp") or ""),
        status=str(read_model.get("Status") or ""),
        total=voucher_total(read_model),
        steps=steps,
    )


def same_content(read_model: dict, voucher: VoucherDTO) -> bool:
    """Does Dinero's copy say what our voucher says (lines, amounts, date, type)?"""
    if str(read_model.get("PurchaseType") or "") != purchase_type(voucher):
        return False
    if str(read_model.get("VoucherDate") or "") != voucher.date.isoformat():
        return False
    theirs = sorted(
        (as_int(line.get("AccountNumber")), (line.get("VatCode") or None), as_decimal(line.get("AmountInclVatValue")))
        for line in read_model.get("Lines") or []
    )
    ours = sorted(
        (line["AccountNumber"], line["VatCode"], Decimal(str(line["Amount"])).quantize(CENT))
        for line in voucher_lines(voucher)
    )
    return theirs == ours


def is_booked(read_model: dict) -> bool:
    return str(read_model.get("Status") or "Draft").lower() != "draft"


def account_dto(item: dict, *, purchase: set[int], deposit: set[int]) -> AccountDTO:
    number = as_int(item.get("AccountNumber"))
    category = str(item.get("Category") or "").strip().lower()
    return AccountDTO(
        number=number,
        name=str(item.get("Name") or ""),
        is_balance=number >= BALANCE_FROM or category in BALANCE_CATEGORIES,
        active=not bool(item.get("IsHidden")),
        vat_code=str(item.get("VatCode") or ""),
        is_deposit=number in deposit,
        is_purchase=number in purchase,
    )


def vat_code_dto(item: dict) -> VatCodeDTO:
    rate = as_decimal(item.get("VatRate"))
    if rate is not None and rate <= 1:
        rate = (rate * 100).quantize(CENT)  # §6: Dinero lists the rate as a fraction (0.25)
    return VatCodeDTO(code=str(item.get("VatCode") or ""), name=str(item.get("Name") or ""), rate=rate)


def as_date(value) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


# --- a cover sheet when a document has no file ----------------------------------------------------


def cover_sheet_pdf(lines: list[str]) -> bytes:
    """A one-page PDF listing the document's data, for documents without an attached file.

    Every voucher we create carries a file named after our reference (see the connector's
    ``find_voucher``); a document with no scan gets this sheet, clearly marked as made by Kontera.
    """
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text_ops = ["BT", "/F1 11 Tf", "50 800 Td", "14 TL"]
    for line in lines[:50]:
        text_ops.append(f"({escape(line[:95])}) '")
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("cp1252", errors="replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def cover_sheet_lines(voucher: VoucherDTO) -> list[str]:
    extra = voucher.extra
    supplier = extra.get("supplier") or {}
    lines = [
        Msg("Voucher without an attached file - sheet made by Kontera"),
        "",
        Msg("Reference: %(ref)s", ref=extra.get("document_reference") or voucher.reference),
        Msg("Supplier: %(name)s %(vat)s", name=supplier.get("name", ""), vat=supplier.get("vat", "")),
        Msg("Date: %(date)s", date=voucher.date.isoformat()),
        Msg("Description: %(text)s", text=voucher.description),
        "",
    ]
    for row in voucher.rows:
        if row.debit:
            lines.append(f"{row.account}  {row.vat_code or '-':6} {row.debit:>12.2f}  {row.text or ''}")
    lines.append(Msg("Total DKK: %(total)s", total=f"{expected_total(voucher):.2f}"))
    if extra.get("original_currency"):
        lines.append(Msg("Original amount: %(currency)s %(amount)s", currency=extra["original_currency"], amount=extra.get("original_amount", "")))
    return lines


# --- errors -----------------------------------------------------------------------------------------


def error_body(body) -> tuple[str, str, dict]:
    """(code, message, validationErrors) from Dinero's JSON error template (§9.3)."""
    if not isinstance(body, dict):
        return "", "", {}
    lowered = {str(k).lower(): v for k, v in body.items()}
    code = lowered.get("code")
    errors = lowered.get("validationerrors") or {}
    if not isinstance(errors, dict):
        errors = {}
    return (str(code) if code is not None else ""), str(lowered.get("message") or ""), errors


_FILE_IN_USE = re.compile(r"already|another|attached|linked", re.I)


def file_not_ready(errors: dict) -> bool:
    """Is this refusal about a FileGuid Dinero cannot use *yet*? Its wording is unverified, so: an
    error on FileGuid that does not say the file is attached elsewhere (that one is permanent)."""
    for key, text in (errors or {}).items():
        if str(key).lower() == "fileguid" and not _FILE_IN_USE.search(str(text)):
            return True
    return False


_EXPLANATIONS = (
    (re.compile(r"cannot be used on a purchase voucher", re.I),
     gettext_lazy("Dinero only accepts categories from the profit and loss (drift) accounts on purchases; "
       "a balance account causes an integration error. Choose an expense account instead.")),
    (re.compile(r"no accounting year", re.I),
     gettext_lazy("Dinero has no accounting year for that date; create the year in Dinero first.")),
    (re.compile(r"is not a deposit account", re.I),
     gettext_lazy("The receipt's payment method must point at a deposit account (beholdning) in Dinero.")),
    (re.compile(r"Unknown VatCode", re.I), gettext_lazy("Dinero does not know that VAT code.")),
    (re.compile(r"already attached to another voucher", re.I),
     gettext_lazy("The file is already attached to another voucher in Dinero.")),
)


def plain_validation(errors: dict, message: str = "") -> str:
    """Dinero's validationErrors as one sentence per field, with our explanation where we have one."""
    if not errors:
        return Msg("Dinero refused the voucher: %(message)s", message=message or Msg("validation error"))
    parts = []
    explanations = []
    for key, text in errors.items():
        parts.append(f"{key}: {text}")
        for pattern, explanation in _EXPLANATIONS:
            if pattern.search(str(text)) and explanation not in explanations:
                explanations.append(explanation)
    words = Msg("Dinero refused the voucher: %(errors)s.", errors="; ".join(parts))
    return Msg.join(" ", [words, *explanations])
