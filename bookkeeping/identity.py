"""Organisation numbers: a Swedish organisationsnummer and a Danish CVR number, normalised and compared
(python-stdnum: ``stdnum.se.orgnr``, ``stdnum.dk.cvr``), so a connection cannot silently reach another
company's books."""

from __future__ import annotations

import re

from stdnum.dk import cvr
from stdnum.se import orgnr


def compact(country: str, value: str) -> str:
    """The bare digits that identify the organisation ("" when nothing usable is given).

    Sweden: 556036-0793, 5560360793, SE556036079301 (the VAT number) and 16556036-0793 are the same;
    Denmark: 13585628, DK13585628 and "DK 13 58 56 28" are the same.
    """
    text = (value or "").strip().upper()
    if not text:
        return ""
    if country == "DK":
        return cvr.compact(text)
    digits = re.sub(r"\D", "", text)
    if text.startswith("SE") and len(digits) == 12:  # VAT number: SE + orgnr + 01
        return digits[:10]
    if len(digits) == 12 and digits[:2] in ("16", "19", "20"):  # century prefix (or 16 for legal persons)
        return digits[2:]
    return orgnr.compact(digits) if digits else ""


def is_valid(country: str, value: str) -> bool:
    number = compact(country, value)
    return bool(number) and (cvr.is_valid(number) if country == "DK" else orgnr.is_valid(number))


def shown(country: str, value: str) -> str:
    """As people write it: 556036-0793, 13585628; anything unreadable as it was given."""
    number = compact(country, value)
    if country != "DK" and len(number) == 10 and number.isdigit():
        return orgnr.format(number)
    return number or (value or "").strip()


def same_organisation(country: str, ours: str, theirs: str) -> bool | None:
    """True or False when both numbers are known; None when either is missing."""
    a, b = compact(country, ours), compact(country, theirs)
    if not a or not b:
        return None
    return a == b
