"""SIE 4 (4E export / 4I import) reader and writer.

The file-format layer of the bookkeeping domain: plain dataclasses in and out, no Django.
Services map `SieVoucher`/`SieRow` to models. Money is `Decimal` with two places, dates are
`datetime.date`. Format reference: SIE-Gruppen, "SIE filformat version 4B" (2008).

Reading (`read`) is liberal in what real exporters produce and strict about bookkeeping: every
problem is collected and raised together as one `SieError`; nothing partial is returned.

- Encoding: a UTF-8 or UTF-16 byte-order mark wins; otherwise the bytes are UTF-8 if they decode
  strictly as UTF-8 *and* contain a multi-byte sequence; otherwise PC8 = CP437 (the only encoding
  the standard allows). The result is in `SieFile.encoding` ("utf-8-sig", "utf-8", "utf-16" or
  "cp437").
- `#RTRANS` (a row added after registration) is kept as an ordinary row, and the `#TRANS` that
  immediately follows it with the same account, objects and amount (the standard's copy for
  readers that do not understand `#RTRANS`) is skipped. `#BTRANS` (a removed row) is ignored.
- Ignored: unknown labels and unknown trailing fields (as the standard requires), `#KSUMMA`,
  signatures, and the records this layer has no use for (`#IB`, `#UB`, `#RES`, `#PSALDO`, ...).
- Tolerated, and reported in `SieFile.warnings`: decimal commas where unambiguous (`28875,00`),
  a `#TRANS` without its object list, a missing closing quote in a free-text field at the end of
  a line (some exporters cut long texts), and an `#RTRANS` not followed by its `#TRANS` copy.
- Inside a quoted field `\\"` is a quote and `\\\\` a backslash; any other backslash is literal
  (`"1820\\A012"`). A quote closes a quoted field only when followed by a separator or the end
  of the line, so stray quotes from mis-encoded exports (`"Leverant"r"`) stay part of the text.

Writing (`write`) produces a 4E-structured file for Fortnox's SIE import; see its docstring.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

__all__ = [
    "SieError",
    "SieFile",
    "SieRow",
    "SieVoucher",
    "clean_text",
    "format_amount",
    "read",
    "write",
]

DIMENSION_COST_CENTRE = "1"
DIMENSION_PROJECT = "6"

# Reserved dimension numbers (standard §8.17) and the names written when none is known.
DEFAULT_DIMENSION_NAMES = {
    "1": "Kostnadsställe",
    "2": "Kostnadsbärare",
    "6": "Projekt",
    "7": "Anställd",
    "8": "Kund",
    "9": "Leverantör",
    "10": "Faktura",
}

_CENT = Decimal("0.01")
_MAX_ERRORS_SHOWN = 20


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class SieRow:
    """One `#TRANS` (or `#RTRANS`) row. Debit positive, credit negative."""

    account: str
    amount: Decimal
    objects: tuple[tuple[str, str], ...] = ()
    trans_date: date | None = None
    text: str = ""
    quantity: Decimal | None = None
    line_no: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.objects, tuple) or any(not isinstance(o, tuple) for o in self.objects):
            object.__setattr__(self, "objects", tuple(tuple(o) for o in self.objects))

    def object_for(self, dimension: str) -> str | None:
        for dim, obj in self.objects:
            if dim == dimension:
                return obj
        return None

    @property
    def cost_centre(self) -> str | None:
        """The object of dimension 1 (kostnadsställe)."""
        return self.object_for(DIMENSION_COST_CENTRE)

    @property
    def project(self) -> str | None:
        """The object of dimension 6 (projekt)."""
        return self.object_for(DIMENSION_PROJECT)


@dataclass(frozen=True)
class SieVoucher:
    """One `#VER` with its rows. `series`/`number` are "" when the file leaves them empty (4I)."""

    series: str
    number: str
    date: date
    text: str = ""
    reg_date: date | None = None
    rows: tuple[SieRow, ...] = ()
    line_no: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.rows, tuple):
            object.__setattr__(self, "rows", tuple(self.rows))

    @property
    def total(self) -> Decimal:
        return sum((row.amount for row in self.rows), Decimal("0.00"))

    @property
    def label(self) -> str:
        """How messages name the voucher: `B 1 (2011-01-07)`."""
        ident = " ".join(part for part in (self.series, self.number) if part)
        if not ident:
            ident = "without series/number"
        return f"{ident} ({self.date.isoformat()})"


@dataclass
class SieFile:
    """A parsed SIE file. Only what the domain needs is kept; see the module docstring."""

    sie_type: str | None = None
    program: tuple[str, ...] = ()
    format: str | None = None
    gen_date: date | None = None
    company_name: str = ""
    org_number: str = ""
    fnr: str = ""
    currency: str = "SEK"
    chart_type: str | None = None  # #KPTYP, e.g. EUBAS97
    fiscal_years: dict[int, tuple[date | None, date | None]] = field(default_factory=dict)  # #RAR
    accounts: dict[str, str] = field(default_factory=dict)  # #KONTO
    account_types: dict[str, str] = field(default_factory=dict)  # #KTYP: T, S, K, I
    dimensions: dict[str, str] = field(default_factory=dict)  # #DIM and #UNDERDIM
    objects: dict[tuple[str, str], str] = field(default_factory=dict)  # #OBJEKT
    vouchers: list[SieVoucher] = field(default_factory=list)
    encoding: str = "cp437"
    # Tolerated deviations: (line of the first occurrence, message); one entry per kind.
    warnings: list[tuple[int, str]] = field(default_factory=list)


class SieError(ValueError):
    """Every problem found in a SIE file (or in vouchers handed to `write`).

    `errors` is a list of (line number, message), sorted; line 0 means "not tied to a line".
    """

    def __init__(self, errors: Iterable[tuple[int, str]]):
        self.errors: list[tuple[int, str]] = sorted(errors, key=lambda e: e[0])
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = [f"line {line}: {msg}" if line else msg for line, msg in self.errors[:_MAX_ERRORS_SHOWN]]
        if len(self.errors) > _MAX_ERRORS_SHOWN:
            shown.append(f"… and {len(self.errors) - _MAX_ERRORS_SHOWN} more")
        return "; ".join(shown)


# --------------------------------------------------------------------------------------------
# Reading: encoding and tokens


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    if not data.isascii():
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    return data.decode("cp437"), "cp437"


class _Objects(tuple):
    """An object list `{dim obj ...}` as a token (a tuple of its strings)."""


_WS = " \t"
# Control characters other than TAB are not allowed in SIE; treat them as separators.
_CONTROL = {c: " " for c in range(32) if c != 9} | {127: " "}


def _tokenize(text: str) -> tuple[list[str | _Objects], str | None, bool]:
    """Split the fields of a line (the part after the label).

    Returns (tokens, problem, open_quote): `problem` describes a syntax error; `open_quote`
    is true when the last token is a quoted string missing its closing quote.
    """
    tokens: list[str | _Objects] = []
    n = len(text)
    i = 0
    in_objects: list[str] | None = None
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i >= n:
            break
        c = text[i]
        if in_objects is None and c == "{":
            in_objects = []
            i += 1
            continue
        if in_objects is not None and c == "}":
            tokens.append(_Objects(in_objects))
            in_objects = None
            i += 1
            continue
        target = in_objects if in_objects is not None else tokens
        if c == '"':
            i += 1
            buf = []
            closed = False
            while i < n:
                c = text[i]
                if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
                    buf.append(text[i + 1])
                    i += 2
                    continue
                if c == '"':
                    nxt = text[i + 1] if i + 1 < n else " "
                    if nxt in _WS or (in_objects is not None and nxt == "}"):
                        closed = True
                        i += 1
                        break
                buf.append(c)
                i += 1
            target.append("".join(buf))
            if not closed:
                if in_objects is not None:
                    return tokens, "unbalanced quotes in an object list", False
                return tokens, None, True
            continue
        start = i
        while i < n and text[i] not in _WS and not (in_objects is not None and text[i] == "}"):
            i += 1
        target.append(text[start:i])
    if in_objects is not None:
        return tokens, "unclosed '{' in an object list", False
    return tokens, None, False


# --------------------------------------------------------------------------------------------
# Reading: field values

_AMOUNT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_COMMA_AMOUNT_RE = re.compile(r"[+-]?\d+,\d{1,2}")
_DATE_RE = re.compile(r"\d{8}")


class _Problem(Exception):
    pass


def _parse_date(value: str, what: str) -> date:
    if _DATE_RE.fullmatch(value):
        try:
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            pass
    raise _Problem(f"bad {what} {value!r} (expected YYYYMMDD)")


def _parse_optional_date(value: str | None, what: str) -> date | None:
    if value is None or value == "":
        return None
    return _parse_date(value, what)


def _parse_decimal(value: str, what: str, warn) -> Decimal:
    text = value
    if not _AMOUNT_RE.fullmatch(text):
        if _COMMA_AMOUNT_RE.fullmatch(text):
            warn("decimal comma instead of decimal point")
            text = text.replace(",", ".")
        else:
            raise _Problem(f"bad {what} {value!r}")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regexes only let numbers through
        raise _Problem(f"bad {what} {value!r}") from None


def _parse_amount(value: str, warn) -> Decimal:
    amount = _parse_decimal(value, "amount", warn)
    try:
        rounded = amount.quantize(_CENT)
    except InvalidOperation:
        raise _Problem(f"bad amount {value!r} (too large)") from None
    if rounded != amount:
        raise _Problem(f"bad amount {value!r} (more than 2 decimals)")
    return rounded.copy_abs() if rounded.is_zero() else rounded


def _text(tokens: list, index: int, what: str = "field") -> str:
    if index >= len(tokens):
        return ""
    value = tokens[index]
    if isinstance(value, _Objects):
        raise _Problem(f"unexpected object list where the {what} belongs")
    return value


def _required(tokens: list, index: int, what: str) -> str:
    value = _text(tokens, index, what)
    if value == "":
        raise _Problem(f"missing {what}")
    return value


# --------------------------------------------------------------------------------------------
# Reading: records

# For each label this layer reads: the index (among the fields after the label) of a free-text
# field whose missing closing quote is tolerated when it is the last thing on the line.
_TEXT_FIELD = {
    "#VER": 3,
    "#TRANS": 4,
    "#RTRANS": 4,
    "#BTRANS": 4,
    "#FNAMN": 0,
    "#KONTO": 1,
    "#DIM": 1,
    "#UNDERDIM": 1,
    "#OBJEKT": 2,
    "#PROGRAM": 0,
    "#FNR": 0,
}
_ROW_LABELS = {"#TRANS", "#RTRANS", "#BTRANS"}
# Labels the standard defines; inside a `{ }` block they mean the block was never closed.
_KNOWN_LABELS = {
    "#FLAGGA", "#PROGRAM", "#FORMAT", "#GEN", "#SIETYP", "#PROSA", "#FTYP", "#FNR", "#ORGNR",
    "#BKOD", "#ADRESS", "#FNAMN", "#RAR", "#TAXAR", "#OMFATTN", "#KPTYP", "#VALUTA", "#KONTO",
    "#KTYP", "#ENHET", "#SRU", "#DIM", "#UNDERDIM", "#OBJEKT", "#IB", "#UB", "#OIB", "#OUB",
    "#RES", "#PSALDO", "#PBUDGET", "#VER", "#KSUMMA",
}  # fmt: skip


@dataclass
class _Block:
    ver_line: int
    series: str = ""
    number: str = ""
    date: date | None = None
    text: str = ""
    reg_date: date | None = None
    valid: bool = True
    opened_at: int = 0
    rows: list[SieRow] = field(default_factory=list)
    pending_rtrans: SieRow | None = None


class _Reader:
    def __init__(self, text: str, encoding: str):
        self.text = text
        self.sie = SieFile(encoding=encoding)
        self.errors: list[tuple[int, str]] = []
        self._warned: dict[str, list[int]] = {}
        self._seen_sie = False
        self.line_no = 0

    # -- bookkeeping of problems

    def error(self, message: str, line: int | None = None) -> None:
        self.errors.append((self.line_no if line is None else line, message))

    def warn(self, message: str, line: int | None = None) -> None:
        self._warned.setdefault(message, []).append(self.line_no if line is None else line)

    # -- main loop

    def run(self) -> SieFile:
        # Line by line from the text (no list of every line beside it: a big file is held once).
        first = next((ln.strip() for ln in io.StringIO(self.text, newline="\n") if ln.strip()), "")
        if not first:
            raise SieError([(0, "The file is empty.")])
        if not first.startswith("#") or "\x00" in self.text:
            hint = " (it looks like an HTML page)" if first.lower().startswith(("<!doctype", "<html")) else ""
            raise SieError([(0, f"This is not a SIE file{hint}: SIE lines start with a #label.")])

        block: _Block | None = None  # inside `{ }`
        pending_ver: _Block | None = None  # a #VER waiting for its `{`
        index = -1
        for index, raw in enumerate(io.StringIO(self.text, newline="\n")):
            self.line_no = index + 1
            line = raw.strip().translate(_CONTROL).strip()
            if not line:
                continue
            if pending_ver is not None:
                if line == "{":
                    block, pending_ver = pending_ver, None
                    block.opened_at = self.line_no
                    continue
                self.error("#VER is not followed by a '{' line with its rows", pending_ver.ver_line)
                pending_ver = None
            if line == "{":
                if block is not None:
                    self.error(f"'{{' inside the block opened at line {block.opened_at}")
                else:
                    self.error("'{' without a #VER before it")
                    block = _Block(ver_line=self.line_no, valid=False, opened_at=self.line_no)
                continue
            if line == "}":
                if block is None:
                    self.error("'}' without a matching '{'")
                else:
                    self.close(block)
                    block = None
                continue
            if not line.startswith("#"):
                self.error(f"expected a #label, found {line[:40]!r}")
                continue
            parts = line.split(None, 1)
            label = parts[0].upper()
            rest = parts[1] if len(parts) > 1 else ""
            if label in _ROW_LABELS:
                if block is None:
                    self.error(f"{label} outside a #VER block")
                else:
                    self.row(block, label, rest)
                continue
            if block is not None and label in _KNOWN_LABELS:
                self.error(f"'{{' opened at line {block.opened_at} is not closed", block.opened_at)
                self.close(block)
                block = None
            if label == "#VER":
                pending_ver = self.ver(rest)
            elif block is None:
                self.header(label, rest)
            # else: an unknown label inside a block; ignored like any unknown label
        self.line_no = index + 1 + self.text.endswith("\n")  # as many as split("\n") makes
        if pending_ver is not None:
            self.error("#VER is not followed by a '{' line with its rows", pending_ver.ver_line)
        if block is not None:
            self.error(f"'{{' opened at line {block.opened_at} is not closed", block.opened_at)
            self.close(block)

        if not self.errors and not self._seen_sie:
            self.errors.append((0, "This is not a SIE file: it has none of the SIE labels."))
        if self.errors:
            raise SieError(self.errors)
        for message, where in self._warned.items():
            more = f" (and {len(where) - 1} more lines)" if len(where) > 1 else ""
            self.sie.warnings.append((where[0], message + more))
        self.sie.warnings.sort()
        return self.sie

    def fields(self, label: str, rest: str) -> list | None:
        """Tokenize a record's fields; report syntax problems and return None on error."""
        tokens, problem, open_quote = _tokenize(rest)
        if problem:
            self.error(f"{label}: {problem}")
            return None
        if open_quote:
            if _TEXT_FIELD.get(label) == len(tokens) - 1:
                self.warn("a text is missing its closing quote")
            else:
                self.error(f"{label}: unbalanced quotes")
                return None
        return tokens

    # -- records

    def header(self, label: str, rest: str) -> None:
        sie = self.sie
        if label in _KNOWN_LABELS:
            self._seen_sie = True
        handler = _HEADER_HANDLERS.get(label)
        if handler is None:
            return  # unknown or deliberately ignored record
        tokens = self.fields(label, rest)
        if tokens is None:
            return
        try:
            handler(sie, tokens)
        except _Problem as exc:
            self.error(f"{label}: {exc}")

    def ver(self, rest: str) -> _Block:
        self._seen_sie = True
        block = _Block(ver_line=self.line_no)
        tokens = self.fields("#VER", rest)
        if tokens is None:
            block.valid = False
            return block
        try:
            block.series = _text(tokens, 0, "series")
            block.number = _text(tokens, 1, "voucher number")
            when = _text(tokens, 2, "voucher date")
            if not when:
                raise _Problem("missing voucher date")
            block.date = _parse_date(when, "voucher date")
            block.text = _text(tokens, 3, "voucher text")
            block.reg_date = _parse_optional_date(_text(tokens, 4, "registration date"), "registration date")
        except _Problem as exc:
            self.error(f"#VER: {exc}")
            block.valid = False
        return block

    def row(self, block: _Block, label: str, rest: str) -> None:
        tokens = self.fields(label, rest)
        if tokens is None:
            block.valid = False
            block.pending_rtrans = None
            return
        try:
            account = _required(tokens, 0, "account")
            if len(tokens) > 1 and isinstance(tokens[1], _Objects):
                flat = tokens[1]
                tail = tokens[2:]
            else:
                self.warn(f"{label} without an object list {{}}")
                flat = _Objects()
                tail = tokens[1:]
            if len(flat) % 2:
                raise _Problem("the object list must hold pairs of dimension and object")
            objects = tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
            amount = _parse_amount(_required(tail, 0, "amount"), self.warn)
            trans_date = _parse_optional_date(_text(tail, 1, "transaction date"), "transaction date")
            text = _text(tail, 2, "row text")
            qty_text = _text(tail, 3, "quantity")
            quantity = _parse_decimal(qty_text, "quantity", self.warn) if qty_text else None
        except _Problem as exc:
            self.error(f"{label}: {exc}")
            block.valid = False
            block.pending_rtrans = None
            return
        row = SieRow(account, amount, objects, trans_date, text, quantity, self.line_no)
        pending, block.pending_rtrans = block.pending_rtrans, None
        if label == "#BTRANS":
            return
        if label == "#RTRANS":
            block.rows.append(row)
            block.pending_rtrans = row
            return
        if pending is not None:
            if (pending.account, pending.objects, pending.amount) == (row.account, row.objects, row.amount):
                return  # the backward-compatible copy of the #RTRANS before it
            self.warn("#RTRANS not followed by an identical #TRANS", pending.line_no)
        block.rows.append(row)

    def close(self, block: _Block) -> None:
        if block.pending_rtrans is not None:
            self.warn("#RTRANS not followed by an identical #TRANS", block.pending_rtrans.line_no)
        if not block.valid or block.date is None:
            return
        voucher = SieVoucher(
            block.series,
            block.number,
            block.date,
            block.text,
            block.reg_date,
            tuple(block.rows),
            block.ver_line,
        )
        if not voucher.rows:
            self.error(f"Voucher {voucher.label} has no rows", block.ver_line)
            return
        total = voucher.total
        if total:
            self.error(
                f"Voucher {voucher.label} does not balance: the rows sum to {format_amount(total)}",
                block.ver_line,
            )
            return
        self.sie.vouchers.append(voucher)


