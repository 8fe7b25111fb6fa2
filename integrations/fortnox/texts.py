"""Fortnox's valid characters: every text Kontera sends to Fortnox passes ``fortnox_text`` first.

Fortnox documents the characters it accepts as one regular expression ("Valid characters" on
https://www.fortnox.se/developer/guides-and-good-to-know/formats-and-encoding, the same text as
https://developer.fortnox.se/general/encoding/); anything else is refused with 2000359 "Värdet
innehåller ej tillåtna tecken" (https://www.fortnox.se/developer/guides-and-good-to-know/errors).
Not in the set: ``[ ] { } < > " | ~``, the ASCII apostrophe, tab and other control characters.

So nothing is refused for a character, each text is mapped into the set (quotes to ’, brackets to
parentheses, tab to a space, control characters dropped …) and cut to the field's length; what was
changed is returned too, so the staff see it before and after sending. Pure functions, no HTTP.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import regex

# Verbatim from Fortnox's page (PCRE syntax: \p{L} is any letter, \x{0308}/\x{030a} the combining
# diaeresis and ring above). Python's ``re`` has no \p{L}; the ``regex`` package reads it as PCRE does.
VALID_CHARACTERS = (
    r"[\p{L}\’\\\x{0308}\x{030a}a-zåäöéáœæøüA-ZÅÄÖÉÁÜŒÆØ0-9 –:\.`´’,;\^¤#%§£$€¢¥©™°&\/\(\)=\+\-\*_\!?²³®½\@"
    r"\x{00a0}\n\r]*"
)


def _python_syntax(pcre: str) -> str:
    """PCRE's ``\\x{0308}`` is ``\\u0308`` in Python's regex dialects; nothing else differs."""
    return re.sub(r"\\x\{([0-9a-fA-F]{1,4})\}", lambda m: "\\u" + m.group(1).rjust(4, "0"), pcre)


_VALID_TEXT = regex.compile(_python_syntax(VALID_CHARACTERS))
_VALID_CHAR = regex.compile(_python_syntax(VALID_CHARACTERS[:-1]))  # the class alone: one character

# Field lengths from the official OpenAPI (fortnox_Bf_VoucherSinglePayloadItem and its rows).
DESCRIPTION_MAX = 200
COMMENTS_MAX = 1000
TRANSACTION_INFORMATION_MAX = 100

# The nearest valid character for the invalid ones people actually type or paste.
REPLACEMENTS = {
    '"': "’", "'": "’", "‘": "’", "‚": "’", "“": "’", "”": "’", "„": "’", "«": "’", "»": "’",
    "‹": "’", "›": "’", "′": "’", "″": "’",
    "[": "(", "{": "(", "<": "(", "]": ")", "}": ")", ">": ")",
    "|": "/", "¦": "/", "~": "-", "⁄": "/", "÷": "/", "×": "x",
    "—": "–", "‐": "-", "‑": "-", "‒": "-", "−": "-", "•": "-", "·": "-",
    "…": "...", "±": "+/-",
    "\t": " ", "\v": " ", "\f": " ",
}


def is_valid(text: str) -> bool:
    """True when Fortnox accepts ``text`` as it is (the documented regex matches all of it)."""
    return _VALID_TEXT.fullmatch(text) is not None


def _valid_char(char: str) -> bool:
    return _VALID_CHAR.fullmatch(char) is not None


@dataclass
class CleanText:
    """A text mapped into Fortnox's set: the result, what was replaced, and whether it was cut."""

    text: str
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (original, replacement) once each
    shortened_to: int | None = None

    @property
    def changed(self) -> bool:
        return bool(self.replaced) or self.shortened_to is not None


def _map_char(char: str) -> str:
    if _valid_char(char):
        return char
    if char in REPLACEMENTS:
        return REPLACEMENTS[char]
    category = unicodedata.category(char)
    if category.startswith("Z"):  # other spaces, line and paragraph separators
        return " "
    if category.startswith("C"):  # control, format, private use, unassigned: dropped
        return ""
    # Compatibility forms (¼, ¹, ﬁ, full-width letters …) keep what is valid of their decomposition;
    # anything without a valid form (an emoji, an arrow) is dropped.
    decomposed = unicodedata.normalize("NFKD", char)
    if decomposed == char:
        return ""
    return "".join(c if _valid_char(c) else REPLACEMENTS.get(c, "") for c in decomposed)


def fortnox_text(value, max_length: int) -> CleanText:
    """``value`` mapped into Fortnox's valid characters and cut to ``max_length``.

    Valid characters are left as they are. A combining mark outside the set (e.g. the acute of a
    decomposed "é") is composed with the character before it when that gives one valid letter.
    """
    out: list[str] = []
    replaced: list[tuple[str, str]] = []
    for char in str(value or ""):
        mapped = _map_char(char)
        if mapped == "" and unicodedata.category(char).startswith("M") and out:
            composed = unicodedata.normalize("NFC", out[-1] + char)
            if len(composed) == 1 and _valid_char(composed):
                out[-1] = composed
                continue
        if mapped != char and (char, mapped) not in replaced:
            replaced.append((char, mapped))
        out.append(mapped)
    text = "".join(out)
    shortened = None
    if len(text) > max_length:
        text, shortened = text[:max_length].rstrip(), max_length
    return CleanText(text=text, replaced=replaced, shortened_to=shortened)
