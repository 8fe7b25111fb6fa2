"""Pure functions: our voucher <-> Fortnox JSON, Fortnox errors -> plain words. No HTTP here."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal

from wording import Msg

from ..base import (
    AccountDTO,
    CostCentreDTO,
    FinancialYearDTO,
    RemoteVoucher,
    SeriesDTO,
    VoucherDTO,
)
from .texts import COMMENTS_MAX, DESCRIPTION_MAX, TRANSACTION_INFORMATION_MAX, CleanText, fortnox_text

# Our reference in Comments, made of Fortnox's valid characters only ("(KONTERA-12)"): the closing
# parenthesis keeps KONTERA-12 apart from KONTERA-123. Versions before this one wrote "[KONTERA-12]",
# which Fortnox's documented character set does not allow; vouchers posted that way are still found.
REFERENCE_FORMAT = "({reference})"
LEGACY_REFERENCE_FORMAT = "[{reference}]"


def as_int(value, default: int | None = None) -> int | None:
    """Fortnox sometimes sends numbers as quoted strings ("VoucherNumber": "15")."""
    if value is None or value == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def as_date(value) -> dt.date | None:
    if not value:
        return None
    return dt.date.fromisoformat(str(value)[:10])


def money(amount: Decimal) -> float:
    # Fortnox takes JSON numbers; two-decimal amounts below 10^12 are exact enough as doubles.
    return float(Decimal(amount).quantize(Decimal("0.01")))


def reference_tag(reference: str) -> str:
    return REFERENCE_FORMAT.format(reference=reference)


def voucher_texts(voucher: VoucherDTO) -> dict[str, CleanText]:
    """Every free text of the voucher as Fortnox will get it, keyed by where it goes.

    Keys: ``Description``, ``Comments`` and ``Row <n>`` (the row's TransactionInformation, 1-based).
    """
    texts = {"Description": fortnox_text(voucher.description or voucher.reference, DESCRIPTION_MAX)}
    if not texts["Description"].text.strip():  # Description is required (minLength 1)
        texts["Description"] = fortnox_text(voucher.reference, DESCRIPTION_MAX)
    label = fortnox_text(voucher.extra.get("source_label") or "", COMMENTS_MAX)
    # The reference goes first, so cutting to the length limit never cuts it.
    comments = reference_tag(voucher.reference) + (f" {label.text}" if label.text else "")
    texts["Comments"] = CleanText(text=comments[:COMMENTS_MAX], replaced=label.replaced,
                                  shortened_to=COMMENTS_MAX if len(comments) > COMMENTS_MAX else label.shortened_to)
    for number, row in enumerate(voucher.rows, start=1):
        if row.text:
            texts[f"Row {number}"] = fortnox_text(row.text, TRANSACTION_INFORMATION_MAX)
    return texts


def voucher_payload(voucher: VoucherDTO) -> dict:
    """``{"Voucher": …}`` for POST /3/vouchers; our reference goes in Comments for later look-up.

    Every text is mapped into Fortnox's valid characters first (``texts.fortnox_text``).
    """
    texts = voucher_texts(voucher)
    rows = []
    for number, row in enumerate(voucher.rows, start=1):
        item = {"Account": int(row.account), "Debit": money(row.debit), "Credit": money(row.credit)}
        if row.cost_centre:
            item["CostCenter"] = row.cost_centre
        if row.project:
            item["Project"] = row.project
        text = texts.get(f"Row {number}")
        if text and text.text:
            item["TransactionInformation"] = text.text
        rows.append(item)
    return {"Voucher": {
        "Description": texts["Description"].text,
        "TransactionDate": voucher.date.isoformat(),
        "VoucherSeries": voucher.series,
        "Comments": texts["Comments"].text,
        "VoucherRows": rows,
    }}


def _shown(char: str) -> str:
    names = {"\t": Msg("tab"), " ": Msg("space"), "": Msg("nothing")}
    if char in names:
        return str(names[char])
    if len(char) == 1 and (unicodedata.category(char).startswith("C") or unicodedata.category(char) == "Zs"):
        return f"U+{ord(char):04X}"
    return f"“{char}”"


def text_notes(voucher: VoucherDTO) -> list[str]:
    """Plain words for the staff: which texts were adapted to Fortnox's valid characters, and how."""
    notes = []
    for where, text in voucher_texts(voucher).items():
        if not text.changed:
            continue
        place = Msg("row %(n)s text", n=where.split()[1]) if where.startswith("Row ") else where
        parts = [", ".join(f"{_shown(a)} → {_shown(b)}" for a, b in text.replaced)] if text.replaced else []
        if text.shortened_to is not None:
            parts.append(Msg("shortened to %(n)s characters", n=text.shortened_to))
        notes.append(Msg("Fortnox does not accept every character: %(place)s sent as “%(text)s” (%(changes)s).", place=place, text=text.text, changes="; ".join(parts)))
    return notes


def remote_voucher(data: dict) -> RemoteVoucher:
    item = data.get("Voucher", data)
    series = str(item.get("VoucherSeries") or "")
    number = as_int(item.get("VoucherNumber"))
    year = as_int(item.get("Year"))
    return RemoteVoucher(
        remote_id=f"{series}{number}" if number is not None else "",
        series=series,
        number=str(number or ""),
        year=str(year or ""),
        url=str(item.get("@url") or ""),
    )


def carries_reference(item: dict, reference: str) -> bool:
    """Our reference in the voucher's Comments, in today's format or the bracketed one of old."""
    comments = str(item.get("Comments") or "")
    return any(tag.format(reference=reference) in comments for tag in (REFERENCE_FORMAT, LEGACY_REFERENCE_FORMAT))


def list_item_says(item: dict, reference: str) -> bool | None:
    """Whether a voucher-list item is ours: True, False, or None when the item cannot tell.

    The official OpenAPI list item (fortnox_Bf_VoucherListItem) has Comments; a recorded live list
    (repository arsredovisning-online/fortnox-client, spec/cassettes/fortnox/get_limited_voucher_list.yml)
    has neither Comments nor Description. Ours always carry Comments, so only a non-empty Comments
    without our reference says "not ours"; a missing or empty one means: read the voucher itself.
    """
    comments = item.get("Comments")
    if isinstance(comments, str) and comments.strip():
        return carries_reference(item, reference)
    return None


_SETTING = {"ALLOWED": "allowed", "MANDATORY": "mandatory", "NOTALLOWED": "not_allowed"}


def account_dto(item: dict) -> AccountDTO:
    number = as_int(item.get("Number"))
    return AccountDTO(
        number=number,
        name=str(item.get("Description") or ""),
        # BAS: classes 1–2 are the balance sheet, 3–8 profit and loss.
        is_balance=number < 3000,
        active=as_bool(item.get("Active", True)),
        vat_code=str(item.get("VATCode") or ""),
        cost_centre_setting=_SETTING.get(str(item.get("CostCenterSettings") or "ALLOWED").upper(), "allowed"),
    )


def cost_centre_dto(item: dict) -> CostCentreDTO:
    return CostCentreDTO(code=str(item.get("Code")), name=str(item.get("Description") or ""),
                         active=as_bool(item.get("Active", True)))


def series_dto(item: dict) -> SeriesDTO:
    return SeriesDTO(code=str(item.get("Code")), description=str(item.get("Description") or ""),
                     manual=as_bool(item.get("Manual", False)))


def financial_year_dto(item: dict) -> FinancialYearDTO:
    return FinancialYearDTO(start=as_date(item.get("FromDate")), end=as_date(item.get("ToDate")),
                            remote_id=str(as_int(item.get("Id"))))


# --- errors -----------------------------------------------------------------------------------


def error_information(body) -> tuple[str, str]:
    """(code, message) from an ErrorInformation body in either casing; code may be a string."""
    if not isinstance(body, dict):
        return "", ""
    info = body.get("ErrorInformation") or body.get("errorInformation") or {}
    if not isinstance(info, dict):
        return "", ""
    lowered = {str(k).lower(): v for k, v in info.items()}
    code = lowered.get("code")
    return (str(as_int(code)) if as_int(code) is not None else str(code or "")), str(lowered.get("message") or "")


def plain_message(code: str, swedish: str) -> str:
    """Staff-facing words for a Fortnox refusal: our explanation, then Fortnox's own Swedish text."""
    explanation = _explain(code, swedish)
    if swedish:
        original = Msg("Fortnox: “%(text)s”%(code)s", text=swedish, code=f" ({code})" if code else "")
    else:
        original = Msg("Fortnox error %(code)s", code=code)
    return Msg("%(explanation)s — %(original)s", explanation=explanation, original=original) if explanation \
        else original


# What staff do about a refusal, per Fortnox code (the error inbox shows it beside the explanation).
ADVICE = {
    "2000423": Msg("Add or activate the account in Fortnox (or correct the voucher), import the master data "
                   "again, then send again."),
    "2001304": Msg("Add or activate the account in Fortnox (or correct the voucher), import the master data "
                   "again, then send again."),
    "2000946": Msg("Add a cost centre to the row, or change the account's cost-centre setting in Fortnox."),
    "2000947": Msg("Activate the cost centre in Fortnox or choose another, then send again."),
    "2000401": Msg("Open the period in Fortnox, or set the integration to post on the first open date."),
    "2000359": Msg("Kontera maps texts into Fortnox's characters; if this still happens, tell support."),
    "2000663": Msg("Connect Fortnox again and approve every permission Kontera asks for."),
    "2001101": Msg("Ask the company to add the licence in Fortnox, then connect Fortnox again."),
    "2001103": Msg("Ask the company to add the integration licence in Fortnox, then connect Fortnox again."),
}


def explain_error(code: str) -> tuple[str, str] | None:
    """(what it means, what to do) for a Fortnox error code, when Kontera knows it."""
    explanation = _explain(str(code or ""), "")
    if not explanation:
        return None
    return explanation, ADVICE.get(str(code), Msg("Correct the cause in Fortnox or on the voucher, then send again."))


def _explain(code: str, swedish: str) -> str:
    known = {
        "2000423": Msg("An account on the voucher does not exist in Fortnox."),
        "2001304": Msg("An account on the voucher does not exist in Fortnox."),
        "2000946": Msg("An account on the voucher requires a cost centre."),
        "2000947": Msg("A cost centre on the voucher is not active in Fortnox."),
        "2000401": Msg("The date is inside a locked period in Fortnox."),
        "2000359": Msg("A text contains characters Fortnox does not allow."),
        "2000588": Msg("Fortnox refused a parameter of the request."),
        "2000663": Msg("The Fortnox connection lacks a permission (scope); connect Fortnox again."),
        "2001101": Msg("The Fortnox company has no licence for this; check the Fortnox subscription."),
        "2001103": Msg("The Fortnox company has no API licence."),
        "2001392": Msg("Fortnox received no or wrongly typed data."),
        "2001399": Msg("Fortnox did not recognise a field name."),
        "2002115": Msg("Fortnox could not read the request (malformed JSON)."),
    }
    if code in known:
        return known[code]
    text = swedish.lower()
    patterns = [
        (r"inte aktivt", Msg("An account on the voucher is not active in Fortnox.")),
        (r"inte manuell", Msg("The voucher series does not allow manual vouchers in Fortnox.")),
        (r"verifikationsserie", Msg("The voucher series does not exist in Fortnox for that year.")),
        (r"räkenskapsår", Msg("No financial year covers the date in Fortnox.")),
        (r"kostnadsställe", Msg("A cost centre on the voucher is not accepted by Fortnox.")),
        (r"balans|obalans", Msg("The voucher does not balance.")),
        (r"låst", Msg("The date is inside a locked period in Fortnox.")),
    ]
    for pattern, explanation in patterns:
        if re.search(pattern, text):
            return explanation
    return ""
