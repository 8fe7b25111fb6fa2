"""Exports that a spreadsheet opens safely: no cell of ours is ever read as a formula.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return is a formula to
Excel, LibreOffice and Google Sheets (``=HYPERLINK(…)``, ``+cmd|…``, ``@SUM(…)``). Following OWASP
(https://owasp.org/www-community/attacks/CSV_Injection; ASVS 5.0 requirement 1.2.10, which adds
NUL) such a cell gets a leading single quote, the spreadsheets' own "this is text" mark. In XLSX the
quote is not written into the text: the cell is a typed string with Excel's quote-prefix style, which
is exactly what Excel stores when someone types ``'=…`` by hand.

A plain number is left alone, also as text: ``-120.00`` in an amount column is a number to every
spreadsheet, cannot carry a formula, and a quote would turn it into text and break sums and
re-imports. Only something that is exactly a signed decimal number counts (``-2+3`` does not).
"""

from __future__ import annotations

import re
from io import BytesIO

import tablib
from import_export.formats import base_formats

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
QUOTE = "'"


def is_formula_like(value) -> bool:
    return (isinstance(value, str) and value.startswith(FORMULA_TRIGGERS)
            and not _PLAIN_NUMBER.fullmatch(value))


def neutralise_formula(value):
    """``'=HYPERLINK(…)'`` → ``"'=HYPERLINK(…)"``; numbers and ordinary text unchanged."""
    return QUOTE + value if is_formula_like(value) else value


def restore_neutralised(value):
    """The inverse, for importing what we exported: drop the quote we put before a formula trigger."""
    if isinstance(value, str) and value.startswith(QUOTE) and is_formula_like(value[1:]):
        return value[1:]
    return value


def neutralise_dataset(dataset):
    """Every cell of a tablib ``Dataset`` through ``neutralise_formula`` (headers are ours)."""
    safe = tablib.Dataset(headers=dataset.headers, title=dataset.title)
    for row in dataset:
        safe.append([neutralise_formula(cell) for cell in row])
    return safe


class SafeXLSX(base_formats.XLSX):
    """XLSX whose neutralised cells are typed strings with Excel's quote prefix, never formulas."""

    def export_data(self, dataset, **kwargs):
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = (dataset.title or "Export")[:31]
        if dataset.headers:
            sheet.append([str(h) for h in dataset.headers])
            sheet.freeze_panes = "A2"
        for row in dataset:
            sheet.append([None] * len(row))
            for column, value in enumerate(row, start=1):
                cell = sheet.cell(row=sheet.max_row, column=column)
                quoted = isinstance(value, str) and value.startswith(QUOTE) and is_formula_like(value[1:])
                text = value[1:] if quoted else value
                if isinstance(text, str):
                    # Control characters are not allowed in XLSX; a NUL or similar becomes U+FFFD.
                    text = _XLSX_ILLEGAL.sub("\ufffd", text)
                cell.value = text
                if isinstance(text, str):
                    cell.data_type = "s"  # never "f": openpyxl would store "=…" as a formula
                    if quoted:
                        cell.quotePrefix = True
        stream = BytesIO()
        book.save(stream)
        return stream.getvalue()


_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

# What the admin offers: the neutralised text formats and XLSX (imports take the text formats only:
# an XLSX upload is a zip whose unpacked size no upload limit bounds).
EXPORT_FORMATS = [base_formats.CSV, base_formats.TSV, SafeXLSX]
IMPORT_FORMATS = [base_formats.CSV, base_formats.TSV]