def _h_program(sie: SieFile, t: list) -> None:
    sie.program = tuple(_text(t, i) for i in range(len(t)))


def _h_gen(sie: SieFile, t: list) -> None:
    sie.gen_date = _parse_optional_date(_text(t, 0), "date")


def _h_rar(sie: SieFile, t: list) -> None:
    year = _required(t, 0, "year number")
    if not re.fullmatch(r"[+-]?\d+", year):
        raise _Problem(f"bad year number {year!r}")
    start = _parse_optional_date(_text(t, 1), "start date")
    end = _parse_optional_date(_text(t, 2), "end date")
    sie.fiscal_years[int(year)] = (start, end)


def _h_konto(sie: SieFile, t: list) -> None:
    sie.accounts[_required(t, 0, "account")] = _text(t, 1)


def _h_ktyp(sie: SieFile, t: list) -> None:
    sie.account_types[_required(t, 0, "account")] = _text(t, 1)


def _h_dim(sie: SieFile, t: list) -> None:
    sie.dimensions[_required(t, 0, "dimension")] = _text(t, 1)


def _h_objekt(sie: SieFile, t: list) -> None:
    sie.objects[(_required(t, 0, "dimension"), _required(t, 1, "object"))] = _text(t, 2)


def _setter(attr: str, default: str | None = ""):
    def handler(sie: SieFile, t: list) -> None:
        setattr(sie, attr, _text(t, 0) or default)

    return handler


