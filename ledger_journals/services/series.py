"""Which Fortnox voucher series a journal goes to: the one staff chose for the import, else the file's own
series when Fortnox has it and allows manual vouchers, else the company's default series."""

from __future__ import annotations


def _series_for(company, wanted: str, override: str | None, plan) -> str:
    if override:
        return override
    if wanted and plan.series.get(wanted):
        return wanted  # the file's own series, when Fortnox has it and allows manual vouchers
    return company.default_series or "A"
