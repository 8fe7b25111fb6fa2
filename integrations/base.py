"""The connector interface: the handful of operations the flows need, their DTOs and typed errors.

The domain (``bookkeeping``) sees only this module and ``integrations.registry``. A connector
turns our voucher into the target's payload and back; it never touches the admin or the queue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar, Protocol

# --- errors -----------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base class. ``message`` is plain words for staff; ``code`` is the target's own code.

    ``outcome_unknown`` is True when something may have been created remotely although this error
    says otherwise (e.g. Dinero refused to book a voucher its create call had just made): the voucher
    must be looked up by our reference before anything is created again.
    """

    def __init__(self, message: str, *, code: str = "", http_status: int | None = None, detail: str = "",
                 outcome_unknown: bool = False):
        super().__init__(message)
        self.message = message
        self.code = str(code or "")
        self.http_status = http_status
        self.detail = detail
        self.outcome_unknown = outcome_unknown


class RetryableError(ConnectorError):
    """429, 5xx, timeouts, dropped connections: try again later.

    ``outcome_unknown`` is True when the request may have taken effect remotely (a timeout after
    sending, a dropped connection, a 5xx on a write): the next attempt must look the voucher up by
    our reference before posting again.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, outcome_unknown: bool = False, **kw):
        super().__init__(message, outcome_unknown=outcome_unknown, **kw)
        self.retry_after = retry_after


class Deferred(RetryableError):
    """Nothing more was sent: the target's request limit frees only in ``retry_after`` seconds, later
    than the send may wait. The voucher goes back to the queue, due when the limit frees; its
    company waits meanwhile and the worker goes on with others. Not a failed attempt."""


class AuthError(ConnectorError):
    """The target refuses our credentials: staff must re-authorise (nothing is lost meanwhile)."""


class LicenceOrPermissionMissing(AuthError):
    """The target refuses a resource for want of a licence, a permission or a scope.

    Not a fault of the voucher: every voucher would meet it. It waits like any refused
    authorisation until the company's subscription or the connecting user's rights are fixed and
    the connection is made again (a new consent is what carries new scopes and licences).
    """


class RemoteValidationError(ConnectorError):
    """The target refused the content. Never retried blindly: staff fix the cause first."""

    def __init__(self, message: str, *, field_name: str = "", **kw):
        super().__init__(message, **kw)
        self.field_name = field_name


class StaleVersionError(RemoteValidationError):
    """Optimistic concurrency: the target's copy changed since we read it (e.g. Dinero code 58)."""


class CredentialsUnreadable(ConnectorError):
    """No configured key opens the stored credentials: staff reconnect or enter them again, or the
    operator restores the key. Nothing is sent meanwhile; nothing is lost."""


class NotSupported(ConnectorError):
    """The target cannot do this (e.g. Fortnox vouchers are immutable)."""


# --- DTOs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoucherRowDTO:
    account: int
    debit: Decimal = Decimal("0.00")
    credit: Decimal = Decimal("0.00")
    cost_centre: str = ""
    project: str = ""
    text: str = ""
    vat_code: str = ""


@dataclass(frozen=True)
class VoucherDTO:
    """Our voucher as a connector sees it.

    ``reference`` is our unique, stable reference (the idempotency key) that the connector writes
    into the voucher it creates, so that ``find_voucher`` can recognise it later.
    ``extra`` carries what only one target needs (Dinero: purchase type, supplier, attachment).
    """

    reference: str
    kind: str
    date: date
    description: str
    series: str = ""
    currency: str = "SEK"
    rows: tuple[VoucherRowDTO, ...] = ()
    financial_year: str = ""  # the target's id of the financial year covering ``date``, when it has one
    extra: dict[str, Any] = field(default_factory=dict)
    # For a look-up: (series, number) at the target that Kontera recorded for its other vouchers of that
    # date. Each carries another voucher's reference (its own post answer said where it landed), so a
    # look-up need not read them: a day with a thousand of ours costs one list, not a thousand reads.
    known_elsewhere: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class RemoteVoucher:
    """What the target answered: where the voucher lives there."""

    remote_id: str
    series: str = ""
    number: str = ""
    year: str = ""
    timestamp: str = ""
    status: str = ""
    url: str = ""
    total: Decimal | None = None
    # What the connector did remotely on the way (a credit note, a booking …), in plain words, for
    # the audit trail: connectors do not write to the database themselves.
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountDTO:
    number: int
    name: str
    is_balance: bool
    active: bool = True
    vat_code: str = ""
    cost_centre_setting: str = "allowed"  # allowed | mandatory | not_allowed
    is_deposit: bool = False
    is_purchase: bool = False


