"""Fortnox behind the connector interface: master data in, vouchers out (exactly once)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from django.core.exceptions import ValidationError

from wording import Msg

from ..base import ConnectionInfo, MasterData, NotSupported, RemoteVoucher, VoucherDTO
from . import mapping
from .client import PACE, FortnoxClient

LOCKED_PERIOD_POLICIES = ("refuse", "first_open")


class FortnoxConnector:
    system = "fortnox"
    label = "Fortnox"
    is_target = True
    requires_series = True
    secret_fields: tuple[str, ...] = ()  # OAuth: tokens come from the Connect button, never typed in

    def __init__(self, integration, *, session=None):
        self.integration = integration
        self.client = FortnoxClient(integration, session=session)

    @classmethod
    def validate_settings(cls, settings: dict, *, company=None) -> dict:
        cleaned = dict(settings or {})
        policy = cleaned.setdefault("locked_period_policy", "refuse")
        if policy not in LOCKED_PERIOD_POLICIES:
            raise ValidationError(Msg("locked_period_policy must be one of: %(choices)s", choices=", ".join(LOCKED_PERIOD_POLICIES)))
        return cleaned

    def check_connection(self) -> ConnectionInfo:
        info = self.client.get("companyinformation").get("CompanyInformation", {})
        return ConnectionInfo(
            ok=True,
            company_name=str(info.get("CompanyName") or ""),
            organisation_number=str(info.get("OrganizationNumber") or ""),
            remote_company_id=str(mapping.as_int(info.get("DatabaseNumber")) or ""),
        )

    def import_master_data(self, *, progress=None) -> MasterData:
        def step(message):
            if progress:
                progress(message)

        step(Msg("Reading company information"))
        company_info = self.client.get("companyinformation").get("CompanyInformation", {})
        step(Msg("Reading financial years"))
        years = [mapping.financial_year_dto(y) for y in self.client.get_all("financialyears", "FinancialYears")]
        current = _current_year(years)
        params = {"financialyear": current.remote_id} if current else {}
        step(Msg("Reading accounts"))
        accounts = [mapping.account_dto(a) for a in self.client.get_all("accounts", "Accounts", **params)]
        step(Msg("Reading cost centres"))
        cost_centres = [mapping.cost_centre_dto(c) for c in self.client.get_all("costcenters", "CostCenters")]
        step(Msg("Reading voucher series"))
        series = [mapping.series_dto(s) for s in
                  self.client.get_all("voucherseries", "VoucherSeriesCollection", **params)]
        step(Msg("Reading the locked period"))
        locked = self.client.get("settings/lockedperiod").get("LockedPeriod", {}) or {}
        return MasterData(
            accounts=tuple(accounts),
            cost_centres=tuple(cost_centres),
            series=tuple(series),
            financial_years=tuple(years),
            locked_until=mapping.as_date(locked.get("EndDate")),
            company_info={
                "name": str(company_info.get("CompanyName") or ""),
                "organisation_number": str(company_info.get("OrganizationNumber") or ""),
                "tenant_id": str(mapping.as_int(company_info.get("DatabaseNumber")) or ""),
            },
        )

    def post_pace(self):
        """A post is one request (``POST /3/vouchers``), paced per Fortnox company like every other."""
        return self.client.rate_key, PACE

    def post_voucher(self, voucher: VoucherDTO) -> RemoteVoucher:
        params = {"financialyear": voucher.financial_year} if voucher.financial_year else {}
        body = self.client.post("vouchers", mapping.voucher_payload(voucher), **params)
        return mapping.remote_voucher(body)

    @classmethod
    def explain_error(cls, code: str):
        """(what it means, what to do) for one of Fortnox's error codes, or None."""
        return mapping.explain_error(code)

    @classmethod
    def preflight_notes(cls, voucher: VoucherDTO) -> list[str]:
        """What Kontera changes before sending (texts mapped into Fortnox's valid characters)."""
        return mapping.text_notes(voucher)

    def find_voucher(self, voucher: VoucherDTO) -> RemoteVoucher | None:
        """Look for our reference among the vouchers of that day and series (vouchers are never deleted).

        When a list item does not carry Comments (live Fortnox has left them out), the voucher itself
        is read — only the candidates of that series and date that are not known to be another voucher
        of ours (``known_elsewhere``), each request paced like every other.
        """
        params = {"fromdate": voucher.date.isoformat(), "todate": voucher.date.isoformat()}
        if voucher.series:
            params["voucherseries"] = voucher.series
        if voucher.financial_year:
            params["financialyear"] = voucher.financial_year
        for item in self.client.get_all("vouchers", "Vouchers", **params):
            verdict = mapping.list_item_says(item, voucher.reference)
            if verdict is None and (str(item.get("VoucherSeries") or ""),
                                    str(mapping.as_int(item.get("VoucherNumber")))) in voucher.known_elsewhere:
                continue  # another voucher of ours: not this one
            if verdict is None:
                item = self._read_listed(item, voucher)
                verdict = item is not None and mapping.carries_reference(item, voucher.reference)
            if verdict:
                return mapping.remote_voucher(item)
        return None

    def _read_listed(self, item: dict, voucher: VoucherDTO) -> dict | None:
        """GET /3/vouchers/{series}/{number}?financialyear= for one list item (None if it has no number)."""
        series = str(item.get("VoucherSeries") or voucher.series or "")
        number = mapping.as_int(item.get("VoucherNumber"))
        year = mapping.as_int(item.get("Year")) or voucher.financial_year
        if not series or number is None:
            return None
        params = {"financialyear": year} if year else {}
        return self.client.get(f"vouchers/{quote(series, safe='')}/{number}", **params).get("Voucher") or {}

    def update_voucher(self, voucher: VoucherDTO, previous: RemoteVoucher) -> RemoteVoucher:
        raise NotSupported(Msg("Fortnox vouchers cannot be changed once posted; post a correcting voucher instead."))


def _current_year(years, today: dt.date | None = None):
    today = today or dt.date.today()
    for year in years:
        if year.start and year.end and year.start <= today <= year.end:
            return year
    return max(years, key=lambda y: y.end, default=None)
