"""Nets Easy behind the connector interface. A *source*: payouts and payments come in, nothing is posted.

The settings of a Nets Easy integration (accounts, series, start date) belong to the card-payment
flow: ``card_payments.services.settings`` cleans and checks them. The secret key lives encrypted in
``Integration.credentials["secret_key"]``."""

from __future__ import annotations

import datetime as dt

from wording import Msg

from ..base import ConnectionInfo, MasterData, NotSupported, RemoteVoucher, VoucherDTO
from . import mapping
from .client import NetsEasyClient


class NetsEasyConnector:
    system = "netseasy"
    label = "Nets Easy"
    is_target = False
    secret_fields: tuple[str, ...] = ("secret_key",)

    def __init__(self, integration, *, session=None):
        self.integration = integration
        self.client = NetsEasyClient((integration.credentials or {}).get("secret_key", ""), session=session)

    # --- the source side ------------------------------------------------------------------

    def check_connection(self) -> ConnectionInfo:
        today = dt.date.today()
        self.client.get("report/v1/payouts", fromDate=today.isoformat(), toDate=today.isoformat(), pageSize=1)
        return ConnectionInfo(ok=True, message=Msg("Nets Easy accepts the secret key."))

    def list_payouts(self, from_date: dt.date, to_date: dt.date) -> list[mapping.PayoutDTO]:
        return [mapping.payout_dto(p) for p in self.client.list_payouts(from_date, to_date)]

    def payout_details(self, payout_id: str) -> tuple[mapping.PayoutDTO, list[mapping.PaymentActionDTO]]:
        body = self.client.payout_details(payout_id)
        payout = mapping.payout_dto(body)
        actions = [mapping.action_dto(a, currency=payout.currency) for a in body.get("paymentActions") or []]
        return payout, actions

    def get_payment(self, payment_id: str) -> mapping.PaymentDTO:
        return mapping.payment_dto(self.client.get_payment(payment_id))

    # --- not a target ----------------------------------------------------------------------

    def import_master_data(self, *, progress=None) -> MasterData:
        raise NotSupported(Msg("Nets Easy has no chart of accounts; it is a source of payments."))

    def post_voucher(self, voucher: VoucherDTO) -> RemoteVoucher:
        raise NotSupported(Msg("Vouchers are not posted to Nets Easy."))

    def post_pace(self):
        return None  # nothing is posted here

    def find_voucher(self, voucher: VoucherDTO) -> RemoteVoucher | None:
        raise NotSupported(Msg("Vouchers are not posted to Nets Easy."))

    def update_voucher(self, voucher: VoucherDTO, previous: RemoteVoucher) -> RemoteVoucher:
        raise NotSupported(Msg("Vouchers are not posted to Nets Easy."))
