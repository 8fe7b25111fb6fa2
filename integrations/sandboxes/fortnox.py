"""A local emulation of the Fortnox REST API (``/3``) and its OAuth2 server (``/oauth-v1``).

The contract is ``shared/reference/fortnox-api.md``. The sandbox is never friendlier than Fortnox:
everything the reference says Fortnox refuses, it refuses with the same status code and body shape.
Where the reference marks a detail UNVERIFIED, the choice made here is a module constant with a
comment saying so; the client has to tolerate the real answer being different.

Mount it under a prefix (e.g. ``/fortnox``) and point the connector at ``<root>/3`` and
``<root>/oauth-v1``. Tests start it in-process with ``ServerThread(FortnoxSandbox()).start()``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import math
import re
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import regex
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integrations.sandboxes.base import FaultInjector, LoggedRequest, SandboxClock, apply_fault_before, drop_connection

# --- Lifetimes [AUTH] ----------------------------------------------------------------------------
AUTH_CODE_TTL = 10 * 60
ACCESS_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 45 * 24 * 3600

# UNVERIFIED: Fortnox runs Ory Hydra behind /oauth-v1 (its OpenAPI file embeds Hydra's error
# schema). Hydra revokes the previous access token when its refresh token is used, and revokes the
# whole token chain when a used refresh token is presented again; the migrate page's warning that
# concurrent refreshes "could result in token invalidation" fits that. We do both.
REVOKE_ACCESS_TOKEN_ON_REFRESH = True
REVOKE_CHAIN_ON_REFRESH_REUSE = True
# RFC 6749 §4.1.2 (and Hydra): a reused authorization code revokes the tokens issued from it.
REVOKE_TOKENS_ON_CODE_REUSE = True
# UNVERIFIED: Hydra refuses a `state` shorter than 8 characters ("invalid_state").
MIN_STATE_LENGTH = 8
MSG_WEAK_STATE = (
    "The state is missing or does not have enough characters and is therefore considered too weak"
)
# UNVERIFIED: the /auth error page status (the text is from [FAQ]).
AUTH_ERROR_PAGE_STATUS = 400

# --- Rate limit [RATE] ---------------------------------------------------------------------------
RATE_LIMIT_REQUESTS = 25
RATE_LIMIT_WINDOW = 5.0
# UNVERIFIED: whether refused requests use up the window. We take the stricter reading: they do,
# so a client that hammers while limited stays limited until it is quiet for a whole window.
RATE_LIMIT_COUNTS_REJECTED = True
# UNVERIFIED: the real 429 body and headers are unknown. A short plain-text body and no
# Retry-After (nor any X-RateLimit-*) header, so no client can come to depend on one.
RATE_LIMIT_BODY = "Too Many Requests"
RATE_LIMIT_CONTENT_TYPE = "text/plain; charset=utf-8"

# --- Lists [PARAMS] ------------------------------------------------------------------------------
DEFAULT_LIMIT = 100
MAX_LIMIT = 500  # UNVERIFIED on Fortnox's own pages; above it -> 400 2000588
# UNVERIFIED: the spec's cost-centre list wrapper has no MetaInformation. We follow the spec: the
# whole list, no MetaInformation, so a client that relies on it for paging breaks here first.
COSTCENTERS_LIST_HAS_META = False

# PHP's json_encode escapes "/" as "\/" (see the recorded @url values); harmless to any parser.
ESCAPE_SLASHES = True

# UNVERIFIED: the locked-period answer when nothing is locked. Fortnox writes empty strings for
# empty text fields (CostCenter "", ReferenceNumber ""), so EndDate is "" unless the quirk flag
# `quirks.locked_period_null` asks for null.
LOCKED_PERIOD_NONE = ""

# UNVERIFIED: how the financial year is preselected when POST /3/vouchers has no ?financialyear=.
# We take the year that contains today's date (sandbox clock), else the year that ends last.

# UNVERIFIED: unknown routes and unsupported methods (PUT/DELETE on vouchers: the spec has none)
# answer 404 with the "No such route" error Fortnox is known to send (softwerkab#51).
NO_SUCH_ROUTE_STATUS = 404

# UNVERIFIED: missing scope. 403 with the lower-case envelope of validation errors, code 2000663.
# Live Fortnox has also answered a missing scope or licence with 400 and a message about
# behörighet/scope/licens (repository erp-mafia/accounted, lib/providers/fortnox/client.ts):
# `quirks.scope_error_as_400` answers that way instead.
SCOPE_ERROR_STATUS = 403
# A company without the licence for a scope's module (Tenant.licences): 400, 2001101 with the text
# of Fortnox's errors page (https://www.fortnox.se/developer/guides-and-good-to-know/errors).
LICENCE_ERROR_STATUS = 400
MSG_NO_LICENCE = "Det finns ingen aktiv licens för önskat scope"

# --- Valid characters [FMT] ------------------------------------------------------------------------
# Verbatim from https://www.fortnox.se/developer/guides-and-good-to-know/formats-and-encoding
# ("Valid characters"); PCRE's \x{0308} is written \u0308 for Python's `regex`. Every text field of a
# posted voucher or mode of payment must match it in full, else 2000359 (errors page). The pages do
# not say which fields are checked; we take the strict reading: all of them.
VALID_CHARACTERS = regex.compile(
    r"[\p{L}\’\\\u0308\u030aa-zåäöéáœæøüA-ZÅÄÖÉÁÜŒÆØ0-9 –:\.`´’,;\^¤#%§£$€¢¥©™°&\/\(\)=\+\-\*_\!?²³®½\@"
    r"\u00a0\n\r]*"
)
ERR_INVALID_CHARACTERS = 2000359
MSG_INVALID_CHARACTERS = "Värdet innehåller ej tillåtna tecken. ({value})"

# --- Error codes ---------------------------------------------------------------------------------
# Known from the reference (§7).
ERR_INVALID_RESPONSE_TYPE = 1000030  # "Invalid response type" (Accept header)
ERR_INVALID_CONTENT_TYPE = 1000031  # message UNVERIFIED
ERR_LOCKED_PERIOD = 2000401
ERR_ACCOUNT_NOT_FOUND = 2000423  # chosen over 2001304: it is the documented [RESP] example
ERR_INVALID_PARAMETER = 2000588
ERR_NO_SCOPE = 2000663
ERR_NO_LICENCE = 2001101
ERR_NO_SUCH_ROUTE = 2000762
ERR_COST_CENTER_MANDATORY = 2000946
ERR_COST_CENTER_INACTIVE = 2000947
ERR_WRONG_DATA = 2001392
ERR_FIELD_NAME = 2001399
ERR_JSON = 2002115

# UNVERIFIED codes. The 2099xxx block is invented by the sandbox (no Fortnox code is known there),
# so a code from it in a log shows at once that the real number is still unknown. Each situation
# has its own code; the Swedish texts quote the reference where it gives one.
#   code     situation                                    text
#   2099001  account inactive                             Konto "xxxx" är inte aktivt
#   2099002  debit and credit differ                      Verifikationen är inte i balans. ...
#   2099003  fewer than 2 rows                            En verifikation måste ha minst två rader.
#   2099004  series missing in the year                   Ogiltig verifikationsserie angiven
#   2099005  series not manual                            Verifikationsserien är inte manuell (X)
#   2099006  no financial year for the date               Räkenskapsår saknas för valt datum
#   2099007  unknown cost centre                          Kostnadsställe "X" finns inte
#   2099008  cost centre on a NOTALLOWED account          Kostnadsställe är inte tillåtet för konto N
#   2099009  required field missing or empty              Obligatoriskt fält saknas: Field
#   2099010  text too long                                Värdet i fältet Field är för långt (max N tecken)
#   2099011  row Account not an integer 1000-9999         Ogiltigt kontonummer: value
#   2099012  amount negative, > 2 decimals, > 14 digits,  Ogiltigt belopp i fältet Field: value
#            not a number, or debit and credit on one row
#   2099013  date not YYYY-MM-DD                          Ogiltigt datum: value
#   2099014  unknown project (the sandbox has none)       Projekt "X" finns inte
#   2099015  voucher not found (404)                      Kan inte hitta verifikationen.
#   2099016  financial year id not found                  Kan inte hitta räkenskapsåret.
#   2099017  mode of payment code already used           Betalsättet "X" finns redan
#   2099018  mode of payment not found (404)              Kan inte hitta betalsättet.
ERR_ACCOUNT_INACTIVE = 2099001
ERR_UNBALANCED = 2099002
ERR_TOO_FEW_ROWS = 2099003
ERR_SERIES_INVALID = 2099004
ERR_SERIES_NOT_MANUAL = 2099005
ERR_NO_FINANCIAL_YEAR = 2099006
ERR_COST_CENTER_NOT_FOUND = 2099007
ERR_COST_CENTER_NOT_ALLOWED = 2099008
ERR_REQUIRED = 2099009
ERR_TOO_LONG = 2099010
ERR_INVALID_ACCOUNT_NUMBER = 2099011
ERR_INVALID_AMOUNT = 2099012
ERR_INVALID_DATE = 2099013
ERR_PROJECT_NOT_FOUND = 2099014
ERR_VOUCHER_NOT_FOUND = 2099015
ERR_FINANCIAL_YEAR_NOT_FOUND = 2099016
ERR_MODE_OF_PAYMENT_EXISTS = 2099017
ERR_MODE_OF_PAYMENT_NOT_FOUND = 2099018

# UNVERIFIED texts for known codes.
MSG_NO_SCOPE = "Har inte behörighet för scope."
MSG_INVALID_CONTENT_TYPE = "Invalid content type"
MSG_COST_CENTER_MANDATORY = "Kostnadsställe är obligatoriskt för konto {account}"
MSG_COST_CENTER_INACTIVE = 'Kostnadsställe "{code}" är inte aktivt'
# The reference gives "… har låst perioden t.o.m. xxx. …"; who "has locked" is not recorded.
# We name the company.
MSG_LOCKED_PERIOD = "{company} har låst perioden t.o.m. {end}. Lås upp perioden för att fortsätta."

# --- Voucher limits [OAS] ------------------------------------------------------------------------
VOUCHER_DESCRIPTION_MAX = 200
VOUCHER_COMMENTS_MAX = 1000
ROW_TRANSACTION_INFORMATION_MAX = 100
AMOUNT_MAX_DIGITS = 14  # "Max 14 digits (incl. decimals)"; with 2 decimals: below 10**12
# UNVERIFIED amount rules (choose the strict side): an amount must be a JSON number (not a quoted
# string), not negative, with at most 2 decimals; a row carries debit or credit, not both.

# Fields accepted in a posted voucher. Read-only ones are accepted and ignored (Fortnox assigns
# them); anything else is 2001399 "Felaktigt fältnamn".
VOUCHER_FIELDS = {
    "Comments",
    "CostCenter",
    "Description",
    "Project",
    "TransactionDate",
    "VoucherRows",
    "VoucherSeries",
    "Year",
}
VOUCHER_READ_ONLY = {"@url", "ApprovalState", "ReferenceNumber", "ReferenceType", "VoucherNumber"}
ROW_FIELDS = {"Account", "CostCenter", "Credit", "Debit", "Project", "Quantity", "TransactionInformation"}
ROW_READ_ONLY = {"Description", "Removed"}

# Numeric fields sent as quoted strings under `quirks.quoted_numbers` (seen in the wild, §3.4).
QUOTED_NUMBER_KEYS = {
    "Account",
    "Code",
    "Id",
    "NextVoucherNumber",
    "Number",
    "SRU",
    "VoucherNumber",
    "Year",
    "code",
}

SCOPE_LABELS = {
    "bookkeeping": "Bokföring",
    "costcenter": "Kostnadsställen",
    "companyinformation": "Företagsinformation",
    "settings": "Inställningar",
    "invoice": "Fakturering",
    "payment": "Betalningar",
    "customer": "Kunder",
    "currency": "Valutor",
    "project": "Projekt",
    "archive": "Arkiv",
    "inbox": "Inkorg",
    "connectfile": "Filkopplingar",
    "article": "Artiklar",
    "offer": "Offerter",
    "order": "Order",
    "price": "Priser",
    "print": "Utskrifter",
    "profile": "Profil",
    "supplier": "Leverantörer",
    "supplierinvoice": "Leverantörsfakturor",
    "salary": "Lön",
    "noxfinansinvoice": "Nox Finans faktura",
}
KNOWN_SCOPES = frozenset(SCOPE_LABELS)

# §1.4. UNVERIFIED for voucherseries (we say bookkeeping) and settings/lockedperiod (settings).
RESOURCE_SCOPES = {
    "accounts": "bookkeeping",
    "financialyears": "bookkeeping",
    "vouchers": "bookkeeping",
    "voucherseries": "bookkeeping",
    "sie": "bookkeeping",
    "costcenters": "costcenter",
    "companyinformation": "companyinformation",
    "settings": "settings",
    "modesofpayments": "settings",
}

SETTINGS_VALUES = ("ALLOWED", "MANDATORY", "NOTALLOWED")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_RE = re.compile(r"^[0-9]+$")


class FortnoxError(Exception):
    """A refusal in Fortnox's ErrorInformation envelope (404s capitalised, others lower case)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _bad(code: int, message: str) -> FortnoxError:
    return FortnoxError(400, code, message)