_HEADER_HANDLERS = {
    "#PROGRAM": _h_program,
    "#FORMAT": _setter("format", None),
    "#GEN": _h_gen,
    "#SIETYP": _setter("sie_type", None),
    "#FNR": _setter("fnr"),
    "#ORGNR": _setter("org_number"),
    "#FNAMN": _setter("company_name"),
    "#VALUTA": _setter("currency", "SEK"),
    "#KPTYP": _setter("chart_type", None),
    "#RAR": _h_rar,
    "#KONTO": _h_konto,
    "#KTYP": _h_ktyp,
    "#DIM": _h_dim,
    "#UNDERDIM": _h_dim,
    "#OBJEKT": _h_objekt,
}


def read(data: bytes) -> SieFile:
    """Parse a SIE 4 file (4E or 4I; types 1–3 read too, without vouchers).

    Raises `SieError` listing every problem (with line numbers); never returns a partial result.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("read() takes the file's bytes")
    data = bytes(data)
    if not data.strip():
        raise SieError([(0, "The file is empty.")])
    text, encoding = _decode(data)
    return _Reader(text, encoding).run()


# --------------------------------------------------------------------------------------------
# Writing

# Characters CP437 lacks, written as their nearest CP437 spelling.
_TRANSLITERATE = {
    "€": "EUR",
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "´": "'", "`": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"',
    "–": "-", "—": "-", "‐": "-", "‑": "-", "‒": "-", "−": "-",
    "…": "...", "•": "*", "·": ".", "×": "x", "™": "TM", "©": "(C)", "®": "(R)",
    "ø": "ö", "Ø": "Ö", "Œ": "OE", "œ": "oe", "ß": "ss", "Þ": "Th", "þ": "th", "Đ": "D", "đ": "d",
    "Ł": "L", "ł": "l", "\u00ad": "", "\u200b": "", "\ufeff": "",
    "\u00a0": " ", "\u2007": " ", "\u2009": " ", "\u202f": " ",
}  # fmt: skip


def _cp437_char(ch: str) -> str:
    try:
        ch.encode("cp437")
        return ch
    except UnicodeEncodeError:
        pass
    if ch in _TRANSLITERATE:
        return _TRANSLITERATE[ch]
    # Letters with diacritics CP437 lacks (š, ł, ő ...) lose the diacritic.
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    try:
        if base:
            base.encode("cp437")
            return base
    except UnicodeEncodeError:
        pass
    return "?"


_CHAR_CACHE: dict[str, str] = {}


_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_text(value: str, limit: int | None = None) -> str:
    """The text as the writer writes it: CP437-representable, no control characters.

    TAB, CR and LF become spaces, other control characters are removed, characters CP437 cannot
    represent are transliterated (`€`→`EUR`, `’`→`'`, `–`→`-`, `ø`→`ö`, `š`→`s`) or become `?`;
    then the text is cut to `limit` characters when a limit is given.
    """
    if value.isascii() and not _ASCII_CONTROL.search(value):
        return value if limit is None else value[:limit]  # nearly every text: nothing to change
    out = []
    for ch in value:
        if ch.isascii():
            code = ord(ch)
            if code in (9, 10, 13):
                out.append(" ")
            elif code >= 32 and code != 127:
                out.append(ch)
            continue
        if unicodedata.category(ch) == "Cc":
            continue
        mapped = _CHAR_CACHE.get(ch)
        if mapped is None:
            mapped = _CHAR_CACHE[ch] = _cp437_char(ch)
        out.append(mapped)
    text = "".join(out)
    if limit is not None:
        text = text[:limit]
    return text


def format_amount(amount: Decimal) -> str:
    """An amount as SIE writes it here: always two decimals, `.`, `-` for credit, never `+`."""
    value = Decimal(amount).quantize(_CENT)
    if value.is_zero():
        value = value.copy_abs()
    return f"{value:f}"


def _format_quantity(quantity: Decimal) -> str:
    value = Decimal(quantity).normalize()
    if value.is_zero():
        return "0"
    return f"{value:f}"


def _quote(value: str) -> str:
    """A quoted field: `"` as `\\"`; a backslash doubled only where it could be misread."""
    if '"' not in value and "\\" not in value:
        return '"' + value + '"'
    out = []
    n = len(value)
    for i, ch in enumerate(value):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\" and (i + 1 == n or value[i + 1] in '"\\'):
            out.append("\\\\")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _field(value: str, *, quote: bool = False) -> str:
    """A field: quoted when asked, or when empty or holding a separator, quote, brace or `#`."""
    if quote or value == "" or value[0] in "#{}" or any(c in value for c in ' \t"{}\\'):
        return _quote(value)
    return value


def _format_date(value: date) -> str:
    return value.strftime("%Y%m%d")


def _sort_key(value: str) -> tuple:
    return (0, int(value), value) if value.isdigit() else (1, 0, value)


def _check_vouchers(vouchers: list[SieVoucher]) -> None:
    problems: list[tuple[int, str]] = []
    for voucher in vouchers:
        if not isinstance(voucher.date, date):
            problems.append((voucher.line_no, f"Voucher {voucher.series} {voucher.number} has no date"))
            continue
        name = f"Voucher {voucher.label}"
        if not voucher.rows:
            problems.append((voucher.line_no, f"{name} has no rows"))
            continue
        bad = False
        for row in voucher.rows:
            problem = None
            if not isinstance(row.amount, Decimal | int) or isinstance(row.amount, bool):
                problem = f"amount {row.amount!r} of account {row.account} is not a Decimal"
            elif Decimal(row.amount).quantize(_CENT) != row.amount:
                problem = f"amount {row.amount} of account {row.account} has more than 2 decimals"
            elif not clean_text(str(row.account)).strip():
                problem = "a row has no account"
            if problem:
                problems.append((row.line_no, f"{name}: {problem}"))
                bad = True
        if not bad and voucher.total:
            problems.append(
                (voucher.line_no, f"{name} does not balance: the rows sum to {format_amount(voucher.total)}")
            )
    if problems:
        raise SieError(problems)


def write(
    sie: SieFile | None = None,
    *,
    vouchers: Iterable[SieVoucher] | None = None,
    company_name: str | None = None,
    org_number: str | None = None,
    fiscal_year: tuple[date, date] | None = None,
    accounts: Mapping[str, str] | None = None,
    objects: Mapping[tuple[str, str], str] | None = None,
    dimensions: Mapping[str, str] | None = None,
    currency: str | None = None,
    chart_type: str | None = None,
    program: tuple[str, ...] = ("Kontera", "1.0"),
    gen_date: date | None = None,
    sie_type: str = "4",
    text_limit: int | None = None,
) -> bytes:
    """Write vouchers as a SIE 4 file (CP437 bytes, LF line ends) for Fortnox's SIE import.

    Either pass a parsed `sie` (its vouchers, company, organisation number, fiscal year 0,
    account/object/dimension names and currency are used) or the keywords; a keyword that is
    given overrides the value from `sie` (the name mappings are merged, the keyword's entries
    winning). `vouchers` and `company_name` are required one way or the other.

    - `gen_date` (default: today) is the `#GEN` date; `program` is (name, version).
    - `fiscal_year` (start, end) writes `#RAR 0 start end`; `chart_type` writes `#KPTYP`;
      `currency` writes `#VALUTA` unless it is SEK.
    - `#KONTO` is written for every account used (name from `accounts`, else the number),
      `#DIM` for every dimension used (name from `dimensions`, else the standard's name),
      `#OBJEKT` for every object used (name from `objects`, else the object number).
    - Amounts always have two decimals (`-1000.00`); quantities are written when not None.
    - `#FLAGGA`, `#FORMAT`, `#SIETYP`, `#GEN` and `#ORGNR` are never quoted (Fortnox's import
      rejects quoted ones; spaces are removed from the organisation number). Free texts (names,
      voucher and row texts) are always quoted; identifiers only when they must be.
    - Texts go through `clean_text`; `text_limit` (Fortnox documents 50) cuts voucher and row
      texts. No `#KSUMMA` is written.

    Raises `SieError` (a `ValueError`) if a voucher has no rows, an amount that is not a Decimal
    with at most 2 decimals, or does not balance.
    """
    if sie_type != "4":
        raise ValueError("only SIE type 4 carries vouchers")
    if sie is not None:
        vouchers = sie.vouchers if vouchers is None else vouchers
        company_name = sie.company_name if company_name is None else company_name
        org_number = sie.org_number if org_number is None else org_number
        if fiscal_year is None:
            start, end = sie.fiscal_years.get(0, (None, None))
            fiscal_year = (start, end) if start and end else None
        accounts = {**sie.accounts, **(accounts or {})}
        objects = {**sie.objects, **(objects or {})}
        dimensions = {**sie.dimensions, **(dimensions or {})}
        currency = sie.currency if currency is None else currency
        chart_type = sie.chart_type if chart_type is None else chart_type
    if vouchers is None or company_name is None:
        raise TypeError("write() needs vouchers and company_name (or a SieFile)")
    vouchers = list(vouchers)
    _check_vouchers(vouchers)
    used_accounts: set[str] = set()
    used_objects: set[tuple[str, str]] = set()
    for voucher in vouchers:
        for row in voucher.rows:
            used_accounts.add(str(row.account))
            used_objects.update(row.objects)
    out = io.BytesIO()
    write_stream(out, vouchers=vouchers, used_accounts=used_accounts, used_objects=used_objects,
                 company_name=company_name, org_number=org_number, fiscal_year=fiscal_year, accounts=accounts,
                 objects=objects, dimensions=dimensions, currency=currency, chart_type=chart_type, program=program,
                 gen_date=gen_date, text_limit=text_limit)
    return out.getvalue()


def write_stream(
    out,
    *,
    vouchers: Iterable[SieVoucher],
    used_accounts: Iterable[str],
    used_objects: Iterable[tuple[str, str]],
    company_name: str,
    org_number: str | None = None,
    fiscal_year: tuple[date, date] | None = None,
    accounts: Mapping[str, str] | None = None,
    objects: Mapping[tuple[str, str], str] | None = None,
    dimensions: Mapping[str, str] | None = None,
    currency: str | None = None,
    chart_type: str | None = None,
    program: tuple[str, ...] = ("Kontera", "1.0"),
    gen_date: date | None = None,
    text_limit: int | None = None,
    chunk_lines: int = 20_000,
) -> int:
    """``write`` for a file of any size: the lines go to ``out`` (a binary file) in chunks as the
    vouchers are read, so neither the vouchers nor the file are held whole. The header names every
    account and object the vouchers use, so the caller gives those first (``used_accounts``,
    ``used_objects``: a query can list them). Each voucher is checked as ``write`` checks them all
    before its lines are written; ``SieError`` at the first that fails (write to a temporary file
    and keep it only when this returns). Returns the number of vouchers written."""
    accounts = accounts or {}
    objects = objects or {}
    dimensions = dimensions or {}
    used_accounts = {str(account) for account in used_accounts}
    used_objects = set(used_objects)
    if fiscal_year is not None and fiscal_year[0] > fiscal_year[1]:
        raise ValueError(f"the fiscal year starts after it ends: {fiscal_year[0]} – {fiscal_year[1]}")

    # Series, accounts and objects repeat on every voucher: each is written out once.
    @functools.lru_cache(maxsize=4096)
    def ident(value: str) -> str:
        return _field(clean_text(str(value)))

    def free(value: str, limit: int | None = None) -> str:
        return _quote(clean_text(value or "", limit))

    @functools.lru_cache(maxsize=4096)
    def quoted(value: str) -> str:
        return _quote(clean_text(value))

    used_dimensions = {dim for dim, _ in used_objects}

    lines = [
        "#FLAGGA 0",
        "#PROGRAM " + " ".join([free(program[0])] + [ident(p) for p in program[1:]]) if program else None,
        "#FORMAT PC8",
        f"#GEN {_format_date(gen_date or date.today())}",
        "#SIETYP 4",
    ]
    org = "".join(clean_text(org_number or "").split())
    if org:
        lines.append(f"#ORGNR {org}")
    lines.append(f"#FNAMN {free(company_name)}")
    if fiscal_year is not None:
        lines.append(f"#RAR 0 {_format_date(fiscal_year[0])} {_format_date(fiscal_year[1])}")
    if chart_type:
        lines.append(f"#KPTYP {ident(chart_type)}")
    if currency and currency.upper() != "SEK":
        lines.append(f"#VALUTA {ident(currency.upper())}")
    for account in sorted(used_accounts, key=_sort_key):
        lines.append(f"#KONTO {ident(account)} {free(accounts.get(account) or account)}")
    for dim in sorted(used_dimensions, key=_sort_key):
        name = dimensions.get(dim) or DEFAULT_DIMENSION_NAMES.get(dim) or f"Dimension {dim}"
        lines.append(f"#DIM {ident(dim)} {free(name)}")
    for dim, obj in sorted(used_objects, key=lambda o: (_sort_key(o[0]), _sort_key(o[1]))):
        lines.append(f"#OBJEKT {ident(dim)} {_quote(clean_text(obj))} {free(objects.get((dim, obj)) or obj)}")

    def flush() -> None:
        out.write(("\n".join(line for line in lines if line is not None) + "\n").encode("cp437", errors="replace"))
        lines.clear()

    written = 0
    for voucher in vouchers:
        _check_vouchers([voucher])
        for row in voucher.rows:
            if str(row.account) not in used_accounts or not used_objects.issuperset(row.objects):
                raise SieError([(voucher.line_no, f"Voucher {voucher.label}: account {row.account} or its "
                                                  "objects are not in the file's header")])
        head = (
            f"#VER {ident(voucher.series)} {ident(voucher.number)} {_format_date(voucher.date)} "
            f"{free(voucher.text, text_limit)}"
        )
        if voucher.reg_date is not None:
            head += f" {_format_date(voucher.reg_date)}"
        lines += [head, "{"]
        for row in voucher.rows:
            objs = " ".join(f"{ident(d)} {quoted(o)}" for d, o in row.objects)
            when = _format_date(row.trans_date) if row.trans_date else '""'
            line = (
                f"#TRANS {ident(row.account)} {{{objs}}} {format_amount(row.amount)} {when} "
                f"{free(row.text, text_limit)}"
            )
            if row.quantity is not None:
                line += f" {_format_quantity(row.quantity)}"
            lines.append(line)
        lines.append("}")
        written += 1
        if len(lines) >= chunk_lines:
            flush()
    flush()
    return written
