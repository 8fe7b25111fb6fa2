"""Where a voucher landed, in the target's own words ("Fortnox A 25, financial year 2022")."""

from __future__ import annotations

from wording import Msg

from ..models import FinancialYear


def year_labels(vouchers) -> dict[tuple[int, str, str], str]:
    """(company, system, the target's financial-year id) -> "2022" or "2022/23", in one query."""
    keys = {(v.company_id, v.system) for v in vouchers if v.remote_year}
    if not keys:
        return {}
    labels = {}
    rows = FinancialYear.objects.filter(plan__company_id__in={c for c, _s in keys}).values_list(
        "plan__company_id", "plan__system", "remote_id", "start", "end")
    for company_id, system, remote_id, start, end in rows:
        label = str(start.year) if start.year == end.year else f"{start.year}/{str(end.year)[-2:]}"
        labels[(company_id, system, str(remote_id))] = label
    return labels


def remote_words(voucher, labels: dict | None = None) -> str:
    """The voucher as the target numbers it; "–" when it is not there (yet)."""
    if not (voucher.remote_id or voucher.remote_number):
        return "–"
    if voucher.system == "fortnox" and voucher.remote_number:
        year = (labels or {}).get((voucher.company_id, voucher.system, voucher.remote_year))
        if year:
            return Msg("Fortnox %(series)s %(number)s, financial year %(year)s", series=voucher.remote_series,
                       number=voucher.remote_number, year=year)
        return Msg("Fortnox %(series)s %(number)s", series=voucher.remote_series, number=voucher.remote_number)
    if voucher.system == "dinero":
        if voucher.remote_number:
            return Msg("Dinero voucher %(number)s (%(status)s)", number=voucher.remote_number,
                       status=voucher.remote_status or "–")
        return Msg("Dinero draft (not booked yet)")
    return voucher.remote_label