@dataclass
class SandboxQuirks:
    """Opt-in reproductions of Fortnox's inconsistencies."""

    quoted_numbers: bool = False  # "VoucherNumber":"15", "Account":"1930", "code":"2000423"
    locked_period_null: bool = False  # {"LockedPeriod":{"EndDate":null}} instead of ""
    # The official OpenAPI list item (fortnox_Bf_VoucherListItem) has Comments and Description; a
    # recorded live list (arsredovisning-online/fortnox-client, get_limited_voucher_list.yml) has
    # neither. By default the list leaves them out (the stricter reading); this puts them back.
    list_items_with_comments: bool = False
    scope_error_as_400: bool = False  # a missing scope answered 400 instead of 403 (see SCOPE_ERROR_STATUS)


# --- Master data ---------------------------------------------------------------------------------


@dataclass
class FinancialYear:
    id: int
    from_date: date
    to_date: date
    accounting_method: str = "ACCRUAL"
    account_chart_type: str | None = "BAS 2024"

    def contains(self, day: date) -> bool:
        return self.from_date <= day <= self.to_date

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "from_date": self.from_date.isoformat(),
            "to_date": self.to_date.isoformat(),
            "accounting_method": self.accounting_method,
            "account_chart_type": self.account_chart_type,
        }

    @classmethod
    def from_dict(cls, data: dict) -> FinancialYear:
        return cls(
            id=data["id"],
            from_date=date.fromisoformat(data["from_date"]),
            to_date=date.fromisoformat(data["to_date"]),
            accounting_method=data["accounting_method"],
            account_chart_type=data["account_chart_type"],
        )


@dataclass
class Account:
    number: int
    description: str
    active: bool = True
    cost_center_settings: str = "ALLOWED"
    project_settings: str = "ALLOWED"
    transaction_information_settings: str = "ALLOWED"
    quantity_settings: str = "ALLOWED"
    vat_code: str | None = None
    sru: int | None = None
    balance_brought_forward: Decimal = Decimal(0)

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "description": self.description,
            "active": self.active,
            "cost_center_settings": self.cost_center_settings,
            "project_settings": self.project_settings,
            "transaction_information_settings": self.transaction_information_settings,
            "quantity_settings": self.quantity_settings,
            "vat_code": self.vat_code,
            "sru": self.sru,
            "balance_brought_forward": str(self.balance_brought_forward),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Account:
        return cls(**{**data, "balance_brought_forward": Decimal(data["balance_brought_forward"])})


@dataclass
class CostCenter:
    code: str
    description: str
    active: bool = True
    note: str = ""

    def to_dict(self) -> dict:
        return {"code": self.code, "description": self.description, "active": self.active, "note": self.note}


@dataclass
class VoucherSeries:
    code: str
    description: str
    manual: bool = True
    next_voucher_number: int = 1

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "description": self.description,
            "manual": self.manual,
            "next_voucher_number": self.next_voucher_number,
        }


@dataclass
class ModeOfPayment:
    code: str
    description: str
    account_number: str

    def to_dict(self) -> dict:
        return {"code": self.code, "description": self.description, "account_number": self.account_number}


