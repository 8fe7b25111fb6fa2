"""Every value of an imported journal against what the voucher models (and Fortnox) can hold.

Run by the parser, so the preview and the command refuse the same files with the same line numbers,
and nothing is cut short or coerced on the way into the database: a journal id, series, account or
cost centre that does not fit is an error, never a silently shortened (and so different) value.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bookkeeping.limits import (
    MAX_AMOUNT,
    ROW_LIMITS,
    VOUCHER_LIMITS,
    amount_problem,
    max_length,
    text_problem,
    texts_fit,
)
from bookkeeping.models import AccountMapping

# Lazy: translated only for a message (a 20 MB file has hundreds of thousands of values to check).
LABELS = {
    "reference": gettext_lazy("The journal id"), "description": gettext_lazy("The journal text"),
    "series": gettext_lazy("The voucher series"), "account": gettext_lazy("The account"),
    "cost_centre": gettext_lazy("The cost centre"), "project": gettext_lazy("The project"),
    "text": gettext_lazy("The row text"),
}


_JOURNAL_LIMITS = (VOUCHER_LIMITS["source_reference"], VOUCHER_LIMITS["description"], VOUCHER_LIMITS["series"])


def journal_problems(journal, *, accounts: bool = True) -> list[tuple[int, str]]:
    """(line, message) for each value of ``journal`` (a ``JournalData``) that cannot be stored as it is.

    ``accounts=False`` while the rows still hold the source's own accounts (before the mappings
    resolved them): those are keys, checked by ``source_value_problems``."""
    problems: list[tuple[int, str]] = []

    def check(line, value, name, limit):
        problem = text_problem(value or "", label=LABELS[name], limit=limit)
        if problem:
            problems.append((line, problem))

    if not texts_fit((journal.reference, journal.description, journal.series), _JOURNAL_LIMITS):
        check(journal.line, journal.reference, "reference", VOUCHER_LIMITS["source_reference"])
        check(journal.line, journal.description, "description", VOUCHER_LIMITS["description"])
        check(journal.line, journal.series, "series", VOUCHER_LIMITS["series"])
    names = ("account", "cost_centre", "project", "text") if accounts else ("cost_centre", "project", "text")
    limits = tuple(ROW_LIMITS[name] for name in names)
    for row in journal.rows:
        line = row.line or journal.line
        if not texts_fit([getattr(row, name) for name in names], limits):
            for name in names:
                check(line, getattr(row, name), name, ROW_LIMITS[name])
        if row.debit.is_finite() and row.credit.is_finite() and abs(row.debit) <= MAX_AMOUNT >= abs(row.credit):
            continue  # both fit: the common case, without a message to prepare
        for amount in (row.debit, row.credit):
            problem = amount_problem(amount)
            if problem:
                problems.append((line, problem))
    return problems


def duplicate_voucher_numbers(vouchers) -> list[tuple[int, str]]:
    """Two SIE vouchers with the same series, number and date cannot be told apart: refuse the file.

    A number is unique within its series (and financial year), so a repeat is a damaged or doubled
    export, and importing both could book the same thing twice. The same number on different dates
    stays allowed: BL Administration, for one, exports its monthly depreciations as `#VER # 1` each
    month (../shared/testdata/sie/BL0001_typ4.SE), and those are different vouchers.
    """
    seen: dict[tuple, list[int]] = defaultdict(list)
    for voucher in vouchers:
        if voucher.number:
            seen[(voucher.series, voucher.number, voucher.date)].append(voucher.line_no)
    problems = []
    for (series, number, day), lines in seen.items():
        for line in lines[1:]:
            problems.append((line, _("Voucher %(series)s %(number)s of %(date)s appears again (first at line %(first)s); "
                                     "a voucher number is used once in its series. Nothing was imported.")
                             % {"series": series, "number": number, "date": day.isoformat(), "first": lines[0]}))
    return problems


def source_value_problems(values: dict) -> list[str]:
    """The source's own values of a row (account, category, add-on code, property, owner …) are looked
    up as mapping keys: each must fit a key and hold no control character (never silently cut)."""
    limit = max_length(AccountMapping, "key")
    if texts_fit(list(values.values()), (limit,) * len(values)):
        return []
    return [problem for name, value in values.items()
            if (problem := text_problem(value or "", label=name, limit=limit))]
