"""What a value may be before it is stored: the models' limits, which are also the targets' limits.

Every importer (admin page and command alike) checks its values here before anything is written,
so nothing reaches the database that PostgreSQL would refuse with a 500 or that SQLite would store
silently changed (SQLite keeps 99999999999999999999.99 as the REAL 1e20 and then every page that
reads it fails). The voucher fields are as long as Fortnox allows (official OpenAPI, see
../shared/reference/fortnox-api.md: Description 1–200, TransactionInformation ≤ 100, cost-centre
Code 1–6, voucher-series Code 1–10), so one check covers the model and the target.
"""

from __future__ import annotations

import operator
import re
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext as _

from .models import Voucher, VoucherRow

CENT = Decimal("0.01")
_AMOUNT_FIELD = VoucherRow._meta.get_field("debit")
# max_digits 14 with 2 decimals: at most 999 999 999 999.99 (the same for every money field we store).
MAX_AMOUNT = Decimal(10) ** (_AMOUNT_FIELD.max_digits - _AMOUNT_FIELD.decimal_places) - CENT
# PostgreSQL's integer, the narrowest integer column of our databases (account numbers, categories).
MAX_INTEGER = 2_147_483_647
_PLAIN_DECIMAL = re.compile(r"[+-]?\d+(?:\.\d+)?")
# Control characters (tab aside) have no place in a bookkeeping text; PostgreSQL refuses NUL outright.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def max_length(model, field_name: str) -> int:
    return model._meta.get_field(field_name).max_length


VOUCHER_LIMITS = {name: max_length(Voucher, name) for name in ("source_reference", "description", "series")}
ROW_LIMITS = {name: max_length(VoucherRow, name) for name in ("account", "cost_centre", "project", "text")}


def checked_amount(text: str) -> Decimal:
    """A plain decimal (``-1234.50``; separators already normalised) that fits our money fields.

    Raises ``ValueError`` with the reason: not a plain number (``1e30``, ``Infinity``, ``NaN``), more
    than two decimals, or too large.
    """
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(_("“%(value)s” is not an amount (write it like 1234.50)") % {"value": text[:40]})
    try:
        amount = Decimal(text)
        rounded = amount.quantize(CENT)
    except InvalidOperation:
        rounded = None
    if rounded is None or abs(rounded) > MAX_AMOUNT:
        raise ValueError(_("%(value)s is larger than the largest amount Kontera stores (%(max)s)")
                         % {"value": text[:40], "max": f"{MAX_AMOUNT:,.2f}".replace(",", " ")})
    if rounded != amount:
        raise ValueError(_("amounts have at most two decimals"))
    return rounded


def amount_problem(amount: Decimal) -> str | None:
    """The same limit for an amount that arrived as a number (e.g. from SIE)."""
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        return _("%(value)s is larger than the largest amount Kontera stores (%(max)s)") % {
            "value": amount, "max": f"{MAX_AMOUNT:,.2f}".replace(",", " ")}
    return None


def texts_fit(values, limits) -> bool:
    """True when every value (a str) fits its limit and none holds a control character: the common
    case, checked in one pass so that a file of 100,000 rows needs ``text_problem`` only for the rare
    value that does not fit (to say why)."""
    return all(map(operator.le, map(len, values), limits)) and _CONTROL.search("".join(values)) is None


def text_problem(value: str, *, label: str, limit: int) -> str | None:
    """Why ``value`` cannot be stored in a field of ``limit`` characters, or None."""
    if _CONTROL.search(value or ""):
        return _("%(field)s contains a control character (such as NUL), which is not allowed") % {"field": label}
    if len(value or "") > limit:
        return _("%(field)s is %(length)s characters long; at most %(limit)s are allowed") % {
            "field": label, "length": len(value), "limit": limit}
    return None


# --- uploaded files -----------------------------------------------------------------------------

class UnreadableFile(ValueError):
    """The file is not text we can read (binary, or an encoding we cannot tell)."""


def decode_text(data: bytes) -> str:
    """Bytes of a CSV file → text: UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode
    text"), else Windows-1252 (Excel's "CSV" on Swedish and Danish Windows). Binary data is refused."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = [("utf-8-sig", data)]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = [("utf-16", data)]
    else:
        candidates = [("utf-8", data), ("cp1252", data)]
    for encoding, raw in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if text.count("\x00") > len(text) // 100 + 1:
            break  # many NULs: a binary file (or UTF-16 without its byte-order mark); a stray one is
            # reported with its line by the field checks
        return text
    raise UnreadableFile(_("The file is not a text file: it contains binary data. Save it as CSV (UTF-8) "
                           "and upload that."))


UPLOAD_KINDS = {
    "journals": "KONTERA_MAX_UPLOAD_JOURNALS_MB",
    "documents": "KONTERA_MAX_UPLOAD_DOCUMENTS_MB",
    "mappings": "KONTERA_MAX_UPLOAD_MAPPINGS_MB",
    "attachments": "KONTERA_MAX_UPLOAD_ATTACHMENTS_MB",
}


class FileTooLarge(ValueError):
    pass


def upload_limit(kind: str) -> int:
    """The most bytes an upload of ``kind`` may have (settings.KONTERA_UPLOAD_LIMITS, from the environment)."""
    return settings.KONTERA_UPLOAD_LIMITS[kind]


def too_large_message(kind: str, size: int | None = None) -> str:
    limit = upload_limit(kind)
    values = {"limit": _megabytes(limit), "variable": UPLOAD_KINDS[kind]}
    if size is None:
        return _("The file is larger than %(limit)s, the most this import takes (set by %(variable)s).") % values
    return _("The file is %(size)s; this import takes at most %(limit)s (set by %(variable)s).") % {
        **values, "size": _megabytes(size)}


def check_upload_size(kind: str, size: int) -> None:
    if size > upload_limit(kind):
        raise FileTooLarge(too_large_message(kind, size))


def _megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return _("%(n)s KB") % {"n": max(1, round(size / 1024))}
    return _("%(n)s MB") % {"n": f"{size / 1024 / 1024:.1f}".rstrip("0").rstrip(".")}