@dataclass
class VoucherRow:
    account: int
    debit: Decimal
    credit: Decimal
    description: str  # the account's name when the voucher was posted
    cost_center: str = ""
    project: str = ""
    transaction_information: str = ""
    quantity: Decimal = Decimal(0)
    removed: bool = False

    def to_dict(self) -> dict:
        return {
            "account": self.account,
            "debit": str(self.debit),
            "credit": str(self.credit),
            "description": self.description,
            "cost_center": self.cost_center,
            "project": self.project,
            "transaction_information": self.transaction_information,
            "quantity": str(self.quantity),
            "removed": self.removed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> VoucherRow:
        return cls(
            **{
                **data,
                "debit": Decimal(data["debit"]),
                "credit": Decimal(data["credit"]),
                "quantity": Decimal(data["quantity"]),
            }
        )


@dataclass
class Voucher:
    series: str
    number: int
    year: int  # financial-year Id
    transaction_date: date
    description: str
    rows: list[VoucherRow]
    comments: str | None = None
    cost_center: str = ""
    project: str = ""
    reference_number: str = ""
    reference_type: str = "MANUAL"
    approval_state: int = 0
    registered_at: float = 0.0

    def to_dict(self) -> dict:
        return {
            "series": self.series,
            "number": self.number,
            "year": self.year,
            "transaction_date": self.transaction_date.isoformat(),
            "description": self.description,
            "rows": [row.to_dict() for row in self.rows],
            "comments": self.comments,
            "cost_center": self.cost_center,
            "project": self.project,
            "reference_number": self.reference_number,
            "reference_type": self.reference_type,
            "approval_state": self.approval_state,
            "registered_at": self.registered_at,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Voucher:
        return cls(
            **{
                **data,
                "transaction_date": date.fromisoformat(data["transaction_date"]),
                "rows": [VoucherRow.from_dict(row) for row in data["rows"]],
            }
        )


# BAS 2024 names. 1101 is not a BAS account: property-ledger programs such as dinafastigheter
# book to it (see the guide), so the seed carries it. 3011/3015/3016 are renamed to rents, as a
# property company's chart in Fortnox would have them.
# (number, name, CostCenterSettings, VATCode)
SEED_ACCOUNTS: list[tuple[int, str, str, str | None]] = [
    (1010, "Utvecklingsutgifter", "NOTALLOWED", None),
    (1101, "Byggnader och mark, fastighetsreskontra", "NOTALLOWED", None),
    (1110, "Byggnader", "NOTALLOWED", None),
    (1119, "Ackumulerade avskrivningar på byggnader", "NOTALLOWED", None),
    (1130, "Mark", "NOTALLOWED", None),
    (1150, "Markanläggningar", "NOTALLOWED", None),
    (1210, "Maskiner och andra tekniska anläggningar", "NOTALLOWED", None),
    (1220, "Inventarier och verktyg", "NOTALLOWED", None),
    (1229, "Ackumulerade avskrivningar på inventarier och verktyg", "NOTALLOWED", None),
    (1250, "Datorer", "NOTALLOWED", None),
    (1460, "Lager av handelsvaror", "NOTALLOWED", None),
    (1510, "Kundfordringar", "NOTALLOWED", None),
    (1515, "Osäkra kundfordringar", "NOTALLOWED", None),
    (1516, "Tvistiga kundfordringar", "NOTALLOWED", None),
    (1519, "Nedskrivning av kundfordringar", "NOTALLOWED", None),
    (1580, "Fordringar för kontokort och kuponger", "NOTALLOWED", None),
    (1610, "Kortfristiga fordringar hos anställda", "NOTALLOWED", None),
    (1630, "Avräkning för skatter och avgifter (skattekonto)", "NOTALLOWED", None),
    (1650, "Momsfordran", "NOTALLOWED", None),
    (1680, "Andra kortfristiga fordringar", "NOTALLOWED", None),
    (1710, "Förutbetalda hyreskostnader", "NOTALLOWED", None),
    (1790, "Övriga förutbetalda kostnader och upplupna intäkter", "NOTALLOWED", None),
    (1910, "Kassa", "NOTALLOWED", None),
    (1920, "PlusGiro", "NOTALLOWED", None),
    (1930, "Företagskonto/checkkonto/affärskonto", "NOTALLOWED", None),
    (1940, "Övriga bankkonton", "NOTALLOWED", None),
    (2081, "Aktiekapital", "NOTALLOWED", None),
    (2091, "Balanserad vinst eller förlust", "NOTALLOWED", None),
    (2099, "Årets resultat", "NOTALLOWED", None),
    (2350, "Andra långfristiga skulder till kreditinstitut", "NOTALLOWED", None),
    (2420, "Förskott från kunder", "NOTALLOWED", None),
    (2440, "Leverantörsskulder", "NOTALLOWED", None),
    (2510, "Skatteskulder", "NOTALLOWED", None),
    (2610, "Utgående moms, 25 %", "NOTALLOWED", "MP1"),
    (2611, "Utgående moms på försäljning inom Sverige, 25 %", "NOTALLOWED", "MP1"),
    (2614, "Utgående moms omvänd skattskyldighet, 25 %", "NOTALLOWED", None),
    (2620, "Utgående moms, 12 %", "NOTALLOWED", "MP2"),
    (2621, "Utgående moms på försäljning inom Sverige, 12 %", "NOTALLOWED", "MP2"),
    (2630, "Utgående moms, 6 %", "NOTALLOWED", "MP3"),
    (2631, "Utgående moms på försäljning inom Sverige, 6 %", "NOTALLOWED", "MP3"),
    (2640, "Ingående moms", "NOTALLOWED", "I"),
    (2641, "Debiterad ingående moms", "NOTALLOWED", "I"),
    (2645, "Beräknad ingående moms på förvärv från utlandet", "NOTALLOWED", None),
    (2650, "Redovisningskonto för moms", "NOTALLOWED", None),
    (2670, "Utgående moms på försäljning inom EU, OSS", "NOTALLOWED", None),
    (2710, "Personalskatt", "NOTALLOWED", None),
    (2731, "Avräkning lagstadgade sociala avgifter", "NOTALLOWED", None),
    (2890, "Övriga kortfristiga skulder", "NOTALLOWED", None),
    (2920, "Upplupna semesterlöner", "NOTALLOWED", None),
    (2971, "Förutbetalda hyresintäkter", "NOTALLOWED", None),
    (2990, "Övriga upplupna kostnader och förutbetalda intäkter", "NOTALLOWED", None),
    (3001, "Försäljning inom Sverige, 25 % moms", "ALLOWED", "MP1"),
    (3002, "Försäljning inom Sverige, 12 % moms", "ALLOWED", "MP2"),
    (3003, "Försäljning inom Sverige, 6 % moms", "ALLOWED", "MP3"),
    (3004, "Försäljning inom Sverige, momsfri", "ALLOWED", "MF"),
    (3011, "Hyresintäkter bostäder", "MANDATORY", None),
    (3015, "Hyresintäkter lokaler", "MANDATORY", "MP1"),
    (3016, "Hyresintäkter p-platser", "MANDATORY", "MP1"),
    (3105, "Försäljning varor till land utanför EU", "ALLOWED", None),
    (3106, "Försäljning varor till annat EU-land, momspliktig", "ALLOWED", None),
    (3108, "Försäljning varor till annat EU-land, momsfri", "ALLOWED", None),
    (3305, "Försäljning tjänster till land utanför EU", "ALLOWED", None),
    (3308, "Försäljning tjänster till annat EU-land", "ALLOWED", None),
    (3740, "Öres- och kronutjämning", "ALLOWED", None),
    (3960, "Valutakursvinster på fordringar och skulder av rörelsekaraktär", "ALLOWED", None),
    (3990, "Övriga ersättningar och intäkter", "ALLOWED", None),
    (4010, "Inköp material och varor", "ALLOWED", "I"),
    (4515, "Inköp av varor från annat EU-land, 25 %", "ALLOWED", None),
    (4535, "Inköp av tjänster från annat EU-land, 25 %", "ALLOWED", None),
    (5010, "Lokalhyra", "ALLOWED", "I"),
    (5020, "El för belysning", "ALLOWED", "I"),
    (5060, "Städning och renhållning", "ALLOWED", "I"),
    (5070, "Reparation och underhåll av lokaler", "ALLOWED", "I"),
    (5090, "Övriga lokalkostnader", "ALLOWED", "I"),
    (5120, "El för belysning", "MANDATORY", "I"),
    (5130, "Uppvärmning", "MANDATORY", "I"),
    (5140, "Vatten och avlopp", "MANDATORY", "I"),
    (5160, "Städning och renhållning", "MANDATORY", "I"),
    (5170, "Reparation och underhåll av fastighet", "MANDATORY", "I"),
    (5191, "Fastighetsskatt/fastighetsavgift", "MANDATORY", None),
    (5192, "Fastighetsförsäkringspremier", "MANDATORY", None),
    (5410, "Förbrukningsinventarier", "ALLOWED", "I"),
    (5460, "Förbrukningsmaterial", "ALLOWED", "I"),
    (5800, "Resekostnader", "ALLOWED", "I"),
    (5910, "Annonsering", "ALLOWED", "I"),
    (6040, "Kontokortsavgifter", "ALLOWED", None),
    (6064, "Factoringavgifter", "ALLOWED", None),
    (6071, "Representation, avdragsgill", "ALLOWED", "I"),
    (6110, "Kontorsmateriel", "ALLOWED", "I"),
    (6212, "Mobiltelefon", "ALLOWED", "I"),
    (6230, "Datakommunikation", "ALLOWED", "I"),
    (6310, "Företagsförsäkringar", "ALLOWED", None),
    (6530, "Redovisningstjänster", "ALLOWED", "I"),
    (6540, "IT-tjänster", "ALLOWED", "I"),
    (6570, "Bankkostnader", "ALLOWED", None),
    (6991, "Övriga externa kostnader, avdragsgilla", "ALLOWED", "I"),
    (7010, "Löner till kollektivanställda", "ALLOWED", None),
    (7210, "Löner till tjänstemän", "ALLOWED", None),
    (7510, "Arbetsgivaravgifter 31,42 %", "ALLOWED", None),
    (7820, "Avskrivningar på byggnader och markanläggningar", "ALLOWED", None),
    (7832, "Avskrivningar på inventarier och verktyg", "ALLOWED", None),
    (8310, "Ränteintäkter från omsättningstillgångar", "NOTALLOWED", None),
    (8314, "Skattefria ränteintäkter", "NOTALLOWED", None),
    (8410, "Räntekostnader för långfristiga skulder", "NOTALLOWED", None),
    (8423, "Räntekostnader för skatter och avgifter", "NOTALLOWED", None),
    (8910, "Skatt som belastar årets resultat", "NOTALLOWED", None),
    (8999, "Årets resultat", "NOTALLOWED", None),
]
# 5020 was replaced by 5120 in this chart and is kept, inactive, as old charts do.
SEED_INACTIVE_ACCOUNTS = {5020}
SEED_COST_CENTERS = [
    ("100", "Gården 1", True),
    ("200", "Gården 2", True),
    ("300", "Parkeringen", True),
    ("400", "Tallen 4 (såld)", False),
]
SEED_SERIES = [
    ("A", "Redovisning", True),
    ("B", "Kundfakturor", False),
    ("C", "Kundinbetalningar", False),
    ("D", "Leverantörsfakturor", False),
    ("E", "Leverantörsutbetalningar", False),
    ("F", "Kassa", False),
    ("K", "Kvitto & Utlägg", True),
    ("L", "Lön", True),
    ("M", "Momsredovisning", True),
]
SEED_MODES_OF_PAYMENT = [
    ("BG", "Bankgiro", "1930"),
    ("PG", "PlusGiro", "1920"),
    ("AG", "Autogiro", "1930"),
    ("KONT", "Kontant", "1910"),
]

DEMO_CLIENT_ID = "kontera-demo"
DEMO_CLIENT_SECRET = "kontera-demo-secret"
DEMO_REDIRECT_URI = "http://127.0.0.1:8000/integrations/fortnox/callback"
DEMO_TENANTS = [
    (1046823, "Brf Exempelgården", "769600-1234"),
    (1053991, "Exempel Handel AB", "556677-8899"),
]


def _sru_for(number: int) -> int:
    """An approximate INK2 SRU code by account range (Fortnox fills these from its BAS chart)."""
    ranges = [
        (1000, 1099, 7201),
        (1100, 1199, 7214),
        (1200, 1299, 7215),
        (1400, 1499, 7241),
        (1500, 1599, 7251),
        (1600, 1699, 7261),
        (1700, 1799, 7263),
        (1900, 1999, 7281),
        (2000, 2099, 7301),
        (2300, 2399, 7352),
        (2400, 2499, 7365),
        (2500, 2599, 7368),
        (2600, 2899, 7369),
        (2900, 2999, 7370),
        (3000, 3799, 7410),
        (3800, 3999, 7413),
        (4000, 4999, 7511),
        (5000, 6999, 7513),
        (7000, 7699, 7514),
        (7700, 7899, 7515),
        (8300, 8399, 7417),
        (8400, 8499, 7522),
        (8900, 8989, 7528),
        (8990, 8999, 7450),
    ]
    for low, high, sru in ranges:
        if low <= number <= high:
            return sru
    return 7513


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


class Tenant:
    """One Fortnox company (database). Accounts and voucher series are per financial year."""

    def __init__(
        self,
        database_number: int,
        company_name: str,
        org_number: str,
        *,
        lock: threading.RLock,
        clock: SandboxClock,
        address: str = "Exempelgatan 1",
        zip_code: str = "111 22",
        city: str = "Stockholm",
    ) -> None:
        self.database_number = database_number
        self.company_name = company_name
        self.org_number = org_number
        self.address = address
        self.zip_code = zip_code
        self.city = city
        self.financial_years: dict[int, FinancialYear] = {}
        self.accounts: dict[int, dict[int, Account]] = {}
        self.series: dict[int, dict[str, VoucherSeries]] = {}
        self.cost_centers: dict[str, CostCenter] = {}
        self.modes_of_payment: dict[str, ModeOfPayment] = {}
        self.vouchers: list[Voucher] = []
        self.locked_until: date | None = None
        # Scopes whose module the company has a licence for; None: every one.
        self.licences: set[str] | None = None
        self._next_year_id = 1
        self._lock = lock
        self._clock = clock

    def today(self) -> date:
        return date.fromtimestamp(self._clock.now())

    # -- financial years --

    def add_financial_year(
        self,
        from_date: date | str,
        to_date: date | str,
        *,
        year_id: int | None = None,
        copy_chart: bool = True,
    ) -> int:
        """Add a year; like Fortnox, it copies accounts and series (numbering restarts at 1) from
        the latest existing year unless ``copy_chart=False``."""
        start, end = _as_date(from_date), _as_date(to_date)
        if end < start:
            raise ValueError("to_date before from_date")
        with self._lock:
            for year in self.financial_years.values():
                if start <= year.to_date and year.from_date <= end:
                    raise ValueError(f"overlaps financial year {year.id}")
            if year_id is None:
                while self._next_year_id in self.financial_years:
                    self._next_year_id += 1
                year_id = self._next_year_id
            elif year_id in self.financial_years:
                raise ValueError(f"financial year {year_id} exists")
            latest = max(self.financial_years.values(), key=lambda y: y.to_date, default=None)
            self.financial_years[year_id] = FinancialYear(year_id, start, end)
            self.accounts[year_id] = {}
            self.series[year_id] = {}
            if copy_chart and latest is not None:
                for number, account in self.accounts[latest.id].items():
                    self.accounts[year_id][number] = Account.from_dict(account.to_dict())
                for code, series in self.series[latest.id].items():
                    self.series[year_id][code] = VoucherSeries(code, series.description, series.manual, 1)
            return year_id

    def financial_year_for(self, day: date) -> FinancialYear | None:
        with self._lock:
            for year in self.financial_years.values():
                if year.contains(day):
                    return year
            return None

    def current_year(self) -> FinancialYear | None:
        """The preselected year: the one containing today, else the one ending last."""
        with self._lock:
            return self.financial_year_for(self.today()) or max(
                self.financial_years.values(), key=lambda y: y.to_date, default=None
            )

    def _years(self, year_id: int | None) -> list[int]:
        if year_id is not None:
            if year_id not in self.financial_years:
                raise ValueError(f"no financial year {year_id}")
            return [year_id]
        if not self.financial_years:
            raise ValueError("add a financial year first")
        return list(self.financial_years)

    # -- accounts, cost centres, series, modes of payment --

    def add_account(
        self,
        number: int,
        description: str,
        active: bool = True,
        cost_center_settings: str = "ALLOWED",
        vat_code: str | None = None,
        year_id: int | None = None,
        *,
        sru: int | None = None,
        project_settings: str = "ALLOWED",
    ) -> Account:
        """Add (or replace) an account in one year, or in every year when ``year_id`` is None."""
        if not 1000 <= number <= 9999:
            raise ValueError("account numbers are 1000-9999")
        if cost_center_settings not in SETTINGS_VALUES or project_settings not in SETTINGS_VALUES:
            raise ValueError(f"settings must be one of {SETTINGS_VALUES}")
        with self._lock:
            added = None
            for year in self._years(year_id):
                added = Account(
                    number,
                    description,
                    active,
                    cost_center_settings,
                    project_settings,
                    vat_code=vat_code,
                    sru=sru if sru is not None else _sru_for(number),
                )
                self.accounts[year][number] = added
            current = self.current_year()
            if year_id is None and current is not None:
                return self.accounts[current.id][number]
            return added

    def remove_account(self, number: int, year_id: int | None = None) -> None:
        with self._lock:
            for year in self._years(year_id):
                self.accounts[year].pop(number, None)

    def account(self, number: int, year_id: int | None = None) -> Account | None:
        with self._lock:
            year = year_id if year_id is not None else getattr(self.current_year(), "id", None)
            return self.accounts.get(year, {}).get(number)

    def add_cost_center(self, code: str, description: str, active: bool = True, note: str = "") -> CostCenter:
        if not 1 <= len(code) <= 6:
            raise ValueError("cost centre codes are 1-6 characters")
        with self._lock:
            self.cost_centers[code] = CostCenter(code, description, active, note)
            return self.cost_centers[code]

    def cost_center(self, code: str) -> CostCenter | None:
        with self._lock:
            return self.cost_centers.get(code)

    def add_series(
        self, code: str, description: str, manual: bool = True, year_id: int | None = None
    ) -> VoucherSeries:
        """Add a series (or change its description/manual flag, keeping its numbering)."""
        if not 1 <= len(code) <= 10:
            raise ValueError("series codes are 1-10 characters")
        with self._lock:
            result = None
            for year in self._years(year_id):
                existing = self.series[year].get(code)
                if existing:
                    existing.description, existing.manual = description, manual
                else:
                    self.series[year][code] = VoucherSeries(code, description, manual)
                result = self.series[year][code]
            return result

    def voucher_series(self, code: str, year_id: int | None = None) -> VoucherSeries | None:
        with self._lock:
            year = year_id if year_id is not None else getattr(self.current_year(), "id", None)
            return self.series.get(year, {}).get(code)

    def add_mode_of_payment(self, code: str, description: str, account_number: str) -> ModeOfPayment:
        with self._lock:
            self.modes_of_payment[code] = ModeOfPayment(code, description, account_number)
            return self.modes_of_payment[code]

    def voucher(self, series: str, number: int, year_id: int | None = None) -> Voucher | None:
        with self._lock:
            year = year_id if year_id is not None else getattr(self.current_year(), "id", None)
            for voucher in self.vouchers:
                if (voucher.series, voucher.number, voucher.year) == (series, number, year):
                    return voucher
            return None

    # -- seed --

    def seed(self) -> None:
        """A realistic company: this year (Id 1) and last year (Id 2), BAS 2024 chart, property
        cost centres, Fortnox's usual series, and last year locked up to 30 September."""
        with self._lock:
            this_year = self.today().year
            self.add_financial_year(date(this_year, 1, 1), date(this_year, 12, 31), copy_chart=False)
            self.add_financial_year(date(this_year - 1, 1, 1), date(this_year - 1, 12, 31), copy_chart=False)
            for year_id in self.financial_years:
                for number, name, cc_settings, vat_code in SEED_ACCOUNTS:
                    self.add_account(
                        number, name, number not in SEED_INACTIVE_ACCOUNTS, cc_settings, vat_code, year_id
                    )
                for code, name, manual in SEED_SERIES:
                    self.add_series(code, name, manual, year_id)
            for code, name, active in SEED_COST_CENTERS:
                self.add_cost_center(code, name, active)
            for code, name, account in SEED_MODES_OF_PAYMENT:
                self.add_mode_of_payment(code, name, account)
            self.locked_until = date(this_year - 1, 9, 30)

    # -- persistence --

    def to_dict(self) -> dict:
        with self._lock:
            return {
                "database_number": self.database_number,
                "company_name": self.company_name,
                "org_number": self.org_number,
                "address": self.address,
                "zip_code": self.zip_code,
                "city": self.city,
                "financial_years": [year.to_dict() for year in self.financial_years.values()],
                "accounts": {
                    str(y): [a.to_dict() for a in accounts.values()] for y, accounts in self.accounts.items()
                },
                "series": {
                    str(y): [s.to_dict() for s in series.values()] for y, series in self.series.items()
                },
                "cost_centers": [cc.to_dict() for cc in self.cost_centers.values()],
                "modes_of_payment": [m.to_dict() for m in self.modes_of_payment.values()],
                "vouchers": [v.to_dict() for v in self.vouchers],
                "locked_until": self.locked_until.isoformat() if self.locked_until else None,
                "next_year_id": self._next_year_id,
                "licences": sorted(self.licences) if self.licences is not None else None,
            }

    @classmethod
    def from_dict(cls, data: dict, *, lock: threading.RLock, clock: SandboxClock) -> Tenant:
        tenant = cls(
            data["database_number"],
            data["company_name"],
            data["org_number"],
            lock=lock,
            clock=clock,
            address=data["address"],
            zip_code=data["zip_code"],
            city=data["city"],
        )
        for year in data["financial_years"]:
            year = FinancialYear.from_dict(year)
            tenant.financial_years[year.id] = year
        tenant.accounts = {
            int(y): {a["number"]: Account.from_dict(a) for a in accounts}
            for y, accounts in data["accounts"].items()
        }
        tenant.series = {
            int(y): {s["code"]: VoucherSeries(**s) for s in series} for y, series in data["series"].items()
        }
        tenant.cost_centers = {cc["code"]: CostCenter(**cc) for cc in data["cost_centers"]}
        tenant.modes_of_payment = {m["code"]: ModeOfPayment(**m) for m in data["modes_of_payment"]}
        tenant.vouchers = [Voucher.from_dict(v) for v in data["vouchers"]]
        tenant.locked_until = date.fromisoformat(data["locked_until"]) if data["locked_until"] else None
        tenant._next_year_id = data["next_year_id"]
        licences = data.get("licences")
        tenant.licences = set(licences) if licences is not None else None
        return tenant


# --- OAuth state ---------------------------------------------------------------------------------


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    name: str = ""
    service_accounts: bool = False


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    database_number: int
    scopes: list[str]
    redirect_uri: str | None  # None when /auth had no redirect_uri (then it defaulted)
    expires_at: float
    service: bool = False
    used: bool = False
    grant_id: str | None = None  # set when exchanged


@dataclass
class AccessToken:
    token: str
    client_id: str
    database_number: int
    scopes: list[str]
    expires_at: float
    grant_id: str
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    database_number: int
    scopes: list[str]
    expires_at: float
    grant_id: str
    used: bool = False
    revoked: bool = False


@dataclass
class RefreshReuse:
    """A refresh grant that presented an already used refresh token."""

    refresh_token: str
    client_id: str
    database_number: int
    at: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _money(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _quote_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                str(item)
                if key in QUOTED_NUMBER_KEYS and isinstance(item, int) and not isinstance(item, bool)
                else _quote_numbers(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_quote_numbers(item) for item in value]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _append_query(url: str, params: dict) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


class FortnoxSandbox:
    """WSGI app emulating Fortnox: ``/oauth-v1/auth``, ``/oauth-v1/token`` and the ``/3`` REST API."""

    def __init__(self) -> None:
        self.clock = SandboxClock()
        self.faults = FaultInjector()
        self.log: list[LoggedRequest] = []
        self.quirks = SandboxQuirks()
        self._lock = threading.RLock()
        self._url_map = Map([rule.empty() for rule in _RULES], strict_slashes=False)
        self._init_state()

    def _init_state(self) -> None:
        self.clients: dict[str, OAuthClient] = {}
        self.tenants: dict[int, Tenant] = {}
        self.consents: dict[tuple[str, int], dict] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.refresh_count = 0  # successful refresh grants
        self.refresh_attempts: dict[str, int] = {}  # refresh grants per presented refresh token
        self.refresh_reuse: list[RefreshReuse] = []
        self._rate_windows: dict[tuple[str, int], deque] = {}
        self._jwt_secret = secrets.token_bytes(32)

    # --- setup API -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: clients, tenants, tokens, counters, faults, log, quirks and clock offset."""
        with self._lock:
            self._init_state()
            self.log.clear()
            self.faults.clear()
            self.quirks = SandboxQuirks()
            self.clock.reset()

    def register_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        *,
        name: str = "",
        service_accounts: bool = False,
    ) -> OAuthClient:
        """Register (or update) an app as in Fortnox's Developer Portal."""
        if not redirect_uris:
            raise ValueError("at least one redirect URI")
        with self._lock:
            self.clients[client_id] = OAuthClient(
                client_id, client_secret, list(redirect_uris), name or client_id, service_accounts
            )
            return self.clients[client_id]

    def add_tenant(
        self, database_number: int, company_name: str, org_number: str, *, seed: bool = True, **details: str
    ) -> Tenant:
        with self._lock:
            if database_number in self.tenants:
                raise ValueError(f"tenant {database_number} exists")
            tenant = Tenant(
                database_number, company_name, org_number, lock=self._lock, clock=self.clock, **details
            )
            if seed:
                tenant.seed()
            self.tenants[database_number] = tenant
            return tenant

    def tenant(self, database_number: int) -> Tenant:
        return self.tenants[database_number]

    def vouchers(self, database_number: int) -> list[Voucher]:
        with self._lock:
            return list(self.tenants[database_number].vouchers)

    def seed_demo(
        self,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        redirect_uri: str = DEMO_REDIRECT_URI,
    ) -> dict:
        """Register the demo app and two seeded demo companies (idempotent)."""
        with self._lock:
            self.register_client(
                client_id, client_secret, [redirect_uri], name="Kontera (demo)", service_accounts=True
            )
            for database_number, name, org_number in DEMO_TENANTS:
                if database_number not in self.tenants:
                    tenant = self.add_tenant(database_number, name, org_number)
                    if name == "Exempel Handel AB":
                        tenant.address, tenant.zip_code, tenant.city = "Storgatan 12", "411 38", "Göteborg"
                        tenant.add_cost_center("BUTIK", "Butiken")
                        tenant.add_cost_center("WEBB", "Webbshop")
            return {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uri": redirect_uri,
                "tenants": {name: database_number for database_number, name, _ in DEMO_TENANTS},
            }

    def authorize(
        self,
        client_id: str,
        database_number: int,
        scopes: Iterable[str] | str,
        redirect_uri: str | None = None,
        state: str = "sandbox-state",
        *,
        account_type: str | None = None,
    ) -> str:
        """Return an authorization code exactly as approving the consent page would."""
        scope = scopes if isinstance(scopes, str) else " ".join(scopes)
        params = {"client_id": client_id, "scope": scope, "state": state, "response_type": "code"}
        if redirect_uri is not None:
            params["redirect_uri"] = redirect_uri
        if account_type is not None:
            params["account_type"] = account_type
        with self._lock:
            problem = self._check_auth_params(params)
            if problem:
                raise ValueError(problem[1] if problem[0] == "page" else problem[2])
            if database_number not in self.tenants:
                raise ValueError(f"no tenant {database_number}")
            return self._approve(params, database_number)

    def issue_tokens(self, client_id: str, database_number: int, scopes: Iterable[str] | str) -> dict:
        """Shortcut for tests: consent plus code exchange, returning the token endpoint's JSON."""
        with self._lock:
            code = self.codes[self.authorize(client_id, database_number, scopes)]
            return self._exchange_code(code, self.clients[client_id], code.redirect_uri)

    def revoke(self, database_number: int, client_id: str) -> None:
        """The customer withdraws consent: every token of this client and tenant dies."""
        with self._lock:
            self.consents.pop((client_id, database_number), None)
            for token in [*self.access_tokens.values(), *self.refresh_tokens.values()]:
                if token.client_id == client_id and token.database_number == database_number:
                    token.revoked = True

    # --- persistence -----------------------------------------------------------------------------

    def dump_state(self) -> dict:
        """Everything needed to survive a restart, as JSON-serialisable data."""
        with self._lock:
            return {
                "version": 1,
                "quirks": {
                    "quoted_numbers": self.quirks.quoted_numbers,
                    "locked_period_null": self.quirks.locked_period_null,
                },
                "clients": [
                    vars(c) | {"redirect_uris": list(c.redirect_uris)} for c in self.clients.values()
                ],
                "tenants": [t.to_dict() for t in self.tenants.values()],
                "consents": [
                    {"client_id": c, "database_number": d, **info} for (c, d), info in self.consents.items()
                ],
                "codes": [dict(vars(c)) for c in self.codes.values()],
                "access_tokens": [dict(vars(t)) for t in self.access_tokens.values()],
                "refresh_tokens": [dict(vars(t)) for t in self.refresh_tokens.values()],
                "refresh_count": self.refresh_count,
                "jwt_secret": self._jwt_secret.hex(),
            }

    def load_state(self, state: dict) -> None:
        with self._lock:
            self._init_state()
            self.quirks = SandboxQuirks(**state["quirks"])
            self.clients = {c["client_id"]: OAuthClient(**c) for c in state["clients"]}
            for data in state["tenants"]:
                tenant = Tenant.from_dict(data, lock=self._lock, clock=self.clock)
                self.tenants[tenant.database_number] = tenant
            for consent in state["consents"]:
                consent = dict(consent)
                key = (consent.pop("client_id"), consent.pop("database_number"))
                self.consents[key] = consent
            self.codes = {c["code"]: AuthorizationCode(**c) for c in state["codes"]}
            self.access_tokens = {t["token"]: AccessToken(**t) for t in state["access_tokens"]}
            self.refresh_tokens = {t["token"]: RefreshToken(**t) for t in state["refresh_tokens"]}
            self.refresh_count = state["refresh_count"]
            self._jwt_secret = bytes.fromhex(state["jwt_secret"])

    # --- WSGI ------------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        method, path = request.method, request.path
        query = request.query_string.decode("latin-1")
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind == "drop_before":
            self._log(method, path, 0, query)
        response = apply_fault_before(fault, environ)
        if response is None:
            response = self._dispatch(request)
        self._log(method, path, response.status_code, query)
        if fault is not None and fault.kind == "drop_after_commit":
            drop_connection(environ)
        return response(environ, start_response)

    def _log(self, method: str, path: str, status: int, query: str) -> None:
        with self._lock:
            self.log.append(LoggedRequest(method, path, status, self.clock.now(), query))

    def _dispatch(self, request: Request) -> Response:
        adapter = self._url_map.bind_to_environ(request.environ)
        with self._lock:
            if request.path == "/3" or request.path.startswith("/3/"):
                return self._rest(request, adapter)
            try:
                endpoint, args = adapter.match()
            except (NotFound, MethodNotAllowed):
                return Response("Not Found", status=404, content_type="text/plain; charset=utf-8")
            return getattr(self, "_" + endpoint)(request, **args)

    # --- responses -------------------------------------------------------------------------------

    def _json(self, payload: Any, status: int = 200, headers: dict | None = None) -> Response:
        if self.quirks.quoted_numbers:
            payload = _quote_numbers(payload)
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        if ESCAPE_SLASHES:
            text = text.replace("/", "\\/")
        return Response(text, status=status, content_type="application/json", headers=headers)

    def _error(self, error: FortnoxError) -> Response:
        if error.status == 404:
            body = {"Error": 1, "Message": error.message, "Code": error.code}
        else:
            body = {"error": 1, "message": error.message, "code": error.code}
        return self._json({"ErrorInformation": body}, status=error.status)

    # --- OAuth: consent page ---------------------------------------------------------------------

    def _check_auth_params(self, params: dict) -> tuple | None:
        """None if fine; ("page", text) for an error page; ("redirect", uri, error, description)."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return ("page", "Auth code or ClientID supplied is invalid")
        redirect_uri = params.get("redirect_uri") or client.redirect_uris[0]
        if redirect_uri not in client.redirect_uris:
            return ("page", "The redirect_uri does not match any registered redirect URI")
        account_type = params.get("account_type")
        if account_type and account_type != "service":
            return ("redirect", redirect_uri, "invalid_request", "account_type must be service")
        if account_type == "service" and not client.service_accounts:
            return ("page", "Client does not allow service account")
        if params.get("response_type") != "code":
            return ("redirect", redirect_uri, "unsupported_response_type", "response_type must be code")
        scopes = params.get("scope", "").split()
        if not scopes:
            return ("redirect", redirect_uri, "invalid_scope", "No scope requested")
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            return ("redirect", redirect_uri, "invalid_scope", f"Unknown scope: {' '.join(unknown)}")
        if len(params.get("state", "")) < MIN_STATE_LENGTH:
            return ("redirect", redirect_uri, "invalid_state", MSG_WEAK_STATE)
        return None

    def _approve(self, params: dict, database_number: int) -> str:
        client = self.clients[params["client_id"]]
        scopes = params["scope"].split()
        service = params.get("account_type") == "service"
        self.consents[(client.client_id, database_number)] = {"scopes": scopes, "service": service}
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code,
            client.client_id,
            database_number,
            scopes,
            params.get("redirect_uri") or None,
            self.clock.now() + AUTH_CODE_TTL,
            service,
        )
        return code

    def _auth_problem_response(self, problem: tuple, state: str) -> Response:
        if problem[0] == "page":
            return self._html_page(
                "Fel", f"<p class=error>{html.escape(problem[1])}</p>", AUTH_ERROR_PAGE_STATUS
            )
        _, redirect_uri, error, description = problem
        params = {"error": error, "error_description": description}
        if state:
            params["state"] = state
        return Response(status=302, headers={"Location": _append_query(redirect_uri, params)})

    def _auth_page(self, request: Request) -> Response:
        params = {key: request.args[key] for key in request.args}
        problem = self._check_auth_params(params)
        if problem:
            return self._auth_problem_response(problem, params.get("state", ""))
        return self._consent_page(params)

    def _auth_decide(self, request: Request) -> Response:
        params = {
            key: request.form[key]
            for key in request.form
            if key not in ("tenant", "decision") and request.form[key] != ""
        }
        problem = self._check_auth_params(params)
        if problem:
            return self._auth_problem_response(problem, params.get("state", ""))
        redirect_uri = params.get("redirect_uri") or self.clients[params["client_id"]].redirect_uris[0]
        if request.form.get("decision") != "approve":
            return Response(
                status=302,
                headers={
                    "Location": _append_query(
                        redirect_uri,
                        {
                            "error": "access_denied",
                            "error_description": "The resource owner denied the request",
                            "state": params["state"],
                        },
                    )
                },
            )
        tenant = request.form.get("tenant", "")
        if not _INT_RE.match(tenant) or int(tenant) not in self.tenants:
            return self._consent_page(params, error="Välj vilket företag integrationen ska kopplas till.")
        code = self._approve(params, int(tenant))
        return Response(
            status=302,
            headers={"Location": _append_query(redirect_uri, {"code": code, "state": params["state"]})},
        )

    def _consent_page(self, params: dict, error: str = "") -> Response:
        client = self.clients[params["client_id"]]
        esc = html.escape
        scopes = "".join(f"<li>{esc(SCOPE_LABELS[s])}</li>" for s in params["scope"].split())
        hidden = "".join(f'<input type=hidden name="{esc(k)}" value="{esc(v)}">' for k, v in params.items())
        choices = "".join(
            f'<label><input type=radio name=tenant value="{t.database_number}"'
            f"{' checked' if i == 0 else ''}> {esc(t.company_name)} ({esc(t.org_number)})</label><br>"
            for i, t in enumerate(self.tenants.values())
        )
        if not choices:
            choices = "<p>Det finns inga företag i sandlådan.</p>"
        body = (
            f"{'<p class=error>' + esc(error) + '</p>' if error else ''}"
            f"<p>Godkänn integration från <b>{esc(client.name)}</b>.</p>"
            f"<p>För att {esc(client.name)} ska fungera tillsammans med ditt Fortnox krävs behörigheter "
            "till:</p>"
            f"<ul>{scopes}</ul>"
            f"<form method=post>{hidden}<fieldset><legend>Företag</legend>{choices}</fieldset>"
            "<p><button name=decision value=approve>Godkänn behörighet</button> "
            "<button name=decision value=deny>Avbryt</button></p></form>"
            "<p><small>Fortnox-sandlåda (Kontera). Inget riktigt Fortnox-konto används.</small></p>"
        )
        return self._html_page("Godkänn behörighet", body)

    @staticmethod
    def _html_page(title: str, body: str, status: int = 200) -> Response:
        page = (
            f"<!doctype html><html lang=sv><head><meta charset=utf-8><title>{html.escape(title)} – Fortnox"
            "</title><style>body{font-family:sans-serif;max-width:36em;margin:3em auto}"
            ".error{color:#b00}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
        )
        return Response(page, status=status, content_type="text/html; charset=utf-8")

    # --- OAuth: token endpoint -------------------------------------------------------------------

    @staticmethod
    def _token_error(status: int, error: str, description: str) -> Response:
        body = json.dumps({"error": error, "error_description": description}, separators=(",", ":"))
        if status == 401:  # recorded: invalid_client comes as text/plain [VCR-ACC]
            return Response(body, status=401, content_type="text/plain;charset=UTF-8")
        # recorded: invalid_grant comes as text/html with no-store [VCR-ACC]; all 400s alike here
        return Response(
            body,
            status=status,
            content_type="text/html; charset=UTF-8",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _token(self, request: Request) -> Response:
        auth = request.authorization
        client = None
        if auth is not None and auth.type == "basic":
            candidate = self.clients.get(auth.username or "")
            if candidate is not None and hmac.compare_digest(candidate.client_secret, auth.password or ""):
                client = candidate
        if client is None:
            return self._token_error(401, "invalid_client", "The client credentials are invalid")
        form = request.form
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            code = self.codes.get(form.get("code", ""))
            if code is None:
                return self._token_error(400, "invalid_grant", "Invalid authorization code")
            result = self._exchange_code(code, client, form.get("redirect_uri"))
            return self._token_response(result) if isinstance(result, dict) else result
        if grant_type == "refresh_token":
            return self._refresh(form.get("refresh_token", ""), client)
        if grant_type == "client_credentials":
            return self._client_credentials(request, client)
        if not grant_type:
            return self._token_error(400, "invalid_request", "grant_type is missing")
        return self._token_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")

    def _exchange_code(
        self, code: AuthorizationCode, client: OAuthClient, sent_uri: str | None
    ) -> dict | Response:
        """The token JSON for a valid code, else the refusal to send."""
        now = self.clock.now()
        expected_uri = code.redirect_uri
        if code.used:
            if REVOKE_TOKENS_ON_CODE_REUSE and code.grant_id:
                self._revoke_grant(code.grant_id)
            return self._token_error(400, "invalid_grant", "Invalid authorization code")
        if (
            code.client_id != client.client_id
            or now >= code.expires_at
            or (code.client_id, code.database_number) not in self.consents
        ):
            return self._token_error(400, "invalid_grant", "Invalid authorization code")
        if expected_uri is not None and sent_uri != expected_uri:
            return self._token_error(400, "invalid_grant", "The redirect_uri does not match")
        if expected_uri is None and sent_uri and sent_uri != client.redirect_uris[0]:
            return self._token_error(400, "invalid_grant", "The redirect_uri does not match")
        code.used = True
        code.grant_id = uuid.uuid4().hex
        return self._issue(client.client_id, code.database_number, code.scopes, code.grant_id)

    def _refresh(self, presented: str, client: OAuthClient) -> Response:
        now = self.clock.now()
        self.refresh_attempts[presented] = self.refresh_attempts.get(presented, 0) + 1
        token = self.refresh_tokens.get(presented)
        if token is None or token.client_id != client.client_id:
            return self._token_error(400, "invalid_grant", "Invalid refresh token")
        if token.used:
            self.refresh_reuse.append(RefreshReuse(presented, token.client_id, token.database_number, now))
            if REVOKE_CHAIN_ON_REFRESH_REUSE:
                self._revoke_grant(token.grant_id)
            return self._token_error(400, "invalid_grant", "Invalid refresh token")
        if (
            token.revoked
            or now >= token.expires_at
            or (token.client_id, token.database_number) not in self.consents
        ):
            return self._token_error(400, "invalid_grant", "Invalid refresh token")
        token.used = True
        if REVOKE_ACCESS_TOKEN_ON_REFRESH:
            for access in self.access_tokens.values():
                if access.grant_id == token.grant_id:
                    access.revoked = True
        self.refresh_count += 1
        return self._token_response(
            self._issue(token.client_id, token.database_number, token.scopes, token.grant_id)
        )

    def _client_credentials(self, request: Request, client: OAuthClient) -> Response:
        # UNVERIFIED: where tenantId goes; we accept a TenantId header or a tenantId form field.
        tenant = request.headers.get("TenantId") or request.form.get("tenantId", "")
        consent = self.consents.get((client.client_id, int(tenant))) if _INT_RE.match(tenant) else None
        if consent is None or not consent["service"]:
            return self._token_error(400, "invalid_grant", "No service account consent for this tenant")
        grant_id = f"service:{client.client_id}:{tenant}"
        return self._token_response(
            self._issue(client.client_id, int(tenant), consent["scopes"], grant_id, refresh=False)
        )

    def _issue(
        self, client_id: str, database_number: int, scopes: list[str], grant_id: str, *, refresh: bool = True
    ) -> dict:
        now = self.clock.now()
        access = self._jwt(
            {
                "iss": "https://apps.fortnox.se/oauth-v1",
                "sub": f"{client_id}@{database_number}",
                "clientid": client_id,
                "tenantId": database_number,
                "scope": " ".join(scopes),
                "iat": int(now),
                "exp": int(now + ACCESS_TOKEN_TTL),
                "jti": uuid.uuid4().hex,
            }
        )
        self.access_tokens[access] = AccessToken(
            access, client_id, database_number, list(scopes), now + ACCESS_TOKEN_TTL, grant_id
        )
        body = {
            "access_token": access,
            "expires_in": ACCESS_TOKEN_TTL,
            "token_type": "bearer",
            "scope": " ".join(scopes),
        }
        if refresh:
            refresh_token = str(uuid.uuid4())
            self.refresh_tokens[refresh_token] = RefreshToken(
                refresh_token, client_id, database_number, list(scopes), now + REFRESH_TOKEN_TTL, grant_id
            )
            body["refresh_token"] = refresh_token
        return body

    def _jwt(self, claims: dict) -> str:
        """A JWT-shaped access token (clients may read the tenantId claim); we validate by lookup."""
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._jwt_secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64url(signature)}"

    def _token_response(self, tokens: dict) -> Response:
        return Response(
            json.dumps(tokens, separators=(",", ":")),
            status=200,
            content_type="application/json",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _revoke_grant(self, grant_id: str) -> None:
        for token in [*self.access_tokens.values(), *self.refresh_tokens.values()]:
            if token.grant_id == grant_id:
                token.revoked = True

    # --- REST plumbing ---------------------------------------------------------------------------

    def _bearer(self, request: Request) -> AccessToken | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        token = self.access_tokens.get(header[len("Bearer ") :].strip())
        if (
            token is None
            or token.revoked
            or self.clock.now() >= token.expires_at
            or (token.client_id, token.database_number) not in self.consents
            or token.database_number not in self.tenants
        ):
            return None
        return token

    def _rate_limited(self, key: tuple[str, int]) -> bool:
        now = self.clock.now()
        window = self._rate_windows.setdefault(key, deque())
        while window and window[0] <= now - RATE_LIMIT_WINDOW:
            window.popleft()
        if len(window) >= RATE_LIMIT_REQUESTS:
            if RATE_LIMIT_COUNTS_REJECTED:
                window.append(now)
            return True
        window.append(now)
        return False

    def _rest(self, request: Request, adapter: Any) -> Response:
        token = self._bearer(request)
        if token is None:
            return self._json({"message": "unauthorized"}, status=401)
        if self._rate_limited((token.client_id, token.database_number)):
            return Response(RATE_LIMIT_BODY, status=429, content_type=RATE_LIMIT_CONTENT_TYPE)
        try:
            try:
                endpoint, args = adapter.match()
            except (NotFound, MethodNotAllowed):
                raise FortnoxError(NO_SUCH_ROUTE_STATUS, ERR_NO_SUCH_ROUTE, "No such route") from None
            scope = RESOURCE_SCOPES[request.path.split("/")[2]]
            if scope not in token.scopes:
                status = 400 if self.quirks.scope_error_as_400 else SCOPE_ERROR_STATUS
                raise FortnoxError(status, ERR_NO_SCOPE, MSG_NO_SCOPE)
            licences = self.tenants[token.database_number].licences
            if licences is not None and scope not in licences:
                raise FortnoxError(LICENCE_ERROR_STATUS, ERR_NO_LICENCE, MSG_NO_LICENCE)
            if (
                endpoint != "sie"
                and "Accept" in request.headers
                and not request.accept_mimetypes["application/json"]
            ):
                raise _bad(ERR_INVALID_RESPONSE_TYPE, "Invalid response type")
            return getattr(self, "_" + endpoint)(request, self.tenants[token.database_number], **args)
        except FortnoxError as error:
            return self._error(error)

    def _url(self, request: Request, path: str) -> str:
        return request.root_url + "3/" + path

    @staticmethod
    def _int_param(request: Request, name: str) -> int | None:
        raw = request.args.get(name)
        if raw is None:
            return None
        if not _INT_RE.match(raw):
            raise _bad(ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet")
        return int(raw)

    @staticmethod
    def _date_param(request: Request, name: str) -> date | None:
        raw = request.args.get(name)
        if raw is None:
            return None
        try:
            if not _DATE_RE.match(raw):
                raise ValueError(raw)
            return date.fromisoformat(raw)
        except ValueError:
            raise _bad(ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet") from None

    def _page(self, request: Request, items: list, key: str) -> dict:
        page = self._int_param(request, "page")
        limit = self._int_param(request, "limit")
        page = 1 if page is None else page
        limit = DEFAULT_LIMIT if limit is None else limit
        if page < 1 or not 1 <= limit <= MAX_LIMIT:
            raise _bad(ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet")
        total = len(items)
        return {
            "MetaInformation": {
                "@TotalResources": total,
                "@TotalPages": math.ceil(total / limit),
                "@CurrentPage": page,
            },
            key: items[(page - 1) * limit : page * limit],
        }

    def _year(self, request: Request, tenant: Tenant) -> FinancialYear:
        """?financialyear=<Id>, else ?financialyeardate=<date>, else the preselected year."""
        year_id = self._int_param(request, "financialyear")
        if year_id is not None:
            if year_id not in tenant.financial_years:
                raise _bad(ERR_FINANCIAL_YEAR_NOT_FOUND, "Kan inte hitta räkenskapsåret.")
            return tenant.financial_years[year_id]
        day = self._date_param(request, "financialyeardate")
        year = tenant.financial_year_for(day) if day else tenant.current_year()
        if year is None:
            raise _bad(ERR_NO_FINANCIAL_YEAR, "Räkenskapsår saknas för valt datum")
        return year

    # --- REST: master data -----------------------------------------------------------------------

    def _account_json(self, request: Request, tenant: Tenant, account: Account, year: int) -> dict:
        carried = account.balance_brought_forward + sum(
            (
                row.debit - row.credit
                for v in tenant.vouchers
                if v.year == year
                for row in v.rows
                if row.account == account.number and not row.removed
            ),
            Decimal(0),
        )
        return {
            "@url": self._url(request, f"accounts/{account.number}?financialyear={year}"),
            "Active": account.active,
            "BalanceBroughtForward": _money(account.balance_brought_forward),
            "BalanceCarriedForward": _money(carried),
            "CostCenter": "",
            "CostCenterSettings": account.cost_center_settings,
            "Description": account.description,
            "Number": account.number,
            "Project": "",
            "ProjectSettings": account.project_settings,
            "QuantitySettings": account.quantity_settings,
            "QuantityUnit": "",
            "SRU": account.sru,
            "TransactionInformation": "",
            "TransactionInformationSettings": account.transaction_information_settings,
            "VATCode": account.vat_code,
            "Year": year,
        }

    def _accounts(self, request: Request, tenant: Tenant) -> Response:
        year = self._year(request, tenant)
        accounts = sorted(tenant.accounts[year.id].values(), key=lambda a: a.number)
        return self._json(
            self._page(
                request, [self._account_json(request, tenant, a, year.id) for a in accounts], "Accounts"
            )
        )

    def _account(self, request: Request, tenant: Tenant, number: str) -> Response:
        year = self._year(request, tenant)
        account = tenant.accounts[year.id].get(int(number)) if _INT_RE.match(number) else None
        if account is None:
            raise FortnoxError(404, ERR_ACCOUNT_NOT_FOUND, "Kan inte hitta kontot.")
        return self._json({"Account": self._account_json(request, tenant, account, year.id)})

    def _cost_center_json(self, request: Request, cc: CostCenter) -> dict:
        return {
            "@url": self._url(request, f"costcenters/{cc.code}"),
            "Active": cc.active,
            "Code": cc.code,
            "Description": cc.description,
            "Note": cc.note,
        }

    def _costcenters(self, request: Request, tenant: Tenant) -> Response:
        items = [
            self._cost_center_json(request, cc)
            for cc in sorted(tenant.cost_centers.values(), key=lambda c: c.code)
        ]
        if COSTCENTERS_LIST_HAS_META:
            return self._json(self._page(request, items, "CostCenters"))
        return self._json({"CostCenters": items})

    def _costcenter(self, request: Request, tenant: Tenant, code: str) -> Response:
        cc = tenant.cost_centers.get(code)
        if cc is None:
            raise FortnoxError(404, ERR_COST_CENTER_NOT_FOUND, "Kan inte hitta kostnadsstället.")
        return self._json({"CostCenter": self._cost_center_json(request, cc)})

    def _series_json(self, request: Request, series: VoucherSeries, year: int) -> dict:
        return {
            "@url": self._url(request, f"voucherseries/{series.code}?financialyear={year}"),
            "Code": series.code,
            "Description": series.description,
            "Manual": series.manual,
            "NextVoucherNumber": series.next_voucher_number,
            "Year": year,
        }

    def _voucherseries_list(self, request: Request, tenant: Tenant) -> Response:
        year = self._year(request, tenant)
        items = [
            self._series_json(request, s, year.id)
            for s in sorted(tenant.series[year.id].values(), key=lambda s: s.code)
        ]
        return self._json(self._page(request, items, "VoucherSeriesCollection"))

    def _voucherseries(self, request: Request, tenant: Tenant, code: str) -> Response:
        year = self._year(request, tenant)
        series = tenant.series[year.id].get(code)
        if series is None:
            raise FortnoxError(404, ERR_SERIES_INVALID, "Kan inte hitta verifikationsserien.")
        return self._json({"VoucherSeries": self._series_json(request, series, year.id)})

    def _year_json(self, request: Request, year: FinancialYear) -> dict:
        return {
            "@url": self._url(request, f"financialyears/{year.id}"),
            "Id": year.id,
            "FromDate": year.from_date.isoformat(),
            "ToDate": year.to_date.isoformat(),
            "AccountChartType": year.account_chart_type,
            "AccountingMethod": year.accounting_method,
        }

    def _financialyears(self, request: Request, tenant: Tenant) -> Response:
        day = self._date_param(request, "date")
        years = sorted(tenant.financial_years.values(), key=lambda y: y.id)
        if day is not None:
            years = [y for y in years if y.contains(day)]
        return self._json(self._page(request, [self._year_json(request, y) for y in years], "FinancialYears"))

    def _financialyear(self, request: Request, tenant: Tenant, year_id: str) -> Response:
        year = tenant.financial_years.get(int(year_id)) if _INT_RE.match(year_id) else None
        if year is None:
            raise FortnoxError(404, ERR_FINANCIAL_YEAR_NOT_FOUND, "Kan inte hitta räkenskapsåret.")
        return self._json({"FinancialYear": self._year_json(request, year)})

    def _lockedperiod(self, request: Request, tenant: Tenant) -> Response:
        if tenant.locked_until is not None:
            end: str | None = tenant.locked_until.isoformat()
        else:
            end = None if self.quirks.locked_period_null else LOCKED_PERIOD_NONE
        return self._json({"LockedPeriod": {"EndDate": end}})

    def _companyinformation(self, request: Request, tenant: Tenant) -> Response:
        return self._json(
            {
                "CompanyInformation": {
                    "Address": tenant.address,
                    "City": tenant.city,
                    "CompanyName": tenant.company_name,
                    "CountryCode": "SE",
                    "DatabaseNumber": tenant.database_number,
                    "OrganizationNumber": tenant.org_number,
                    "VisitAddress": tenant.address,
                    "VisitCity": tenant.city,
                    "VisitCountryCode": "SE",
                    "VisitZipCode": tenant.zip_code,
                    "ZipCode": tenant.zip_code,
                }
            }
        )

    def _company_settings(self, request: Request, tenant: Tenant) -> Response:
        # DatabaseNumber is a string here, an int in /companyinformation (§4.6).
        return self._json(
            {
                "CompanySettings": {
                    "Address": tenant.address,
                    "BG": "",
                    "BIC": "",
                    "City": tenant.city,
                    "CountryCode": "SE",
                    "DatabaseNumber": str(tenant.database_number),
                    "Email": "",
                    "IBAN": "",
                    "Name": tenant.company_name,
                    "OrganizationNumber": tenant.org_number,
                    "PG": "",
                    "Phone1": "",
                    "TaxEnabled": True,
                    "VATNumber": "SE" + tenant.org_number.replace("-", "") + "01",
                    "ZipCode": tenant.zip_code,
                }
            }
        )

    def _mode_json(self, request: Request, mode: ModeOfPayment) -> dict:
        return {
            "@url": self._url(request, f"modesofpayments/{mode.code}"),
            "AccountNumber": mode.account_number,
            "Code": mode.code,
            "Description": mode.description,
        }

    def _modesofpayments(self, request: Request, tenant: Tenant) -> Response:
        items = [
            self._mode_json(request, m)
            for m in sorted(tenant.modes_of_payment.values(), key=lambda m: m.code)
        ]
        return self._json(self._page(request, items, "ModesOfPayments"))

    def _modeofpayment(self, request: Request, tenant: Tenant, code: str) -> Response:
        mode = tenant.modes_of_payment.get(code)
        if mode is None:
            raise FortnoxError(404, ERR_MODE_OF_PAYMENT_NOT_FOUND, "Kan inte hitta betalsättet.")
        return self._json({"ModeOfPayment": self._mode_json(request, mode)})

    def _modeofpayment_create(self, request: Request, tenant: Tenant) -> Response:
        data = self._json_body(request, "ModeOfPayment")
        unknown = set(data) - {"AccountNumber", "Code", "Description", "@url"}
        if unknown:
            raise _bad(ERR_FIELD_NAME, "Felaktigt fältnamn")
        for name in ("Code", "Description", "AccountNumber"):
            value = data.get(name)
            if value is None or value == "":
                raise _bad(ERR_REQUIRED, f"Obligatoriskt fält saknas: {name}")
            if not isinstance(value, str):
                raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")
            _check_characters(value)
        account = data["AccountNumber"]
        if len(account) != 4 or not account.isdigit():
            raise _bad(ERR_INVALID_ACCOUNT_NUMBER, f"Ogiltigt kontonummer: {account}")
        year = tenant.current_year()
        if year is None or int(account) not in tenant.accounts[year.id]:
            raise _bad(ERR_ACCOUNT_NOT_FOUND, "Kan inte hitta kontot.")
        if data["Code"] in tenant.modes_of_payment:
            raise _bad(ERR_MODE_OF_PAYMENT_EXISTS, f'Betalsättet "{data["Code"]}" finns redan')
        mode = tenant.add_mode_of_payment(data["Code"], data["Description"], account)
        return self._json({"ModeOfPayment": self._mode_json(request, mode)}, status=201)

    # --- REST: vouchers --------------------------------------------------------------------------

    def _json_body(self, request: Request, key: str) -> dict:
        if request.mimetype != "application/json":  # [HDR] Content-Type: application/json
            raise _bad(ERR_INVALID_CONTENT_TYPE, MSG_INVALID_CONTENT_TYPE)
        raw = request.get_data()
        if not raw.strip():
            raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")
        try:
            body = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
        except ValueError:
            raise _bad(ERR_JSON, "Error deserializing JSON: JSON_ERROR_SYNTAX") from None
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")
        if set(body) != {key}:
            raise _bad(ERR_FIELD_NAME, "Felaktigt fältnamn")
        return body[key]

    def _voucher_json(self, request: Request, voucher: Voucher) -> dict:
        return {
            "@url": self._voucher_url(request, voucher),
            "Comments": voucher.comments or None,
            "CostCenter": voucher.cost_center,
            "Description": voucher.description,
            "Project": voucher.project,
            "ReferenceNumber": voucher.reference_number,
            "ReferenceType": voucher.reference_type,
            "TransactionDate": voucher.transaction_date.isoformat(),
            "VoucherNumber": voucher.number,
            "VoucherRows": [
                {
                    "Account": row.account,
                    "CostCenter": row.cost_center,
                    "Credit": _money(row.credit),
                    "Description": row.description,
                    "Debit": _money(row.debit),
                    "Project": row.project,
                    "Quantity": _money(row.quantity),
                    "Removed": row.removed,
                    "TransactionInformation": row.transaction_information,
                }
                for row in voucher.rows
            ],
            "VoucherSeries": voucher.series,
            "Year": voucher.year,
            "ApprovalState": voucher.approval_state,
        }

    def _voucher_url(self, request: Request, voucher: Voucher) -> str:
        return self._url(request, f"vouchers/{voucher.series}/{voucher.number}?financialyear={voucher.year}")

    def _voucher_list_item(self, request: Request, voucher: Voucher) -> dict:
        item = {
            "@url": self._voucher_url(request, voucher),
            "Comments": voucher.comments or None,
            "Description": voucher.description,
            "ReferenceNumber": voucher.reference_number,
            "ReferenceType": voucher.reference_type,
            "TransactionDate": voucher.transaction_date.isoformat(),
            "VoucherNumber": voucher.number,
            "VoucherSeries": voucher.series,
            "Year": voucher.year,
            "ApprovalState": voucher.approval_state,
        }
        if not self.quirks.list_items_with_comments:
            del item["Comments"], item["Description"]
        return item

    def _vouchers(self, request: Request, tenant: Tenant, series: str | None = None) -> Response:
        year = self._year(request, tenant)
        from_date = self._date_param(request, "fromdate")
        to_date = self._date_param(request, "todate")
        series = series or request.args.get("voucherseries")
        cost_center = request.args.get("costcenter")
        found = [
            v
            for v in tenant.vouchers
            if v.year == year.id
            and (series is None or v.series == series)
            and (from_date is None or v.transaction_date >= from_date)
            and (to_date is None or v.transaction_date <= to_date)
            and (cost_center is None or any(r.cost_center == cost_center for r in v.rows))
        ]
        found.sort(key=lambda v: (v.series, v.number))
        return self._json(
            self._page(request, [self._voucher_list_item(request, v) for v in found], "Vouchers")
        )

    def _vouchers_sublist(self, request: Request, tenant: Tenant, series: str | None = None) -> Response:
        return self._vouchers(request, tenant, series)

    def _voucher(self, request: Request, tenant: Tenant, series: str, number: str) -> Response:
        year = self._year(request, tenant)
        voucher = tenant.voucher(series, int(number), year.id) if _INT_RE.match(number) else None
        if voucher is None:
            raise FortnoxError(404, ERR_VOUCHER_NOT_FOUND, "Kan inte hitta verifikationen.")
        return self._json({"Voucher": self._voucher_json(request, voucher)})

    def _voucher_create(self, request: Request, tenant: Tenant) -> Response:
        voucher = self._validate_voucher(request, tenant)
        series = tenant.series[voucher.year][voucher.series]
        voucher.number = series.next_voucher_number
        series.next_voucher_number += 1
        tenant.vouchers.append(voucher)
        url = self._voucher_url(request, voucher)
        return self._json(
            {"Voucher": self._voucher_json(request, voucher)}, status=201, headers={"Location": url}
        )

    def _validate_voucher(self, request: Request, tenant: Tenant) -> Voucher:
        """Every refusal raises before anything is stored or any number is taken."""
        data = self._json_body(request, "Voucher")
        if set(data) - VOUCHER_FIELDS - VOUCHER_READ_ONLY:
            raise _bad(ERR_FIELD_NAME, "Felaktigt fältnamn")
        rows_in = data.get("VoucherRows")
        if rows_in is not None and not isinstance(rows_in, list):
            raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")
        for row in rows_in or []:
            if not isinstance(row, dict):
                raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")
            if set(row) - ROW_FIELDS - ROW_READ_ONLY:
                raise _bad(ERR_FIELD_NAME, "Felaktigt fältnamn")

        description = _text(data, "Description", VOUCHER_DESCRIPTION_MAX, required=True)
        comments = _text(data, "Comments", VOUCHER_COMMENTS_MAX)
        series_code = _text(data, "VoucherSeries", 10, required=True)
        raw_date = data.get("TransactionDate")
        if raw_date is None or raw_date == "":
            raise _bad(ERR_REQUIRED, "Obligatoriskt fält saknas: TransactionDate")
        transaction_date = _parse_date(raw_date)
        voucher_cc = _text(data, "CostCenter", 100)
        voucher_project = _project(data)
        year_in_body = data.get("Year")
        if year_in_body is not None and (isinstance(year_in_body, bool) or not isinstance(year_in_body, int)):
            raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")

        if not rows_in or len(rows_in) < 2:
            raise _bad(ERR_TOO_FEW_ROWS, "En verifikation måste ha minst två rader.")
        rows = []
        for row in rows_in:
            account = row.get("Account")
            if account is None:
                raise _bad(ERR_REQUIRED, "Obligatoriskt fält saknas: Account")
            if isinstance(account, bool) or not isinstance(account, int) or not 1000 <= account <= 9999:
                raise _bad(ERR_INVALID_ACCOUNT_NUMBER, f"Ogiltigt kontonummer: {account}")
            debit, credit = _amount(row, "Debit"), _amount(row, "Credit")
            if debit and credit:
                raise _bad(ERR_INVALID_AMOUNT, f"Ogiltigt belopp i fältet Debit: {row['Debit']}")
            quantity = row.get("Quantity")
            if quantity is not None and (
                isinstance(quantity, bool) or not isinstance(quantity, (int, Decimal))
            ):
                raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")
            rows.append(
                VoucherRow(
                    account=account,
                    debit=debit,
                    credit=credit,
                    description="",
                    cost_center=_text(row, "CostCenter", 100),
                    project=_project(row),
                    transaction_information=_text(
                        row, "TransactionInformation", ROW_TRANSACTION_INFORMATION_MAX
                    ),
                    quantity=Decimal(quantity or 0),
                )
            )

        # Financial year: ?financialyear= (or Year in the body), else the preselected year.
        query_year = self._int_param(request, "financialyear")
        if query_year is not None and year_in_body is not None and query_year != year_in_body:
            raise _bad(ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet")
        year_id = query_year if query_year is not None else year_in_body
        if year_id is not None:
            year = tenant.financial_years.get(year_id)
            if year is None:
                raise _bad(ERR_FINANCIAL_YEAR_NOT_FOUND, "Kan inte hitta räkenskapsåret.")
        else:
            year = tenant.current_year()
        if year is None or not year.contains(transaction_date):
            raise _bad(ERR_NO_FINANCIAL_YEAR, "Räkenskapsår saknas för valt datum")

        series = tenant.series[year.id].get(series_code)
        if series is None:
            raise _bad(ERR_SERIES_INVALID, "Ogiltig verifikationsserie angiven")
        if not series.manual:
            raise _bad(ERR_SERIES_NOT_MANUAL, f"Verifikationsserien är inte manuell ({series_code})")
        if tenant.locked_until is not None and transaction_date <= tenant.locked_until:
            raise _bad(
                ERR_LOCKED_PERIOD,
                MSG_LOCKED_PERIOD.format(company=tenant.company_name, end=tenant.locked_until.isoformat()),
            )
        if voucher_cc:
            self._check_cost_center(tenant, voucher_cc)
        if voucher_project:
            raise _bad(ERR_PROJECT_NOT_FOUND, f'Projekt "{voucher_project}" finns inte')

        chart = tenant.accounts[year.id]
        for row in rows:
            account = chart.get(row.account)
            if account is None:
                raise _bad(ERR_ACCOUNT_NOT_FOUND, "Kan inte hitta kontot.")
            if not account.active:
                raise _bad(ERR_ACCOUNT_INACTIVE, f'Konto "{row.account}" är inte aktivt')
            row.description = account.description
            if row.cost_center:
                if account.cost_center_settings == "NOTALLOWED":
                    raise _bad(
                        ERR_COST_CENTER_NOT_ALLOWED,
                        f"Kostnadsställe är inte tillåtet för konto {row.account}",
                    )
                self._check_cost_center(tenant, row.cost_center)
            elif account.cost_center_settings == "MANDATORY":
                # UNVERIFIED: a voucher-level CostCenter does not satisfy a MANDATORY account.
                raise _bad(ERR_COST_CENTER_MANDATORY, MSG_COST_CENTER_MANDATORY.format(account=row.account))
            if row.project:
                raise _bad(ERR_PROJECT_NOT_FOUND, f'Projekt "{row.project}" finns inte')

        debit = sum((row.debit for row in rows), Decimal(0))
        credit = sum((row.credit for row in rows), Decimal(0))
        if debit != credit:
            raise _bad(
                ERR_UNBALANCED, f"Verifikationen är inte i balans. Debet {debit:.2f}, kredit {credit:.2f}."
            )

        return Voucher(
            series=series_code,
            number=0,
            year=year.id,
            transaction_date=transaction_date,
            description=description,
            rows=rows,
            comments=comments or None,
            cost_center=voucher_cc,
            project="",
            registered_at=self.clock.now(),
        )

    @staticmethod
    def _check_cost_center(tenant: Tenant, code: str) -> None:
        cc = tenant.cost_centers.get(code)
        if cc is None:
            raise _bad(ERR_COST_CENTER_NOT_FOUND, f'Kostnadsställe "{code}" finns inte')
        if not cc.active:
            raise _bad(ERR_COST_CENTER_INACTIVE, MSG_COST_CENTER_INACTIVE.format(code=code))

    # --- REST: SIE export ------------------------------------------------------------------------

    def _sie(self, request: Request, tenant: Tenant, sie_type: str) -> Response:
        """SIE 4E export of the posted vouchers of one year, CP437 (Fortnox's export style)."""
        if sie_type != "4":
            raise _bad(ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet")
        year = self._year(request, tenant)
        older = sorted(
            (y for y in tenant.financial_years.values() if y.to_date <= year.to_date),
            key=lambda y: y.to_date,
            reverse=True,
        )
        lines = [
            "#FLAGGA 0",
            '#PROGRAM "Fortnox" "sandbox"',
            "#FORMAT PC8",
            f"#GEN {tenant.today():%Y%m%d}",
            "#SIETYP 4",
            f"#FNR {tenant.database_number}",
            f"#ORGNR {tenant.org_number}",
            f"#FNAMN {_sie_text(tenant.company_name)}",
        ]
        lines += [f"#RAR {-i} {y.from_date:%Y%m%d} {y.to_date:%Y%m%d}" for i, y in enumerate(older)]
        lines.append('#DIM 1 "Kostnadsställe"')
        lines += [
            f"#OBJEKT 1 {_sie_text(cc.code)} {_sie_text(cc.description)}"
            for cc in sorted(tenant.cost_centers.values(), key=lambda c: c.code)
        ]
        for account in sorted(tenant.accounts[year.id].values(), key=lambda a: a.number):
            lines.append(f"#KONTO {account.number} {_sie_text(account.description)}")
            if account.sru:
                lines.append(f"#SRU {account.number} {account.sru}")
        for voucher in sorted(
            (v for v in tenant.vouchers if v.year == year.id), key=lambda v: (v.series, v.number)
        ):
            registered = date.fromtimestamp(voucher.registered_at)
            lines.append(
                f"#VER {voucher.series} {voucher.number} {voucher.transaction_date:%Y%m%d} "
                f"{_sie_text(voucher.description)} {registered:%Y%m%d}"
            )
            lines.append("{")
            for row in voucher.rows:
                objects = f'1 "{row.cost_center}"' if row.cost_center else ""
                amount = row.debit - row.credit
                lines.append(
                    f'#TRANS {row.account} {{{objects}}} {amount:.2f} "" '
                    f"{_sie_text(row.transaction_information)} 0"
                )
            lines.append("}")
        body = ("\r\n".join(lines) + "\r\n").encode("cp437", errors="replace")
        return Response(body, status=200, content_type="text/plain; charset=IBM437")


def _text(data: dict, name: str, max_length: int, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _bad(ERR_REQUIRED, f"Obligatoriskt fält saknas: {name}")
        return ""
    if not isinstance(value, str):
        raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")
    if required and not value.strip():
        raise _bad(ERR_REQUIRED, f"Obligatoriskt fält saknas: {name}")
    _check_characters(value)
    if len(value) > max_length:
        raise _bad(ERR_TOO_LONG, f"Värdet i fältet {name} är för långt (max {max_length} tecken)")
    return value


def _check_characters(value: str) -> None:
    if VALID_CHARACTERS.fullmatch(value) is None:
        raise _bad(ERR_INVALID_CHARACTERS, MSG_INVALID_CHARACTERS.format(value=value))


def _project(data: dict) -> str:
    value = data.get("Project")
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise _bad(ERR_WRONG_DATA, "Ingen eller felaktig typ av data.")
    _check_characters(value)
    return value


def _parse_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise _bad(ERR_INVALID_DATE, f"Ogiltigt datum: {value}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _bad(ERR_INVALID_DATE, f"Ogiltigt datum: {value}") from None


def _amount(row: dict, name: str) -> Decimal:
    value = row.get(name)
    if value is None:
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise _bad(ERR_INVALID_AMOUNT, f"Ogiltigt belopp i fältet {name}: {value}")
    amount = Decimal(value)
    if (
        amount < 0
        or amount != amount.quantize(Decimal("0.01"))
        or amount >= Decimal(10) ** (AMOUNT_MAX_DIGITS - 2)
    ):
        raise _bad(ERR_INVALID_AMOUNT, f"Ogiltigt belopp i fältet {name}: {value}")
    return amount.quantize(Decimal("0.01"))


def _sie_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_RULES = [
    Rule("/oauth-v1/auth", methods=["GET"], endpoint="auth_page"),
    Rule("/oauth-v1/auth", methods=["POST"], endpoint="auth_decide"),
    Rule("/oauth-v1/token", methods=["POST"], endpoint="token"),
    Rule("/3/accounts", methods=["GET"], endpoint="accounts"),
    Rule("/3/accounts/<number>", methods=["GET"], endpoint="account"),
    Rule("/3/costcenters", methods=["GET"], endpoint="costcenters"),
    Rule("/3/costcenters/<code>", methods=["GET"], endpoint="costcenter"),
    Rule("/3/voucherseries", methods=["GET"], endpoint="voucherseries_list"),
    Rule("/3/voucherseries/<code>", methods=["GET"], endpoint="voucherseries"),
    Rule("/3/financialyears", methods=["GET"], endpoint="financialyears"),
    Rule("/3/financialyears/<year_id>", methods=["GET"], endpoint="financialyear"),
    Rule("/3/settings/lockedperiod", methods=["GET"], endpoint="lockedperiod"),
    Rule("/3/settings/company", methods=["GET"], endpoint="company_settings"),
    Rule("/3/companyinformation", methods=["GET"], endpoint="companyinformation"),
    Rule("/3/modesofpayments", methods=["GET"], endpoint="modesofpayments"),
    Rule("/3/modesofpayments", methods=["POST"], endpoint="modeofpayment_create"),
    Rule("/3/modesofpayments/<code>", methods=["GET"], endpoint="modeofpayment"),
    Rule("/3/vouchers", methods=["GET"], endpoint="vouchers"),
    Rule("/3/vouchers", methods=["POST"], endpoint="voucher_create"),
    Rule("/3/vouchers/sublist", methods=["GET"], endpoint="vouchers_sublist"),
    Rule("/3/vouchers/sublist/<series>", methods=["GET"], endpoint="vouchers_sublist"),
    Rule("/3/vouchers/<series>/<number>", methods=["GET"], endpoint="voucher"),
    Rule("/3/sie/<sie_type>", methods=["GET"], endpoint="sie"),
]