@dataclass(frozen=True)
class CostCentreDTO:
    code: str
    name: str
    active: bool = True


@dataclass(frozen=True)
class SeriesDTO:
    code: str
    description: str
    manual: bool


@dataclass(frozen=True)
class FinancialYearDTO:
    start: date
    end: date
    remote_id: str


@dataclass(frozen=True)
class VatCodeDTO:
    code: str
    name: str
    rate: Decimal | None = None


@dataclass(frozen=True)
class MasterData:
    accounts: tuple[AccountDTO, ...] = ()
    cost_centres: tuple[CostCentreDTO, ...] = ()
    series: tuple[SeriesDTO, ...] = ()
    financial_years: tuple[FinancialYearDTO, ...] = ()
    vat_codes: tuple[VatCodeDTO, ...] = ()
    locked_until: date | None = None
    company_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionInfo:
    ok: bool
    company_name: str = ""
    organisation_number: str = ""
    remote_company_id: str = ""
    message: str = ""


@dataclass(frozen=True)
class RemoteOrganisation:
    """One organisation (company) a connection reaches in the target, for staff to choose from."""

    remote_id: str
    name: str
    organisation_number: str = ""  # as the target reports it (Dinero: the CVR in VatNumber)
    usable: bool = True
    problem: str = ""  # why it cannot be chosen, in plain words


# --- a payment source (Nets Easy): what the card-payment flow reads --------------------------


def rate_percent(rate) -> Decimal:
    """``taxRate`` is percent x 100 (2500 == 25 %)."""
    return (Decimal(int(rate or 0)) / 100).normalize()


def rate_key(rate) -> str:
    """The settings key for a VAT rate: ``2500`` -> ``"25"``, ``1250`` -> ``"12.5"``."""
    text = format(rate_percent(rate), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class PayoutDTO:
    id: str
    reference: str
    date: dt.date
    currency: str
    amount: Decimal
    charged: Decimal
    refunded: Decimal
    deposited: Decimal
    fees: Decimal
    number_of_actions: int | None = None
    tax_details: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True)
class PaymentActionDTO:
    id: str
    payment_id: str
    action: str  # CHARGE | REFUND | DEPOSIT
    amount: Decimal  # magnitude
    vat: Decimal  # magnitude
    fee: Decimal  # magnitude
    currency: str
    timestamp: dt.datetime | None
    reference: str = ""
    payment_method: str = ""
    tax_details: tuple[tuple[str, Decimal], ...] = ()  # (rate key, VAT magnitude)


@dataclass(frozen=True)
class OrderLineDTO:
    rate: str  # rate key, "25"
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class PaymentDTO:
    id: str
    country: str  # alpha-3 from the shipping address, else the billing address; "" if neither
    is_company: bool
    currency: str
    reference: str = ""
    # charge id / refund id -> its order lines
    charges: dict[str, tuple[OrderLineDTO, ...]] = field(default_factory=dict)
    refunds: dict[str, tuple[OrderLineDTO, ...]] = field(default_factory=dict)


def lines_to_json(lines) -> list[dict]:
    return [{"rate": line.rate, "net": str(line.net), "vat": str(line.vat), "gross": str(line.gross)}
            for line in lines]


def lines_from_json(data) -> tuple[OrderLineDTO, ...]:
    return tuple(OrderLineDTO(rate=str(d["rate"]), net=Decimal(d["net"]), vat=Decimal(d["vat"]),
                              gross=Decimal(d["gross"])) for d in data or [])


# --- the interface ----------------------------------------------------------------------------


class Connector(Protocol):
    """One per external system; built from an ``integrations.models.Integration``."""

    system: ClassVar[str]
    label: ClassVar[str]
    is_target: ClassVar[bool]  # True when vouchers are posted into this system

    def check_connection(self) -> ConnectionInfo: ...

    def import_master_data(self, *, progress=None) -> MasterData: ...

    def post_voucher(self, voucher: VoucherDTO) -> RemoteVoucher: ...

    def post_pace(self) -> tuple[str, Any] | None:
        """(rate key, ``ratelimit.Pace``) when one ``post_voucher`` is one request paced on that key, so a batch's
        slots can be reserved in one go (``ratelimit.reserve_ahead``); None when a post takes several."""
        ...

    def find_voucher(self, voucher: VoucherDTO) -> RemoteVoucher | None: ...

    def update_voucher(self, voucher: VoucherDTO, previous: RemoteVoucher) -> RemoteVoucher: ...
