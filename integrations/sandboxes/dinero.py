"""A local emulation of the Dinero API (Denmark): purchase vouchers, files, master data.

The contract is ``shared/reference/dinero-api.md`` (section numbers below refer to it). The sandbox is
a plain Werkzeug WSGI app, never friendlier than Dinero: everything the reference says Dinero refuses
is refused here with the real status codes and body shapes. Where the reference marks a detail
UNVERIFIED, the choice made is a module constant below, with the reason in a comment.

Three URL roots are served by the same app:

* the personal-integration token endpoint ``/dineroapi/oauth/token`` (``https://authz.dinero.dk``);
* Visma Connect, how public integrations sign in: ``/connect/authorize`` and ``/connect/token``
  (``https://connect.visma.com``), emulated in ``visma_connect.py``;
* the API ``/v1/{org}/…``, ``/v1.1/…``, ``/v1.2/…`` (``https://api.dinero.dk`` in production).

A personal-integration token reaches the one organisation whose API key was used; a Visma Connect
token belongs to a user and reaches every organisation that user has access to ("Authorization
belongs to the user and can be used across organizations", peterbb148/dinero-cli
docs/authentication.md).

Tests run it in-process with ``ServerThread(DineroSandbox()).start()``; the run command mounts it
under a prefix such as ``/dinero``.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integrations.sandboxes.base import FaultInjector, LoggedRequest, SandboxClock, apply_fault_before, drop_connection
from integrations.sandboxes.visma_connect import VismaConnect

# --------------------------------------------------------------------------------------------------
# Choices for behaviour the reference marks UNVERIFIED (or does not describe). Tests import these.
# --------------------------------------------------------------------------------------------------

# §1.1: personal-integration tokens live one hour and come without a refresh token.
TOKEN_LIFETIME_SECONDS = 3600
# §16: a client (dinero-cli, src/dinero_cli/personal.py) handles 429 from the token endpoint,
# honouring Retry-After. Dinero documents no limit for it, so it is off unless a test or the demo sets
# ``token_requests_per_minute``; the 429 is plain text like the API's, with ``token_retry_after``
# seconds in Retry-After, or no such header when that is None (whether Dinero sends one: UNVERIFIED).
TOKEN_RETRY_AFTER_SECONDS = 30
# §1.1: the status for a bad API key is unverified; OAuth convention (RFC 6749 §5.2) says 400 with
# {"error": "invalid_grant"}. A bad client id/secret gives 401 {"error": "invalid_client"}.
BAD_API_KEY_STATUS = 400
BAD_CLIENT_STATUS = 401
# §1.1: the official examples send scope "read write"; we refuse a token request that does not ask for
# both (400 invalid_scope) so a client cannot get away with a scope Dinero might not grant.
REQUIRED_SCOPES = frozenset({"read", "write"})
# §9.1/§9.2: 401 = "something is wrong with your token"; APAQ's fixture for it carries code 41. We answer
# a missing, unknown or expired token with 401 and this JSON body (plus WWW-Authenticate: Bearer).
UNAUTHORIZED_CODE = 41
UNAUTHORIZED_MESSAGE = "Unauthorized"
# A token is bound to the organisation owning its API key; using it on another organisation id gives
# 403 with code 41 ("insufficient permissions to perform the request on the given resource", DEV-ERR).
FOREIGN_ORG_STATUS = 403
FOREIGN_ORG_CODE = 41
FOREIGN_ORG_MESSAGE = "The user has insufficient permissions to perform the request on the given resource."
# A Visma Connect token without dineropublicapi:write may only read; without :read not even that. The
# refusal is not documented: 403 with the same body as a foreign organisation (stricter than ignoring).
INSUFFICIENT_SCOPE_STATUS = 403
# §1.4: the official pages disagree (48 in API-DOCS, 90 in DEV-ERR); default 90, per organisation 48.
DEFAULT_PRO_ERROR_CODE = 90
PRO_ERROR_MESSAGE = "The organization does not have an active Dinero Pro subscription."
# GET /v1/organizations reports IsPro, which would be pointless if it were refused without Pro, so the
# listing answers for a non-Pro organisation; every organisation-scoped call is refused with 403.
ORGANIZATIONS_LIST_REQUIRES_PRO = False

# §10: officially 100 requests a minute per organisation per client id (some clients assume 60 for
# personal integrations: set it per organisation with set_rate_limit). Fixed 60-second window that
# starts with the first request; token requests are not counted; rejected requests are counted.
DEFAULT_RATE_LIMIT = 100
RATE_WINDOW_SECONDS = 60
# §9.3: plain text in the AspNetCoreRateLimit format. No Retry-After header (unverified whether Dinero
# sends one, so a client must not depend on it).
RATE_LIMIT_TEXT = "API calls quota exceeded! maximum admitted {limit} per 1m."

# §2.1: the v1 create was deprecated on 1 Aug 2021 (brownouts before removal). We answer both the v1
# and the v1.1 create with a permanent 480 "Brownout" so that only POST /v1.2 works; v1.1 is not
# documented as deprecated, but the current model is v1.2 and Kontera must use it.
BROWNOUT_STATUS = 480
BROWNOUT_MESSAGE = (
    "Brownout: this version of the endpoint is deprecated. Use POST /v1.2/{organizationId}/vouchers/purchase."
)
# §2.4/§9.1: DEV-ERR says 201 carries an empty body, but clients read {"Guid"} from the create response
# and dinero-go models {guid, timestamp}; API-BOOK: the Timestamp "is returned as a part of
# CreatedResponse" (HexioDK/Hexio.DineroClient, Models/CreatedResponse.cs: Guid, TimeStamp). We answer
# 201 {"Guid", "Timestamp"} (this casing): the answer does not say what was stored, so a client that
# must know (the total) reads the voucher back. Hexio's client types the v1.1 create's answer as the
# whole read model (IDineroClient.cs, CreatePurchaseVoucher -> PurchaseVoucherReadModel), which a typed
# client would also do for a two-field answer: not evidence enough. An organisation can be switched to
# that answer (``set_create_answer(org, "read_model")``) to test a client that uses it when it comes.
CREATE_STATUS = 201
CREATE_ANSWERS = ("guid_timestamp", "read_model")
DEFAULT_CREATE_ANSWER = "guid_timestamp"
# Book: what a purchase voucher's book answers is not documented. The one Dinero page that documents a
# book answer (API-BOOK, https://api.dinero.dk/v1/docs/api/POST-v1-organizationId-invoices-guid-book)
# answers "200 (ok) if the invoice has been successfully been booked" with the booked invoice's read
# model (Status, Guid, TimeStamp, Number …); Hexio's client types the purchase voucher's book answer as
# the read model (IDineroClient.cs, BookPurchaseVoucher -> PurchaseVoucherReadModel), and
# Seekersdk/dinero-connect (src/services/voucherService.js) reads Guid, VoucherNumber and Status from a
# manual voucher's book answer. That is evidence, not documentation: by default we give the stricter
# reading — 200 with only {"Guid", "Timestamp"}, no number, so a client reads the voucher after booking —
# and the read model (VoucherNumber, new Timestamp, Status) is one call away
# (``set_book_answer(org, "read_model")``); a client must work with both (Kontera takes the number from
# the answer when it is there and reads it otherwise).
BOOK_ANSWERS = ("read_model", "guid_timestamp")
DEFAULT_BOOK_ANSWER = "guid_timestamp"
# Not documented: PUT answers 200 {"Guid", "Timestamp"}; DELETE answers 204 with no body.
UPDATE_STATUS = 200
DELETE_STATUS = 204

# §2.2 line model: Amount is a non-nullable decimal. As in ASP.NET model binding, a MISSING "Amount"
# key binds to 0 (the MANYFOLD trap: a line sent with a read-model field such as AmountExclVatValue
# yields a zero-total voucher, accepted), while an explicit null is a conversion error (400). A
# negative amount is refused (KLH: "Negative købsbeløb afvises"). Zero is accepted.
MISSING_AMOUNT_BINDS_TO_ZERO = True
ALLOW_NEGATIVE_LINE_AMOUNT = False
# §2.3: a credit purchase needs a contact. Drafts may be incomplete (Corpay One creates "kreditkøb
# uden betalingsoplysninger"; MANYFOLD saw PaymentDate enforced only at booking), so a missing
# ContactGuid on a credit purchase is refused when booking, not when creating.
CREDIT_CONTACT_REQUIRED_AT_BOOKING = True
# §2.6: PurchaseVoucherUpdateModel requires ContactGuid even for cash (SPEC-EXTRACT); we enforce it. On
# cash vouchers the contact is validated and then dropped (API-GET-PV: only credit purchases have one).
PUT_REQUIRES_CONTACT_GUID = True
# §2.3: DepositAccountNumber and RegionKey are "cash only". A credit purchase with a deposit account is
# refused; a RegionKey on a credit purchase is ignored; a cash purchase without RegionKey gets "DK".
DEFAULT_REGION_KEY = "DK"
REGION_KEYS = ("DK", "EU", "World")
# §6: sales VAT codes (U25, UEUV…) are refused on purchase-voucher lines.
SALES_VAT_CODES_ON_PURCHASES = False
# §6: REP (representation) — 25 % VAT of which 25 % is deductible; the rest is part of the expense.
REPRESENTATION_DEDUCTIBLE_SHARE = Decimal("0.25")
# §6: VatRate in /vatTypes is a fraction (0.25, not 25) — unverified; reverse-charge codes list the
# self-assessed rate 0.25 but their purchase lines carry VAT 0 (gross = net).
# §2.6: PUT/DELETE of a booked voucher is refused by default (configurable per organisation).
BOOKED_EDIT_MESSAGE = "The voucher is booked and can no longer be {action}. Correct it with a credit note."
# §2.6: stale Timestamp → 400 with body code 58.
TIMESTAMP_OUTDATED_CODE = 58
TIMESTAMP_OUTDATED_MESSAGE = "Timestamp outdated"
# §9.1: unknown purchase voucher or credit note guid → 404 with this JSON body (unverified; invoices
# answer 400 code 63, MANYFOLD treats purchase vouchers as 404).
NOT_FOUND_CODE = 40
# §4: "Files cannot exceed 6MB". Read strictly as 6,000,000 bytes (stricter than 6 MiB). The 413 body
# uses the JSON template with code 43 ("Limit Exceeded").
MAX_FILE_BYTES = 6_000_000
FILE_TOO_LARGE_MESSAGE = "The attached file is too large. Files cannot exceed 6MB."
FILE_TOO_LARGE_CODE = 43
# §4: PDF, PNG and JPEG only (by magic bytes); the part may be named "file" or "image". A file is linked
# to at most ONE voucher. MANYFOLD saw Linked entries stay after the voucher is deleted ("stale"); we
# keep them and they still block re-attaching (re-upload the file to attach it again).
FILE_PART_NAMES = ("file", "image")
STALE_LINK_BLOCKS_REATTACH = True
# §11: lists without fields= return only the default fields. Contacts: Name, ContactGuid (HEXIO).
# Files: FileGuid, Name (unverified; ask for Linked explicitly as MANYFOLD does).
CONTACT_DEFAULT_FIELDS = ("Name", "ContactGuid")
FILE_DEFAULT_FIELDS = ("FileGuid", "Name")
ORGANIZATION_DEFAULT_FIELDS = ("Id", "Name", "IsPro")
# §16: a recorded accounts list holds only AccountNumber and Name (repository Apaq/dinero-java,
# src/test/resources/dk/apaq/dinero/repository/accounts_list.json); dinero-cli's help says Category
# and VatCode must be asked for with --fields. The entry, purchase and deposit lists all default so.
ACCOUNT_DEFAULT_FIELDS = ("AccountNumber", "Name")
# §4 / §16: "It might take a second for the file to be accessible" (api.dinero.dk/v1/docs, Files).
# A voucher or credit note naming a file younger than this is refused (400, code 42, on FileGuid).
# The real refusal's wording is UNVERIFIED; a client must not depend on it.
FILE_ACCESSIBLE_AFTER_SECONDS = 1.0
FILE_NOT_ACCESSIBLE_MESSAGE = "The file '{guid}' is not accessible yet. It might take a second for the file to be accessible."
# §11: Pagination keys as in php-dinero / dinero-go / WedigITCRM.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# §7: duplicate ContactGuid → 400; the code "guidMustBeUnique" is observed (TS-CLIENT) inside an
# errorMessageList; we put it there and name the property in validationErrors.
GUID_MUST_BE_UNIQUE = "guidMustBeUnique"
# §2.2: ExternalReference is 0..128 characters.
MAX_EXTERNAL_REFERENCE = 128
# Credit notes: the credited total may not exceed the voucher total (unverified; stricter choice).
CREDIT_NOTE_LIMITED_TO_VOUCHER_TOTAL = True
# Unknown methods on a known route (undocumented): 405 with code 40, ASP.NET-like message.
METHOD_NOT_ALLOWED_CODE = 40
# Currencies accepted on credit purchases (§8).
KNOWN_CURRENCIES = frozenset(
    {"DKK", "EUR", "USD", "SEK", "NOK", "GBP", "CHF", "PLN", "ISK", "CAD", "AUD", "JPY", "CNY"}
)

# The demo: a Visma Connect application (client ids start with isv_, developer.dinero.dk FAQ) and one
# accountant's Visma login that reaches both demo organisations.
DEMO_VISMA_CLIENT_ID = "isv_kontera_demo"
DEMO_VISMA_CLIENT_SECRET = "kontera-demo-visma-secret"
DEMO_VISMA_REDIRECT_URI = "http://127.0.0.1:8000/integrations/dinero/callback"
DEMO_VISMA_USER = ("lars@kontera.example", "demo-visma-2026", "Lars Nielsen")

DANISH_TZ = ZoneInfo("Europe/Copenhagen")
_TWO_PLACES = Decimal("0.01")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

# --------------------------------------------------------------------------------------------------
# Seed data: Dinero's standard chart (DKSKILLS standardkontoplan.md, §5.3) and VAT codes (§6).
# --------------------------------------------------------------------------------------------------

# number | name | I (income) / U (expense) / A (asset) / P (liability) | default VAT code or "-"
_STANDARD_CHART = """
1000|Salg af varer/ydelser m/moms|I|U25
1050|Salg af varer/ydelser u/moms|I|-
1100|EU-leverancer varer - Indberettes (rubrik B-varer)|I|UEUV
1150|EU-leverancer varer - Indberettes ikke (rubrik B-varer)|I|UEUV2
1200|EU-leverancer ydelser (rubrik B-ydelser)|I|UEUY
1255|Salg af varer til udlandet (rubrik C)|I|UVV
1260|Salg af ydelser til udlandet (rubrik C)|I|UVY
1300|Salg af fragt - momsfrie|I|-
1350|Salg af fragt - momspligtig|I|U25
1400|Rykkergebyrer, administrationsgebyr mv.|I|-
1445|Valutakursdifferencer, eksport|I|-
1500|Gevinst ved salg af materielle anlægsaktiver|I|-
1550|Gevinst ved salg af immaterielle anlægsaktiver|I|-
2000|Vareforbrug|U|I25
2050|EU-erhvervelser varer (rubrik A-varer)|U|IEUV
2100|EU-erhvervelser ydelser (rubrik A-ydelser)|U|IEUY
2150|Varekøb verden|U|IVV
2200|Ydelseskøb verden|U|IVY
2250|Fragt med moms|U|I25
2300|Fragt uden moms|U|-
2350|Fragt - EU|U|IEUV
2400|Valutakursdifferencer, import|U|-
2450|Varelagerregulering|U|-
2800|Fremmed arbejde|U|I25
3000|AM-indkomst|U|-
3020|Arbejdsgiver ATP|U|-
3040|Medarbejder ATP|U|-
3060|Sygepenge mv.|U|-
3070|Personalegoder, herunder fri telefon|U|-
3080|B-honorar|U|-
3090|Barsel|U|-
3100|Feriepenge og SH|U|-
3120|Pension|U|-
3140|Diæter/rejsegodtgørelse|U|-
3160|Kørsel i egen bil (kilometergodtgørelse)|U|-
3180|AER/AES/ATP-finansieringsbidrag|U|-
3200|Arbejdstøj|U|I25
3220|Personaleforsikringer|U|-
3240|Mad under kursus/møder mv., fuldt fradrag|U|I25
3260|Gaver til personalet, fuldt fradrag|U|-
3280|Uddannelsesudgifter|U|I25
3300|Diverse vedr. ansatte med moms|U|I25
3320|Diverse vedr. ansatte uden moms|U|-
3340|Regulering feriepenge|U|-
3355|Frokostordning til ansatte|U|-
4000|Annoncer og reklame|U|I25
4020|Udsmykning i forbindelse med arrangementer/events|U|I25
4040|Hotel, personale, fuldt fradrag|U|I25
4060|Hotel, forretningsforbindelser, delvis fradrag|U|I25
4080|Konferencer|U|-
4100|Messer|U|I25
4120|Repræsentation, restaurant, personale, fuldt fradrag|U|REP
4140|Repræsentation, restaurant, forretningsforbindelser, delvis fradrag|U|REP
4160|Mad i virksomheden til forretningsforbindelser, delvis fradrag|U|I25
4180|Repræsentation, gaver og blomster, delvis fradrag|U|-
4200|Anden fradragsberettiget repræsentation med moms|U|I25
4220|Repræsentation, diverse|U|-
4240|Øvrige personaleomkostninger|U|I25
4260|Ej fradragsberettiget andel|U|-
4280|Rejseomkostninger|U|-
5000|Husleje|U|I25
5010|Husleje uden moms|U|-
5025|El|U|I25
5030|Vand|U|I25
5035|Varme|U|I25
5040|Elafgift|U|-
5045|Naturgas- og bygasafgift|U|-
5050|Vandafgift|U|-
5060|Rengøring og affaldshåndtering|U|I25
5080|Reparation og vedligeholdelse|U|I25
5100|Ejendomsskat|U|-
5120|Ejendomsforsikring|U|-
5140|Mødelokaler|U|I25
5160|Dekoration|U|I25
6000|Billeje (gulplade)|U|I25
6020|Brændstof (gulplade)|U|I25
6040|Vedligeholdelse af bil (gulplade)|U|I25
6060|Vægtafgift og forsikringer|U|-
6080|Parkering (gulplade)|U|I25
6085|Parkering uden moms|U|-
6100|Broafgift|U|I25
6120|Taxa|U|-
6140|Tog|U|-
6160|Fly|U|-
6180|Bus|U|-
6200|Færge|U|I25
6400|Diverse transportomkostninger uden moms|U|-
7005|Revision og regnskabsmæssig assistance|U|I25
7010|Advokat|U|I25
7020|Bogføringsassistance|U|I25
7040|Konsulentbistand|U|I25
7060|Kontingenter inkl. moms|U|I25
7080|Kontingenter ekskl. moms|U|-
7100|Aviser|U|-
7120|Faglitteratur|U|I25
7140|Anden litteratur|U|I25
7160|Erhvervsforsikringer|U|-
7180|Fragt og kørsel|U|I25
7200|Kontorartikler og tryksager|U|I25
7220|Porto og gebyrer|U|-
7240|Telefoni|U|I25
7260|Beskatning af fri telefoni|U|-
7280|Regnskabsprogram|U|I25
7300|Internet og webhotel|U|I25
7320|Køb af software|U|I25
7340|Konstateret tab på debitorer|U|U25
7360|Offentlige bøder og gebyrer|U|-
7380|Registrerede kassedifferencer|U|-
7400|Betalingsløsning|U|I25
7420|Indløsere|U|-
7440|Licens|U|-
7460|Diverse inkl. moms|U|I25
7480|Diverse ekskl. moms|U|-
7500|Generalforsamling, bestyrelsesmøder ude i byen, fuld fradrag|U|REP
7520|Generalforsamling i virksomhedens lokaler|U|-
7540|Bestyrelsesmøder i virksomhedens lokaler|U|I25
7560|Bestyrelsesmøder ude i byen|U|REP
8000|Immaterielle anlægsaktiver, afskrivninger|U|-
8020|Materielle anlægsaktiver, afskrivninger|U|-
8040|Småanskaffelser (straksafskrivning)|U|I25
8050|Småanskaffelser med omvendt betalingspligt|U|OBPK
8065|Tab ved salg af materielle anlægsaktiver|U|-
8070|Tab ved salg af immaterielle anlægsaktiver|U|-
9000|Bankrenter|I|-
9010|Renteindtægter diverse|I|-
9200|Bankrenter|U|-
9210|Leverandører mv.|U|-
9220|Ikke-fradragsberettigede renter|U|-
9400|Skat af årets resultat|U|-
9410|Skat af tidligere år|U|-
9420|Regulering af udskudt skat|U|-
50000|Immaterielle anlægsaktiver primo|A|-
50020|Immaterielle, tilgang i året|A|I25
50040|Immaterielle, afgang i året|A|-
50060|Immaterielle, årets afskrivninger|A|-
51000|Driftsmiddel saldo primo|A|-
51020|Driftsmiddel, tilgang i året|A|I25
51040|Driftsmiddel, afgang i året|A|-
51060|Driftsmiddel, årets afskrivninger|A|-
51500|Værdipapirer og kapitalandele|A|-
52000|Varebeholdning|A|-
52020|Nedskrivning|A|-
53000|Debitorer, ubetalte fakturaer|A|-
53020|Hensat til tab på debitorer|A|-
54000|Deposita|A|-
54020|Igangværende arbejder|A|-
54040|Øvrige tilgodehavender|A|-
54060|Periodeafgrænsningsposter|A|-
55000|Bank|A|-
55010|Firmakort|A|-
55040|Kontanter (kasse)|A|-
60000|Registreret kapital mv.|P|-
60020|Overført resultat fra tidligere år|P|-
60040|Udbytte|P|-
61000|Hensat til erstatninger|P|-
61020|Hensat til udskudt skat|P|-
61040|Hensat feriepengeforpligtelse|P|-
62000|Banklån|P|-
63000|Kreditorer, ubetalte regninger|P|-
63010|Øvrige skyldige omkostninger|P|-
63020|Kreditorer, efterposteringer|P|-
63040|Afsat revisor|P|-
63060|Skyldig selskabsskat|P|-
63080|Gavekort|P|-
63100|Udlæg ansatte og ejer|P|-
63300|Skattekonto|P|-
64000|Salgsmoms (udgående moms)|P|-
64020|Moms af varer fra udlandet|P|-
64040|Moms af ydelser fra udlandet|P|-
64060|Købsmoms (indgående moms)|P|-
64080|Elafgift|P|-
64085|Vandafgift|P|-
64090|Naturgas- og bygasafgift|P|-
64100|Momsafregning|P|-
65000|Skyldig AM-bidrag|P|-
65020|Skyldig A-skat|P|-
65040|Skyldig ATP|P|-
65060|Skyldige feriepenge|P|-
65080|Skyldig pension|P|-
65100|Skyldig løn|P|-
65120|Andre skyldige lønposter|P|-
99999|Analysekonto|P|-
"""

# §5.1: the Category enum is unverified (examples "Turnover", "Variable Expenses", "Property" with a
# Danish categoryName). Ranges → (Category, CategoryName). The P&L/balance split is by category; the
# reliable signal for purchase lines remains GET /accounts/purchase.
_CATEGORY_RANGES = (
    (1000, 1999, "Turnover", "Salg"),
    (2000, 2999, "Variable Expenses", "Variable omkostninger"),
    (3000, 3999, "Staff Costs", "Personaleomkostninger"),
    (4000, 4999, "Sales and Travel", "Salgs- og rejseomkostninger"),
    (5000, 5999, "Property", "Lokaleomkostninger"),
    (6000, 6999, "Vehicles and Transport", "Transportomkostninger"),
    (7000, 7999, "Administration", "Administration"),
    (8000, 8999, "Depreciation", "Afskrivninger"),
    (9000, 9199, "Financial Income", "Finansielle indtægter"),
    (9200, 9399, "Financial Expenses", "Finansielle udgifter"),
    (9400, 9999, "Tax", "Skat"),
    (50000, 51999, "Fixed Assets", "Anlægsaktiver"),
    (52000, 54999, "Current Assets", "Omsætningsaktiver"),
    (55000, 55999, "Cash and Bank", "Likvide beholdninger"),
    (60000, 60999, "Equity", "Egenkapital"),
    (61000, 62999, "Provisions and Long-term Debt", "Hensættelser og langfristet gæld"),
    (63000, 65999, "Short-term Debt", "Kortfristet gæld"),
    (99999, 99999, "Analysis", "Analysekonto"),
)
PROFIT_AND_LOSS_CATEGORIES = frozenset(c[2] for c in _CATEGORY_RANGES if c[0] < 10000)
BALANCE_CATEGORIES = frozenset(c[2] for c in _CATEGORY_RANGES if c[0] >= 10000)
# §5.2: the purchase-account list is the expense part of the P&L (2000–9399: "2000-9399 expense range",
# TS client); income, tax (9400+) and every balance account are not in it.
PURCHASE_ACCOUNT_RANGE = (2000, 9399)

# §4/§14 deposit ("beholdning") accounts seeded for every organisation: number, name, is default.
_DEPOSIT_ACCOUNTS = ((55000, "Bank", True), (55010, "Firmakort", False), (55040, "Kontanter (kasse)", False))

# §6: code, name, rate (fraction), kind. Kinds: purchase (VAT deducted), representation (25 % of the
# VAT deducted), reverse (self-assessed, VAT 0 on the purchase line), sales (refused on purchases).
_VAT_TYPES = (
    ("I25", "Købsmoms 25%", "0.25", "purchase"),
    ("IEUV", "Moms af varekøb i EU (omvendt betalingspligt, rubrik A-varer)", "0.25", "reverse"),
    ("IEUY", "Moms af ydelseskøb i EU (omvendt betalingspligt, rubrik A-ydelser)", "0.25", "reverse"),
    ("IVV", "Moms af varekøb uden for EU", "0.25", "reverse"),
    ("IVY", "Moms af ydelseskøb uden for EU (omvendt betalingspligt)", "0.25", "reverse"),
    ("REP", "Repræsentation (25% af momsen kan fradrages)", "0.25", "representation"),
    ("OBPK", "Indenlandsk omvendt betalingspligt, køb", "0.25", "reverse"),
    ("U25", "Salgsmoms 25%", "0.25", "sales"),
    ("UEUV", "Salg af varer til EU (rubrik B-varer, indberettes)", "0", "sales"),
    ("UEUV2", "Salg af varer til EU (rubrik B-varer, indberettes ikke)", "0", "sales"),
    ("UEUY", "Salg af ydelser til EU (rubrik B-ydelser)", "0", "sales"),
    ("UVV", "Salg af varer uden for EU (rubrik C)", "0", "sales"),
    ("UVY", "Salg af ydelser uden for EU (rubrik C)", "0", "sales"),
)
NO_VAT_CODES = (None, "none")

_NOT_FOUND_HTML = """<!DOCTYPE html>
<html lang="da">
<head>
<meta charset="utf-8">
<title>404 - Dinero</title>
</head>
<body>
<div class="main">
<h1>404 :(</h1>
<h2>Siden blev ikke fundet...</h2>
<hr>
<p>
<strong>Hvorfor blev den ikke det?</strong>
<br />
Måske har du tastet en forkert adresse i adressebaren, eller fulgt et ugyldigt link?
Det kan også være fordi du ikke er logget ind, og prøver at åbne en side der kun er tilgængelig når du er
logget ind.
</p>
<p>
Hvis du tror der er noget andet galt, er du altid velkommen til at kontakte os på
<a href="mailto:support@dinero.dk">support@dinero.dk</a>.
</p>
</div>
</body>
</html>
"""


def _category_for(number: int) -> tuple[str, str]:
    for low, high, category, name in _CATEGORY_RANGES:
        if low <= number <= high:
            return category, name
    return ("Other", "Andet")


def standard_chart() -> list[dict]:
    """The seeded entry accounts (a fresh copy), as the /accounts/entry read model."""
    accounts = []
    for raw in _STANDARD_CHART.strip().splitlines():
        number, name, _kind, vat = raw.split("|")
        category, category_name = _category_for(int(number))
        accounts.append(
            {
                "AccountNumber": int(number),
                "Name": name,
                "VatCode": None if vat == "-" else vat,
                "Category": category,
                "CategoryName": category_name,
                "IsHidden": False,
                "IsDefaultSalesAccount": int(number) == 1000,
            }
        )
    return accounts


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer in Dinero's JSON error template."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        validation_errors: dict | None = None,
        *,
        extra: dict | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.validation_errors = validation_errors
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self) -> Response:
        body = {
            "code": self.code,
            "message": self.message,
            "validationErrors": self.validation_errors,
            "languageSpecificMessages": None,
            **self.extra,
        }
        return _json_response(body, self.status, headers=self.headers)


def validation_error(errors: dict, *, extra: dict | None = None) -> ApiError:
    return ApiError(400, 42, "Validation Error", errors, extra=extra)


def not_found(what: str) -> ApiError:
    return ApiError(404, NOT_FOUND_CODE, f"{what} not found", None)


def _json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json; charset=utf-8",
        headers=headers,
    )


# --------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------


@dataclass
class Organization:
    """One Dinero organisation ("firma") and everything it holds. Plain JSON-friendly data."""

    id: int
    name: str
    api_key: str
    is_pro: bool = True
    pro_error_code: int = DEFAULT_PRO_ERROR_CODE
    rate_limit: int = DEFAULT_RATE_LIMIT
    allow_edit_booked: bool = False
    create_answer: str = DEFAULT_CREATE_ANSWER
    book_answer: str = DEFAULT_BOOK_ANSWER
    email: str | None = None
    vat_number: str | None = None
    accounts: dict[int, dict] = field(default_factory=dict)
    purchase_accounts: list[int] = field(default_factory=list)
    deposit_accounts: dict[int, dict] = field(default_factory=dict)
    vat_types: dict[str, dict] = field(default_factory=dict)
    accounting_years: list[dict] = field(default_factory=list)
    contacts: dict[str, dict] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    purchase_vouchers: dict[str, dict] = field(default_factory=dict)
    credit_notes: dict[str, dict] = field(default_factory=dict)
    next_voucher_number: int = 1

    def to_dict(self) -> dict:
        data = copy.deepcopy(self.__dict__)
        data["accounts"] = list(data["accounts"].values())
        data["deposit_accounts"] = list(data["deposit_accounts"].values())
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Organization:
        data = copy.deepcopy(data)
        data["accounts"] = {a["AccountNumber"]: a for a in data.get("accounts", [])}
        data["deposit_accounts"] = {a["AccountNumber"]: a for a in data.get("deposit_accounts", [])}
        return cls(**data)

    def has_accounting_year(self, day: date) -> bool:
        iso = day.isoformat()
        return any(y["FromDate"] <= iso <= y["ToDate"] for y in self.accounting_years)

    def used_voucher_numbers(self) -> set[int]:
        numbers = {v["VoucherNumber"] for v in self.purchase_vouchers.values()}
        numbers |= {c["VoucherNumber"] for c in self.credit_notes.values()}
        return {n for n in numbers if n is not None}


@dataclass
class _Token:
    token: str
    client_id: str
    org_id: int
    expires_at: float
    email: str = ""  # set for a Visma Connect token: the user whose organisations it reaches
    scopes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------------
# Small parsing helpers (ASP.NET-like model binding: case-insensitive names, unknown names ignored)
# --------------------------------------------------------------------------------------------------

_MISSING = object()


def _ci(obj: dict) -> dict:
    """Property names bound case-insensitively (the last spelling wins, as in Json.NET)."""
    return {str(k).lower(): v for k, v in obj.items()}


def _parse_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
        return result if result.is_finite() else None
    return None


def _parse_int(value: Any) -> int | None:
    number = _parse_decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _normalise_guid(value: Any) -> str | None:
    if not isinstance(value, str) or not _GUID_RE.match(value.strip()):
        return None
    return str(uuid.UUID(value.strip()))


def _money(value: Decimal) -> float:
    return float(value.quantize(_TWO_PLACES, rounding=ROUND_HALF_UP))


def _q(value: Decimal) -> Decimal:
    return value.quantize(_TWO_PLACES, rounding=ROUND_HALF_UP)


def _select_fields(item: dict, wanted: Iterable[str] | None) -> dict:
    if wanted is None:
        return dict(item)
    by_lower = {k.lower(): k for k in item}
    out = {}
    for name in wanted:
        key = by_lower.get(name.strip().lower())
        if key is not None:
            out[key] = item[key]
    return out


def _fields_param(args: dict, default: Iterable[str] | None) -> list[str] | None:
    raw = args.get("fields")
    if raw is None or not raw.strip():
        return list(default) if default is not None else None
    return [f for f in (p.strip() for p in raw.split(",")) if f]


# --------------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------------


class DineroSandbox:
    """WSGI emulation of Dinero; see the module docstring and the constants above."""

    def __init__(self, clock: SandboxClock | None = None) -> None:
        self.clock = clock or SandboxClock()
        self.faults = FaultInjector()
        self.log: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._clients: dict[str, str] = {}
        self._organizations: dict[int, Organization] = {}
        self._tokens: dict[str, _Token] = {}
        self._rate_windows: dict[tuple[str, int], list[float]] = {}
        self._rowversion = 0x00000000020A5EA8
        self._url_map = self._build_map()
        self.file_accessible_after = FILE_ACCESSIBLE_AFTER_SECONDS
        self.token_requests_per_minute: int | None = None
        self.token_retry_after: int | None = TOKEN_RETRY_AFTER_SECONDS
        self._token_window: dict[str, list[float]] = {}
        self.visma = VismaConnect(self.clock, self._lock)

    # ---- setup API -------------------------------------------------------------------------------

    def register_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._clients[client_id] = client_secret

    def add_organization(
        self, org_id: int, name: str, api_key: str, *, is_pro: bool = True, seed: bool = True,
        vat_number: str | None = None,
    ) -> Organization:
        with self._lock:
            if org_id in self._organizations:
                raise ValueError(f"organisation {org_id} already exists")
            if any(o.api_key == api_key for o in self._organizations.values()):
                raise ValueError("API key already belongs to another organisation")
            org = Organization(id=int(org_id), name=name, api_key=api_key, is_pro=is_pro, vat_number=vat_number)
            if seed:
                self._seed_organization(org)
            self._organizations[org.id] = org
            return org

    def _seed_organization(self, org: Organization) -> None:
        for account in standard_chart():
            org.accounts[account["AccountNumber"]] = account
        low, high = PURCHASE_ACCOUNT_RANGE
        org.purchase_accounts = sorted(n for n in org.accounts if low <= n <= high)
        for number, name, is_default in _DEPOSIT_ACCOUNTS:
            org.deposit_accounts[number] = {
                "AccountNumber": number,
                "Name": name,
                "IsDefault": is_default,
                "IsHidden": False,
            }
        for code, name, rate, kind in _VAT_TYPES:
            org.vat_types[code] = {"VatCode": code, "Name": name, "VatRate": float(rate), "Kind": kind}
        this_year = self.today().year
        for year in (this_year - 1, this_year):
            self._add_year(org, year)

    @staticmethod
    def _add_year(org: Organization, year: int) -> None:
        if not any(y["Name"] == str(year) for y in org.accounting_years):
            org.accounting_years.append(
                {"Name": str(year), "FromDate": f"{year}-01-01", "ToDate": f"{year}-12-31"}
            )
            org.accounting_years.sort(key=lambda y: y["FromDate"])

    def organization(self, org_id: int) -> Organization:
        with self._lock:
            return self._organizations[int(org_id)]

    def add_accounting_year(self, org_id: int, year: int) -> None:
        with self._lock:
            self._add_year(self.organization(org_id), year)

    def add_account(
        self,
        org_id: int,
        number: int,
        name: str,
        vat_code: str | None = None,
        *,
        purchase: bool | None = None,
        deposit: bool = False,
    ) -> dict:
        """Add an entry account; ``purchase`` defaults to the expense range, ``deposit`` adds it there."""
        with self._lock:
            org = self.organization(org_id)
            category, category_name = _category_for(number)
            account = {
                "AccountNumber": number,
                "Name": name,
                "VatCode": vat_code,
                "Category": category,
                "CategoryName": category_name,
                "IsHidden": False,
                "IsDefaultSalesAccount": False,
            }
            org.accounts[number] = account
            low, high = PURCHASE_ACCOUNT_RANGE
            in_purchase_list = purchase if purchase is not None else (low <= number <= high and not deposit)
            if in_purchase_list:
                org.purchase_accounts = sorted(set(org.purchase_accounts) | {number})
            if deposit:
                org.deposit_accounts[number] = {
                    "AccountNumber": number,
                    "Name": name,
                    "IsDefault": False,
                    "IsHidden": False,
                }
            return account

    def set_pro(self, org_id: int, is_pro: bool) -> None:
        with self._lock:
            self.organization(org_id).is_pro = is_pro

    def set_pro_error_code(self, org_id: int, code: int) -> None:
        if code not in (48, 90):
            raise ValueError("the Pro error code is 48 or 90")
        with self._lock:
            self.organization(org_id).pro_error_code = code

    def set_rate_limit(self, org_id: int, per_minute: int) -> None:
        with self._lock:
            self.organization(org_id).rate_limit = int(per_minute)

    def set_allow_edit_booked(self, org_id: int, allowed: bool) -> None:
        with self._lock:
            self.organization(org_id).allow_edit_booked = allowed

    def set_create_answer(self, org_id: int, answer: str) -> None:
        """What a purchase voucher's create answers: ``guid_timestamp`` (default) or ``read_model``."""
        if answer not in CREATE_ANSWERS:
            raise ValueError(f"the create answer is one of {CREATE_ANSWERS}")
        with self._lock:
            self.organization(org_id).create_answer = answer

    def set_book_answer(self, org_id: int, answer: str) -> None:
        """What a purchase voucher's book answers: ``read_model`` (default) or ``guid_timestamp``."""
        if answer not in BOOK_ANSWERS:
            raise ValueError(f"the book answer is one of {BOOK_ANSWERS}")
        with self._lock:
            self.organization(org_id).book_answer = answer

    def add_contact(self, org_id: int, name: str, *, country_key: str = "DK", **fields: Any) -> dict:
        """Create a contact directly (demo data); ``fields`` use the API's property names."""
        body = {
            "Name": name,
            "CountryKey": country_key,
            "IsPerson": False,
            "IsMember": False,
            "UseCvr": False,
        }
        body.update(fields)
        with self._lock:
            org = self.organization(org_id)
            record = self._validated_contact(org, _ci(body))
            org.contacts[record["ContactGuid"]] = record
            return copy.deepcopy(record)

    def list_contacts(self, org_id: int) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self.organization(org_id).contacts.values()))

    def list_files(self, org_id: int) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self.organization(org_id).files.values()))

    def get_purchase_voucher(self, org_id: int, guid: str) -> dict | None:
        """The read model of GET /v1/{org}/vouchers/purchase/{guid}, or None."""
        with self._lock:
            record = self.organization(org_id).purchase_vouchers.get(str(guid).lower())
            return self._voucher_read_model(self.organization(org_id), record) if record else None

    def get_credit_note(self, org_id: int, guid: str) -> dict | None:
        with self._lock:
            org = self.organization(org_id)
            record = org.credit_notes.get(str(guid).lower())
            return self._credit_note_read_model(org, record) if record else None

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock.now(), tz=DANISH_TZ).date()

    def reset(self) -> None:
        with self._lock:
            self._clients.clear()
            self._organizations.clear()
            self._tokens.clear()
            self._rate_windows.clear()
            self.log.clear()
            self.faults.clear()
            self.clock.reset()
            self.visma.reset()

    def dump_state(self) -> dict:
        with self._lock:
            return {
                "clients": dict(self._clients),
                "organizations": [o.to_dict() for o in self._organizations.values()],
                "tokens": [t.__dict__.copy() for t in self._tokens.values()],
                "rowversion": self._rowversion,
                "visma_connect": self.visma.dump_state(),
            }

    def load_state(self, state: dict) -> None:
        with self._lock:
            self._clients = dict(state.get("clients", {}))
            self._organizations = {}
            for data in state.get("organizations", []):
                org = Organization.from_dict(data)
                self._organizations[org.id] = org
            self._tokens = {t["token"]: _Token(**t) for t in state.get("tokens", [])}
            self._rate_windows.clear()
            self._rowversion = int(state.get("rowversion", self._rowversion))
            self.visma.load_state(state.get("visma_connect") or {})

    def seed_demo(self, redirect_uri: str = DEMO_VISMA_REDIRECT_URI) -> dict:
        """A personal-integration client, a Visma Connect application, one accountant's Visma login and
        two organisations for the run command (idempotent; ``redirect_uri`` is added to the app's)."""
        demo = {
            "client_id": "kontera-demo",
            "client_secret": "kontera-demo-secret",
            "visma_client_id": DEMO_VISMA_CLIENT_ID,
            "visma_client_secret": DEMO_VISMA_CLIENT_SECRET,
            "visma_user": DEMO_VISMA_USER,
            "organizations": [
                {"id": 123456, "name": "Demo ApS", "api_key": "demo-dinero-api-key", "is_pro": True,
                 "vat_number": "12345678"},
                {"id": 654321, "name": "Uden Pro ApS", "api_key": "demo-dinero-nopro-key", "is_pro": False,
                 "vat_number": "87654321"},
            ],
        }
        with self._lock:
            self.register_client(demo["client_id"], demo["client_secret"])
            for spec in demo["organizations"]:
                if spec["id"] not in self._organizations:
                    org = self.add_organization(spec["id"], spec["name"], spec["api_key"], is_pro=spec["is_pro"])
                    org.vat_number = spec["vat_number"]
            if DEMO_VISMA_CLIENT_ID not in self.visma.clients:
                self.visma.register_client(DEMO_VISMA_CLIENT_ID, DEMO_VISMA_CLIENT_SECRET, [redirect_uri],
                                           name="Kontera (demo)")
            self.visma.add_redirect_uri(DEMO_VISMA_CLIENT_ID, redirect_uri)
            email, password, name = DEMO_VISMA_USER
            if email not in self.visma.users:
                self.visma.add_user(email, password, name, [spec["id"] for spec in demo["organizations"]])
            org = self._organizations[123456]
            if not org.contacts:
                self.add_contact(
                    123456, "Kontorland A/S", VatNumber="DK12345678", Email="faktura@kontorland.example"
                )
                self.add_contact(123456, "Hetzner Online GmbH", country_key="DE", VatNumber="DE812871812")
        return demo

    # ---- WSGI ------------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        method, path = request.method, request.path
        query = environ.get("QUERY_STRING", "")
        fault = self.faults.take(method, path)
        early = apply_fault_before(fault, environ, on_drop=lambda: self._log(method, path, 0, query))
        if early is not None:
            self._log(method, path, early.status_code, query)
            return early(environ, start_response)
        with self._lock:
            response = self._handle(request)
            self._log(method, path, response.status_code, query)
        if fault is not None and fault.kind == "drop_after_commit":
            drop_connection(environ)
        return response(environ, start_response)

    def _log(self, method: str, path: str, status: int, query: str) -> None:
        with self._lock:
            self.log.append(
                LoggedRequest(method=method, path=path, status=status, at=self.clock.now(), query=query)
            )

    @staticmethod
    def _build_map() -> Map:
        # Paths are matched in lower case (ASP.NET routing is case-insensitive).
        rules = [
            ("/dineroapi/oauth/token", "token", "POST"),
            ("/connect/authorize", "visma_authorize", "GET"),
            ("/connect/authorize", "visma_authorize", "POST"),
            ("/connect/token", "visma_token", "POST"),
            ("/v1/organizations", "organizations", "GET"),
            ("/v1/<int:org_id>/accounts/entry", "accounts_entry", "GET"),
            ("/v1/<int:org_id>/accounts/purchase", "accounts_purchase", "GET"),
            ("/v1/<int:org_id>/accounts/deposit", "accounts_deposit", "GET"),
            ("/v1/<int:org_id>/vattypes", "vat_types", "GET"),
            ("/v1/<int:org_id>/accountingyears", "accounting_years", "GET"),
            ("/v1/<int:org_id>/contacts", "contacts_list", "GET"),
            ("/v1/<int:org_id>/contacts", "contact_create", "POST"),
            ("/v1/<int:org_id>/contacts/<guid>", "contact_get", "GET"),
            ("/v1/<int:org_id>/files", "files_list", "GET"),
            ("/v1/<int:org_id>/files", "file_upload", "POST"),
            ("/v1.2/<int:org_id>/vouchers/purchase", "voucher_create", "POST"),
            ("/v1/<int:org_id>/vouchers/purchase", "voucher_create_deprecated", "POST"),
            ("/v1.1/<int:org_id>/vouchers/purchase", "voucher_create_deprecated", "POST"),
            ("/v1/<int:org_id>/vouchers/purchase/creditnotes", "credit_note_create", "POST"),
            ("/v1/<int:org_id>/vouchers/purchase/creditnotes/<guid>", "credit_note_get", "GET"),
            ("/v1/<int:org_id>/vouchers/purchase/creditnotes/<guid>/book", "credit_note_book", "POST"),
            ("/v1/<int:org_id>/vouchers/purchase/<guid>", "voucher_get", "GET"),
            ("/v1/<int:org_id>/vouchers/purchase/<guid>", "voucher_delete", "DELETE"),
            ("/v1.1/<int:org_id>/vouchers/purchase/<guid>", "voucher_update", "PUT"),
            ("/v1/<int:org_id>/vouchers/purchase/<guid>/book", "voucher_book", "POST"),
            (
                "/v1/<int:org_id>/vouchers/purchase/<guid>/generate-creditnote",
                "voucher_generate_credit_note",
                "POST",
            ),
        ]
        return Map(
            [Rule(path, endpoint=endpoint, methods=[method]) for path, endpoint, method in rules],
            strict_slashes=False,
            merge_slashes=False,
        )

    def _handle(self, request: Request) -> Response:
        adapter = self._url_map.bind("dinero.sandbox", path_info=request.path.lower())
        try:
            endpoint, values = adapter.match(method=request.method)
        except MethodNotAllowed:
            return ApiError(
                405,
                METHOD_NOT_ALLOWED_CODE,
                f"The requested resource does not support http method '{request.method}'.",
            ).response()
        except NotFound:
            return Response(_NOT_FOUND_HTML, status=404, content_type="text/html; charset=utf-8")
        except HTTPException as exc:  # pragma: no cover - redirects are not configured
            return exc.get_response()
        args = {k.lower(): v for k, v in request.args.items()}
        try:
            if endpoint == "token":
                return self._token(request)
            if endpoint == "visma_authorize":
                return self.visma.authorize_page(request)
            if endpoint == "visma_token":
                return self.visma.token(request)
            token = self._authenticate(request)
            # Counted per organisation and client (§10): a personal token's own organisation, a
            # Visma Connect token's organisation in the path (its organisation list is not counted).
            counted = token.org_id if not token.email else values.get("org_id")
            limited = self._count_request(token, counted) if counted is not None else None
            if limited is not None:
                return limited
            if endpoint == "organizations":
                return self._organizations_list(token, args)
            org = self._authorize_org(token, values.pop("org_id"), write=request.method != "GET")
            handler = getattr(self, f"_ep_{endpoint}")
            return handler(request, org, args, **values)
        except ApiError as exc:
            return exc.response()

    # ---- auth and rate limit ---------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or auth.username not in self._clients
            or not secrets.compare_digest(self._clients[auth.username], auth.password or "")
        ):
            return _json_response(
                {"error": "invalid_client"},
                BAD_CLIENT_STATUS,
                headers={"WWW-Authenticate": 'Basic realm="Dinero"'},
            )
        if self.token_requests_per_minute is not None:
            now = self.clock.now()
            window = self._token_window.setdefault(auth.username, [now, 0])
            if now >= window[0] + RATE_WINDOW_SECONDS:
                window[:] = [now, 0]
            window[1] += 1
            if window[1] > self.token_requests_per_minute:
                headers = {"Retry-After": str(self.token_retry_after)} if self.token_retry_after is not None else {}
                return Response(RATE_LIMIT_TEXT.format(limit=self.token_requests_per_minute), status=429,
                                content_type="text/plain", headers=headers)
        if request.mimetype != "application/x-www-form-urlencoded":
            return _json_response({"error": "invalid_request"}, 400)
        form = request.form
        if form.get("grant_type") != "password":
            return _json_response({"error": "unsupported_grant_type"}, 400)
        username, password = form.get("username"), form.get("password")
        if not username or not password:
            return _json_response({"error": "invalid_request"}, 400)
        if not REQUIRED_SCOPES <= set((form.get("scope") or "").split()):
            return _json_response({"error": "invalid_scope"}, 400)
        org = next((o for o in self._organizations.values() if o.api_key == username), None)
        if org is None or username != password:
            return _json_response({"error": "invalid_grant"}, BAD_API_KEY_STATUS)
        token = _Token(
            token=secrets.token_urlsafe(32),
            client_id=auth.username,
            org_id=org.id,
            expires_at=self.clock.now() + TOKEN_LIFETIME_SECONDS,
        )
        self._tokens[token.token] = token
        return _json_response(
            {
                "access_token": token.token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "refresh_token": "",
            }
        )

    def _authenticate(self, request: Request) -> _Token:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None and scheme.lower() == "bearer":
            access = self.visma.bearer(value.strip())
            if access is not None:
                token = _Token(access.token, access.client_id, 0, access.expires_at, email=access.email,
                               scopes=tuple(access.scopes))
        if token is None or self.clock.now() >= token.expires_at:
            raise ApiError(
                401, UNAUTHORIZED_CODE, UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "Bearer"}
            )
        return token

    def _count_request(self, token: _Token, org_id: int) -> Response | None:
        org = self._organizations.get(org_id)
        limit = org.rate_limit if org else DEFAULT_RATE_LIMIT
        key = (token.client_id, org_id)
        now = self.clock.now()
        window = self._rate_windows.get(key)
        if window is None or now >= window[0] + RATE_WINDOW_SECONDS:
            window = [now, 0]
            self._rate_windows[key] = window
        window[1] += 1
        if window[1] > limit:
            return Response(RATE_LIMIT_TEXT.format(limit=limit), status=429, content_type="text/plain")
        return None

    def _authorize_org(self, token: _Token, org_id: int, *, write: bool = False) -> Organization:
        org = self._organizations.get(org_id)
        if token.email:
            if org is None or org_id not in self.visma.organizations_of(token.email):
                raise ApiError(FOREIGN_ORG_STATUS, FOREIGN_ORG_CODE, FOREIGN_ORG_MESSAGE)
            if ("dineropublicapi:write" if write else "dineropublicapi:read") not in token.scopes:
                raise ApiError(INSUFFICIENT_SCOPE_STATUS, FOREIGN_ORG_CODE, FOREIGN_ORG_MESSAGE)
        elif org_id != token.org_id or org is None:
            raise ApiError(FOREIGN_ORG_STATUS, FOREIGN_ORG_CODE, FOREIGN_ORG_MESSAGE)
        if not org.is_pro:
            raise ApiError(403, org.pro_error_code, PRO_ERROR_MESSAGE)
        return org

    # ---- body helpers ----------------------------------------------------------------------------

    @staticmethod
    def _json_body(request: Request) -> Any:
        raw = request.get_data(cache=True)
        if not raw.strip():
            return _MISSING
        mimetype = request.mimetype or ""
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise ApiError(
                415,
                NOT_FOUND_CODE,
                f"The request entity's media type '{mimetype or 'none'}' is not supported for this resource.",
            )
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise validation_error({"body": "The request body is not valid JSON."}) from None

    def _json_object(self, request: Request, *, required_message: str | None = None) -> dict:
        body = self._json_body(request)
        if body is _MISSING or body is None:
            raise validation_error({"Timestamp": required_message or "A request body is required."})
        if not isinstance(body, dict):
            raise validation_error({"body": "The request body must be a JSON object."})
        return _ci(body)

    def _next_timestamp(self) -> str:
        self._rowversion += secrets.randbelow(97) + 1
        return f"{self._rowversion:016X}"

    def _now_iso(self) -> str:
        return datetime.fromtimestamp(self.clock.now(), tz=DANISH_TZ).strftime("%Y-%m-%dT%H:%M:%S")

    # ---- organisations, accounts, VAT ------------------------------------------------------------

    def _organizations_list(self, token: _Token, args: dict) -> Response:
        if token.email:
            # A user's token lists every organisation the user can reach (CLI docs/authentication.md).
            orgs = [self._organizations[o] for o in self.visma.organizations_of(token.email)
                    if o in self._organizations]
        else:
            org = self._organizations.get(token.org_id)
            if org is None:
                raise ApiError(FOREIGN_ORG_STATUS, FOREIGN_ORG_CODE, FOREIGN_ORG_MESSAGE)
            if ORGANIZATIONS_LIST_REQUIRES_PRO and not org.is_pro:
                raise ApiError(403, org.pro_error_code, PRO_ERROR_MESSAGE)
            orgs = [org]
        # The read model (HexioDK/Hexio.DineroClient Models/OrganizationReadModel.cs): Id, Name, IsPro,
        # Email, VatNumber (the CVR); only the default fields without fields= (§11).
        wanted = _fields_param(args, ORGANIZATION_DEFAULT_FIELDS)
        return _json_response([
            _select_fields({"Id": o.id, "Name": o.name, "IsPro": o.is_pro, "Email": o.email, "VatNumber": o.vat_number},
                           wanted)
            for o in orgs
        ])

    def _ep_accounts_entry(self, request: Request, org: Organization, args: dict) -> Response:
        accounts = sorted(org.accounts.values(), key=lambda a: a["AccountNumber"])
        category_filter = args.get("categoryfilter")
        if category_filter:
            wanted = {c.strip().lower() for c in category_filter.split(",") if c.strip()}
            accounts = [a for a in accounts if a["Category"].lower() in wanted]
        fields = _fields_param(args, ACCOUNT_DEFAULT_FIELDS)
        return _json_response([_select_fields(a, fields) for a in accounts])

    def _ep_accounts_purchase(self, request: Request, org: Organization, args: dict) -> Response:
        accounts = [org.accounts[n] for n in org.purchase_accounts if n in org.accounts]
        fields = _fields_param(args, ACCOUNT_DEFAULT_FIELDS)
        shaped = [
            {k: a[k] for k in ("AccountNumber", "Name", "VatCode", "Category", "CategoryName", "IsHidden")}
            for a in accounts
        ]
        return _json_response([_select_fields(a, fields) for a in shaped])

    def _ep_accounts_deposit(self, request: Request, org: Organization, args: dict) -> Response:
        accounts = sorted(org.deposit_accounts.values(), key=lambda a: a["AccountNumber"])
        fields = _fields_param(args, ACCOUNT_DEFAULT_FIELDS)
        return _json_response([_select_fields(a, fields) for a in accounts])

    def _ep_accounting_years(self, request: Request, org: Organization, args: dict) -> Response:
        # dinero-cli (src/dinero_cli/commands/accounting_years.py): no paging, no filters, a bare
        # list. The item's property names are UNVERIFIED; we use Name, FromDate and ToDate.
        return _json_response([dict(year) for year in org.accounting_years])

    def _ep_vat_types(self, request: Request, org: Organization, args: dict) -> Response:
        items = [{k: v for k, v in t.items() if k != "Kind"} for t in org.vat_types.values()]
        return _json_response(items)

    # ---- paging ----------------------------------------------------------------------------------

    @staticmethod
    def _paging(args: dict) -> tuple[int, int]:
        errors = {}
        page = _parse_int(args.get("page", "0"))
        size = _parse_int(args.get("pagesize", str(DEFAULT_PAGE_SIZE)))
        if page is None or page < 0:
            errors["page"] = "page must be zero or a positive integer"
        if size is None or not 1 <= size <= MAX_PAGE_SIZE:
            errors["pageSize"] = f"pageSize must be between 1 and {MAX_PAGE_SIZE}"
        if errors:
            raise validation_error(errors)
        return page, size

    @staticmethod
    def _paged(
        items: list[dict], total_unfiltered: int, page: int, size: int, fields: list[str] | None
    ) -> dict:
        chunk = items[page * size : (page + 1) * size]
        return {
            "Collection": [_select_fields(i, fields) for i in chunk],
            "Pagination": {
                "MaxPageSizeAllowed": MAX_PAGE_SIZE,
                "PageSize": size,
                "Result": len(items),
                "ResultWithoutFilter": total_unfiltered,
                "Page": page,
            },
        }

    # ---- contacts --------------------------------------------------------------------------------

    _CONTACT_FILTERABLE = ("Name", "Email", "ExternalReference", "VatNumber", "EanNumber", "IsPerson")
    _CONTACT_STRING_FIELDS = (
        "ExternalReference",
        "Street",
        "ZipCode",
        "City",
        "Phone",
        "Email",
        "Webpage",
        "AttPerson",
        "VatNumber",
        "EanNumber",
        "SENumber",
        "PNumber",
        "MemberNumber",
        "CompanyTypeKey",
        "InvoiceMailOutOptionKey",
        "PreferredInvoiceLanguageKey",
        "PreferredInvoiceCurrencyKey",
    )

    def _ep_contacts_list(self, request: Request, org: Organization, args: dict) -> Response:
        page, size = self._paging(args)
        contacts = sorted(org.contacts.values(), key=lambda c: (c["UpdatedAt"], c["Name"]))
        if (args.get("deletedonly") or "").lower() == "true":
            contacts = [c for c in contacts if c["DeletedAt"]]
        else:
            contacts = [c for c in contacts if not c["DeletedAt"]]
        total = len(contacts)
        query_filter = args.get("queryfilter")
        if query_filter:
            contacts = [c for c in contacts if self._contact_matches(c, self._parse_filter(query_filter))]
        return _json_response(
            self._paged(contacts, total, page, size, _fields_param(args, CONTACT_DEFAULT_FIELDS))
        )

    _FILTER_RE = re.compile(r"^\s*(\w+)\s+(eq|ct)\s+(?:'((?:[^']|'')*)'|(true|false))\s*$", re.IGNORECASE)

    def _parse_filter(self, text: str) -> list[tuple[str, str, Any]]:
        clauses = []
        filterable = {f.lower(): f for f in self._CONTACT_FILTERABLE}
        for part in text.split(";"):
            if not part.strip():
                continue
            match = self._FILTER_RE.match(part)
            if not match:
                raise validation_error({"queryFilter": f"The filter '{part.strip()}' could not be parsed."})
            name, op, quoted, boolean = match.groups()
            canonical = filterable.get(name.lower())
            if canonical is None:
                raise validation_error({"queryFilter": f"Filtering on '{name}' is not supported."})
            value: Any = quoted.replace("''", "'") if quoted is not None else boolean.lower() == "true"
            clauses.append((canonical, op.lower(), value))
        return clauses

    @staticmethod
    def _contact_matches(contact: dict, clauses: list[tuple[str, str, Any]]) -> bool:
        for name, op, value in clauses:
            actual = contact.get(name)
            if isinstance(value, bool) or isinstance(actual, bool):
                if op != "eq" or actual != value:
                    return False
                continue
            left, right = (actual or "").lower(), str(value).lower()
            if (op == "eq" and left != right) or (op == "ct" and right not in left):
                return False
        return True

    def _ep_contact_get(self, request: Request, org: Organization, args: dict, guid: str) -> Response:
        key = _normalise_guid(guid)
        contact = org.contacts.get(key) if key else None
        if contact is None or contact["DeletedAt"]:
            raise not_found("Contact")
        return _json_response(contact)

    def _ep_contact_create(self, request: Request, org: Organization, args: dict) -> Response:
        body = self._json_body(request)
        if body is _MISSING or not isinstance(body, dict):
            raise validation_error({"Name": "The Name field is required."})
        record = self._validated_contact(org, _ci(body))
        org.contacts[record["ContactGuid"]] = record
        return _json_response({"ContactGuid": record["ContactGuid"]}, CREATE_STATUS)

    def _validated_contact(self, org: Organization, body: dict) -> dict:
        errors: dict[str, str] = {}
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["Name"] = "The Name field is required."
        country = body.get("countrykey")
        if not isinstance(country, str) or not country.strip():
            errors["CountryKey"] = "The CountryKey field is required."
        elif not re.fullmatch(r"[A-Z]{2}", country):
            errors["CountryKey"] = f"'{country}' is not a valid country key."
        flags = {}
        for flag in ("IsPerson", "IsMember", "UseCvr"):
            value = body.get(flag.lower(), _MISSING)
            if value is _MISSING or value is None:
                errors[flag] = f"The {flag} field is required."
            elif not isinstance(value, bool):
                errors[flag] = f"The {flag} field must be true or false."
            else:
                flags[flag] = value
        extra = None
        guid = None
        if body.get("contactguid") is not None:
            guid = _normalise_guid(body["contactguid"])
            if guid is None:
                errors["ContactGuid"] = f"The value '{body['contactguid']}' is not a valid Guid."
            elif guid in org.contacts:
                errors["ContactGuid"] = "A contact with this ContactGuid already exists."
                extra = {
                    "errorMessageList": [{"Code": GUID_MUST_BE_UNIQUE, "Message": "Guid must be unique"}]
                }
        strings = {}
        for key in self._CONTACT_STRING_FIELDS:
            value = body.get(key.lower())
            if value is not None and not isinstance(value, str):
                errors[key] = f"The {key} field must be a string."
            strings[key] = value
        days = body.get("paymentconditionnumberofdays", 8)
        if days is not None and _parse_int(days) is None:
            errors["PaymentConditionNumberOfDays"] = (
                "The PaymentConditionNumberOfDays field must be an integer."
            )
        if errors:
            raise validation_error(errors, extra=extra)
        now = self._now_iso()
        return {
            "ContactGuid": guid or str(uuid.uuid4()),
            "CreatedAt": now,
            "UpdatedAt": now,
            "DeletedAt": None,
            "IsDebitor": False,
            "IsCreditor": False,
            "Name": name.strip(),
            "CountryKey": country,
            **strings,
            "PaymentConditionType": body.get("paymentconditiontype") or "Netto",
            "PaymentConditionNumberOfDays": _parse_int(days) if days is not None else None,
            **flags,
        }

    # ---- files -----------------------------------------------------------------------------------

    def _ep_file_upload(self, request: Request, org: Organization, args: dict) -> Response:
        part = next((request.files[n] for n in FILE_PART_NAMES if n in request.files), None)
        if part is None:
            raise validation_error(
                {"file": "No file was attached. Send multipart/form-data with a part named 'file'."}
            )
        data = part.read()
        if len(data) > MAX_FILE_BYTES:
            raise ApiError(413, FILE_TOO_LARGE_CODE, FILE_TOO_LARGE_MESSAGE)
        if not data:
            raise validation_error({"file": "The attached file is empty."})
        if data.startswith(b"%PDF-"):
            kind = "pdf"
        elif data.startswith(b"\x89PNG\r\n\x1a\n"):
            kind = "png"
        elif data.startswith(b"\xff\xd8\xff"):
            kind = "jpg"
        else:
            raise validation_error(
                {"file": "The file type is not supported. Upload a PDF, PNG or JPEG file."}
            )
        name = args.get("filename") or part.filename or f"upload.{kind}"
        file_guid = "".join(secrets.choice(_FILE_ALPHABET) for _ in range(31))
        org.files[file_guid] = {
            "FileGuid": file_guid,
            "Name": name,
            "Size": len(data),
            "Extension": kind,
            "UploadedAt": self._now_iso(),
            "Linked": [],
            "_accessible_from": self.clock.now() + self.file_accessible_after,
        }
        return _json_response({"FileGuid": file_guid, "OrganizationId": org.id})

    def _ep_files_list(self, request: Request, org: Organization, args: dict) -> Response:
        page, size = self._paging(args)
        files = sorted(org.files.values(), key=lambda f: f["UploadedAt"])
        total = len(files)
        status = (args.get("filestatus") or "All").lower()
        if status not in ("all", "used", "unused"):
            raise validation_error({"fileStatus": "fileStatus must be All, Used or Unused."})
        if status == "used":
            files = [f for f in files if f["Linked"]]
        elif status == "unused":
            files = [f for f in files if not f["Linked"]]
        if args.get("extensions"):
            wanted = {e.strip().lower().lstrip(".") for e in args["extensions"].split(",")}
            if "jpeg" in wanted:
                wanted.add("jpg")
            files = [f for f in files if f["Extension"] in wanted]
        for key, keep in (("uploadedbefore", lambda d, x: d < x), ("uploadedafter", lambda d, x: d > x)):
            if args.get(key):
                bound = _parse_date(args[key].replace("/", "-"))
                if bound is None:
                    raise validation_error({key: "Use the format YYYY/MM/DD."})
                files = [f for f in files if keep(f["UploadedAt"][:10], bound.isoformat())]
        return _json_response(self._paged(files, total, page, size, _fields_param(args, FILE_DEFAULT_FIELDS)))

    def _check_file(self, org: Organization, value: Any, owner_guid: str | None, errors: dict) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value.lower() not in org.files:
            errors["FileGuid"] = f"The file '{value}' does not exist."
            return None
        record = org.files[value.lower()]
        if self.clock.now() < record.get("_accessible_from", 0):
            errors["FileGuid"] = FILE_NOT_ACCESSIBLE_MESSAGE.format(guid=value)
            return None
        for link in record["Linked"]:
            if link["Guid"] == owner_guid:
                continue
            live = link["Guid"] in org.purchase_vouchers or link["Guid"] in org.credit_notes
            if live or STALE_LINK_BLOCKS_REATTACH:
                errors["FileGuid"] = (
                    f"The file '{value}' is already attached to another voucher. "
                    "A file can only be attached to one voucher; upload it again."
                )
                return None
        return record["FileGuid"]

    @staticmethod
    def _link_file(org: Organization, file_guid: str | None, owner_guid: str, owner_type: str) -> None:
        for record in org.files.values():
            if record["FileGuid"] != file_guid:
                # a PUT that replaces or drops the file releases the old link
                record["Linked"] = [link for link in record["Linked"] if link["Guid"] != owner_guid]
        if file_guid is not None:
            linked = org.files[file_guid]["Linked"]
            if not any(link["Guid"] == owner_guid for link in linked):
                linked.append({"Type": owner_type, "Guid": owner_guid})

    # ---- purchase vouchers: validation -----------------------------------------------------------

    def _validate_lines(
        self, org: Organization, lines: Any, errors: dict, *, prefix: str = "Lines"
    ) -> list[dict]:
        if lines is None:
            return []
        if not isinstance(lines, list):
            errors[prefix] = "Lines must be an array."
            return []
        result = []
        for index, raw in enumerate(lines):
            key = f"{prefix}[{index}]"
            if not isinstance(raw, dict):
                errors[key] = "A line must be an object."
                continue
            line = _ci(raw)
            amount_raw = line.get("amount", _MISSING)
            amount = Decimal(0)
            if amount_raw is _MISSING:
                if not MISSING_AMOUNT_BINDS_TO_ZERO:
                    errors[f"{key}.Amount"] = "The Amount field is required."
            elif amount_raw is None:
                errors[f"{key}.Amount"] = "The Amount field is required."
            else:
                parsed = _parse_decimal(amount_raw)
                if parsed is None:
                    errors[f"{key}.Amount"] = f"Could not convert '{amount_raw}' to decimal."
                elif parsed < 0 and not ALLOW_NEGATIVE_LINE_AMOUNT:
                    errors[f"{key}.Amount"] = "Amount cannot be negative on a purchase voucher."
                else:
                    amount = _q(parsed)
            account_raw = line.get("accountnumber")
            account = _parse_int(account_raw) if account_raw is not None else None
            if account_raw is None:
                errors[f"{key}.AccountNumber"] = "The AccountNumber field is required."
            elif account is None:
                errors[f"{key}.AccountNumber"] = f"Could not convert '{account_raw}' to an account number."
            elif account not in org.accounts:
                errors[f"{key}.AccountNumber"] = f"Account {account} does not exist."
            elif account not in org.purchase_accounts:
                errors[f"{key}.AccountNumber"] = f"Account {account} cannot be used on a purchase voucher."
            vat_raw = line.get("vatcode")
            vat_code = None
            if vat_raw not in NO_VAT_CODES:
                vat = org.vat_types.get(vat_raw) if isinstance(vat_raw, str) else None
                if vat is None:
                    errors[f"{key}.VatCode"] = f"Unknown VatCode '{vat_raw}'."
                elif vat["Kind"] == "sales" and not SALES_VAT_CODES_ON_PURCHASES:
                    errors[f"{key}.VatCode"] = (
                        f"VatCode '{vat_raw}' is a sales VAT code and cannot be used here."
                    )
                else:
                    vat_code = vat_raw
            description = line.get("description")
            if description is not None and not isinstance(description, str):
                errors[f"{key}.Description"] = "Description must be a string."
            result.append(
                {
                    "Description": description,
                    "AccountNumber": account,
                    "VatCode": vat_code,
                    "Amount": str(amount),
                }
            )
        return result

    @staticmethod
    def _check_date(
        org: Organization, body: dict, key: str, name: str, errors: dict, *, required: bool
    ) -> str | None:
        """A YYYY-MM-DD date; a required one is a posting date and must fall in an accounting year."""
        raw = body.get(key)
        if raw is None:
            if required:
                errors[name] = f"The {name} field is required."
            return None
        day = _parse_date(raw)
        if day is None:
            errors[name] = f"{name} must be a date in the format YYYY-MM-DD."
            return None
        if required and not org.has_accounting_year(day):
            errors[name] = f"There is no accounting year for the date {day.isoformat()}."
            return None
        return day.isoformat()

    def _check_contact(self, org: Organization, raw: Any, errors: dict) -> str | None:
        if raw is None:
            return None
        guid = _normalise_guid(raw)
        if guid is None:
            errors["ContactGuid"] = f"The value '{raw}' is not a valid Guid."
        elif guid not in org.contacts or org.contacts[guid]["DeletedAt"]:
            errors["ContactGuid"] = f"The contact '{raw}' does not exist."
        else:
            return guid
        return None

    def _check_external_reference(self, raw: Any, errors: dict) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            errors["ExternalReference"] = "ExternalReference must be a string."
            return None
        if len(raw) > MAX_EXTERNAL_REFERENCE:
            errors["ExternalReference"] = (
                f"ExternalReference can be at most {MAX_EXTERNAL_REFERENCE} characters long."
            )
            return None
        return raw

    def _validated_voucher(self, org: Organization, body: dict, *, update_of: dict | None) -> dict:
        """Bind and validate a create (v1.2) or update (v1.1) body; raise 400 with every error."""
        errors: dict[str, str] = {}
        owner_guid = update_of["Guid"] if update_of else None
        purchase_type = body.get("purchasetype")
        if purchase_type is None:
            errors["PurchaseType"] = "The PurchaseType field is required."
        elif purchase_type not in ("cash", "credit"):
            errors["PurchaseType"] = "PurchaseType must be 'cash' or 'credit'."
        cash, credit = purchase_type == "cash", purchase_type == "credit"

        voucher_date = self._check_date(org, body, "voucherdate", "VoucherDate", errors, required=True)

        payment_date = None
        if body.get("paymentdate") is not None:
            if cash:
                errors["PaymentDate"] = "PaymentDate should not be set on cash purchases"
            else:
                payment_date = self._check_date(
                    org, body, "paymentdate", "PaymentDate", errors, required=False
                )

        currency = "DKK"
        if body.get("currencykey") is not None:
            if cash:
                errors["CurrencyKey"] = "CurrencyKey should not be set on cash purchases"
            elif body["currencykey"] not in KNOWN_CURRENCIES:
                errors["CurrencyKey"] = f"Unknown currency '{body['currencykey']}'."
            else:
                currency = body["currencykey"]

        deposit = None
        deposit_raw = body.get("depositaccountnumber")
        if cash:
            if deposit_raw is None:
                errors["DepositAccountNumber"] = "DepositAccountNumber is required on cash purchases."
            else:
                deposit = _parse_int(deposit_raw)
                if deposit is None or deposit not in org.deposit_accounts:
                    errors["DepositAccountNumber"] = f"Account {deposit_raw} is not a deposit account."
        elif credit and deposit_raw is not None:
            errors["DepositAccountNumber"] = "DepositAccountNumber should not be set on credit purchases."

        region = None
        if cash:
            region = body.get("regionkey") or DEFAULT_REGION_KEY
            if region not in REGION_KEYS:
                errors["RegionKey"] = "RegionKey must be one of DK, EU, World."

        contact_raw = body.get("contactguid")
        if update_of is not None and PUT_REQUIRES_CONTACT_GUID and contact_raw is None:
            errors["ContactGuid"] = "The ContactGuid field is required."
        contact = self._check_contact(org, contact_raw, errors)
        if not credit:
            contact = None  # only credit purchases have a contact (API-GET-PV)

        file_guid = self._check_file(org, body.get("fileguid"), owner_guid, errors)
        external_reference = self._check_external_reference(body.get("externalreference"), errors)

        if update_of is not None and body.get("lines") is None:
            errors["Lines"] = "The Lines field is required."
        lines = self._validate_lines(org, body.get("lines"), errors)

        if errors:
            raise validation_error(errors)
        return {
            "PurchaseType": purchase_type,
            "VoucherDate": voucher_date,
            "PaymentDate": payment_date,
            "RegionKey": region,
            "DepositAccountNumber": deposit,
            "ContactGuid": contact,
            "CurrencyKey": currency,
            "FileGuid": file_guid,
            "ExternalReference": external_reference,
            "Lines": lines,
        }

    # ---- purchase vouchers: read model -----------------------------------------------------------

    def _line_read_model(self, org: Organization, line: dict) -> tuple[dict, Decimal, Decimal]:
        gross = Decimal(line["Amount"])
        vat_type = org.vat_types.get(line["VatCode"]) if line["VatCode"] else None
        if vat_type is None or vat_type["Kind"] in ("reverse", "sales"):
            net, vat = gross, Decimal(0)
        else:
            rate = Decimal(str(vat_type["VatRate"]))
            full_vat = gross - gross / (1 + rate)
            if vat_type["Kind"] == "representation":
                full_vat *= REPRESENTATION_DEDUCTIBLE_SHARE
            vat = _q(full_vat)
            net = gross - vat
        model = {
            "Description": line["Description"],
            "VatCode": line["VatCode"],
            "AccountNumber": line["AccountNumber"],
            "AmountExclVatValue": _money(net),
            "AmountInclVatValue": _money(gross),
            "VatAmountValue": _money(vat),
        }
        return model, net, gross

    def _lines_and_totals(
        self, org: Organization, lines: list[dict], currency: str
    ) -> tuple[list, list, Decimal]:
        models, net_total, gross_total = [], Decimal(0), Decimal(0)
        for line in lines:
            model, net, gross = self._line_read_model(org, line)
            models.append(model)
            net_total += net
            gross_total += gross
        totals = [
            {"Type": "SubTotalWithoutVat", "Label": "Subtotal ekskl. moms", "Total": _money(net_total)},
            {"Type": "Total", "Label": f"Total {currency}", "Total": _money(gross_total)},
        ]
        return models, totals, gross_total

    def _voucher_status(self, record: dict) -> str:
        if not record["Booked"]:
            return "Draft"
        if record["PurchaseType"] == "cash":
            return "Paid"
        if record["PaymentDate"] and record["PaymentDate"] < self.today().isoformat():
            return "Overdue"
        return "Booked"

    def _voucher_read_model(self, org: Organization, record: dict) -> dict:
        lines, totals, _ = self._lines_and_totals(org, record["Lines"], record["CurrencyKey"])
        cash = record["PurchaseType"] == "cash"
        return {
            "Guid": record["Guid"],
            "Timestamp": record["Timestamp"],
            "Status": self._voucher_status(record),
            "FileGuid": record["FileGuid"],
            "VoucherNumber": record["VoucherNumber"],
            "VoucherDate": record["VoucherDate"],
            "PaymentDate": record["VoucherDate"] if cash else record["PaymentDate"],
            "RegionKey": record["RegionKey"],
            "PurchaseType": record["PurchaseType"],
            "Lines": lines,
            "DepositAccountNumber": record["DepositAccountNumber"],
            "ContactGuid": record["ContactGuid"],
            "ExternalReference": record["ExternalReference"],
            "CurrencyKey": record["CurrencyKey"],
            "VoucherTotals": totals,
        }

    def _voucher(self, org: Organization, guid: str) -> dict:
        key = _normalise_guid(guid)
        record = org.purchase_vouchers.get(key) if key else None
        if record is None:
            raise not_found("Purchase voucher")
        return record

    def _check_timestamp(self, body: dict, record: dict) -> None:
        timestamp = body.get("timestamp")
        if timestamp is None or timestamp == "":
            raise validation_error({"Timestamp": "The Timestamp field is required."})
        if not isinstance(timestamp, str) or timestamp.upper() != record["Timestamp"]:
            raise ApiError(400, TIMESTAMP_OUTDATED_CODE, TIMESTAMP_OUTDATED_MESSAGE)

    def _mark_creditor(self, org: Organization, contact_guid: str | None) -> None:
        if contact_guid and not org.contacts[contact_guid]["IsCreditor"]:
            org.contacts[contact_guid]["IsCreditor"] = True
            org.contacts[contact_guid]["UpdatedAt"] = self._now_iso()

    # ---- purchase vouchers: endpoints ------------------------------------------------------------

    def _ep_voucher_create_deprecated(self, request: Request, org: Organization, args: dict) -> Response:
        return ApiError(BROWNOUT_STATUS, NOT_FOUND_CODE, BROWNOUT_MESSAGE).response()

    def _ep_voucher_create(self, request: Request, org: Organization, args: dict) -> Response:
        body = self._json_body(request)
        if body is _MISSING or body is None:
            raise validation_error({"PurchaseType": "The PurchaseType field is required."})
        if not isinstance(body, dict):
            raise validation_error({"body": "The request body must be a JSON object."})
        fields = self._validated_voucher(org, _ci(body), update_of=None)
        guid = str(uuid.uuid4())
        now = self._now_iso()
        record = {
            "Guid": guid,
            "Timestamp": self._next_timestamp(),
            "Booked": False,
            "VoucherNumber": None,
            "CreatedAt": now,
            "UpdatedAt": now,
            **fields,
        }
        org.purchase_vouchers[guid] = record
        self._link_file(org, record["FileGuid"], guid, "PurchaseVoucher")
        self._mark_creditor(org, record["ContactGuid"])
        if org.create_answer == "read_model":
            return _json_response(self._voucher_read_model(org, record), CREATE_STATUS)
        return _json_response({"Guid": guid, "Timestamp": record["Timestamp"]}, CREATE_STATUS)

    def _ep_voucher_get(self, request: Request, org: Organization, args: dict, guid: str) -> Response:
        return _json_response(self._voucher_read_model(org, self._voucher(org, guid)))

    def _ep_voucher_update(self, request: Request, org: Organization, args: dict, guid: str) -> Response:
        record = self._voucher(org, guid)
        body = self._json_object(request, required_message="The Timestamp field is required.")
        self._check_timestamp(body, record)
        if record["Booked"] and not org.allow_edit_booked:
            raise validation_error({"Status": BOOKED_EDIT_MESSAGE.format(action="updated")})
        fields = self._validated_voucher(org, body, update_of=record)
        record.update(fields)
        record["Timestamp"] = self._next_timestamp()
        record["UpdatedAt"] = self._now_iso()
        self._link_file(org, record["FileGuid"], record["Guid"], "PurchaseVoucher")
        self._mark_creditor(org, record["ContactGuid"])
        return _json_response({"Guid": record["Guid"], "Timestamp": record["Timestamp"]}, UPDATE_STATUS)

    def _ep_voucher_delete(self, request: Request, org: Organization, args: dict, guid: str) -> Response:
        record = self._voucher(org, guid)
        body = self._json_object(request, required_message="The Timestamp field is required.")
        self._check_timestamp(body, record)
        if record["Booked"] and not org.allow_edit_booked:
            raise validation_error({"Status": BOOKED_EDIT_MESSAGE.format(action="deleted")})
        del org.purchase_vouchers[record["Guid"]]
        # the file's Linked entry is left behind on purpose: MANYFOLD observed stale links
        return Response(status=DELETE_STATUS)

    def _take_number(self, org: Organization, body: dict) -> int:
        used = org.used_voucher_numbers()
        requested = body.get("number")
        if requested is not None:
            number = _parse_int(requested)
            if number is None or number < 1:
                raise validation_error({"Number": "Number must be a positive integer."})
            if number in used:
                raise validation_error({"Number": f"The voucher number {number} is already taken."})
            return number
        number = org.next_voucher_number
        while number in used:
            number += 1
        org.next_voucher_number = number + 1
        return number

    def _ep_voucher_book(self, request: Request, org: Organization, args: dict, guid: str) -> Response:
        record = self._voucher(org, guid)
        body = self._json_object(request, required_message="The Timestamp field is required.")
        self._check_timestamp(body, record)
        if record["Booked"]:
            raise validation_error({"Status": "The voucher is already booked."})
        errors = {}
        if not org.has_accounting_year(date.fromisoformat(record["VoucherDate"])):
            errors["VoucherDate"] = f"There is no accounting year for the date {record['VoucherDate']}."
        if record["PurchaseType"] == "credit":
            if not record["PaymentDate"]:
                errors["PaymentDate"] = "PaymentDate is required to book a credit purchase."
            if CREDIT_CONTACT_REQUIRED_AT_BOOKING and not record["ContactGuid"]:
                errors["ContactGuid"] = "ContactGuid is required to book a credit purchase."
        if not record["Lines"]:
            errors["Lines"] = "A voucher without lines cannot be booked."
        if errors:
            raise validation_error(errors)
        record["VoucherNumber"] = self._take_number(org, body)
        record["Booked"] = True
        record["Timestamp"] = self._next_timestamp()
        record["UpdatedAt"] = self._now_iso()
        if org.book_answer == "read_model":
            return _json_response(self._voucher_read_model(org, record), UPDATE_STATUS)
        return _json_response({"Guid": record["Guid"], "Timestamp": record["Timestamp"]}, UPDATE_STATUS)

    # ---- purchase credit notes -------------------------------------------------------------------

    def _credited_total(self, org: Organization, voucher_guid: str) -> Decimal:
        total = Decimal(0)
        for note in org.credit_notes.values():
            if note["CreditNoteFor"] == voucher_guid:
                total += sum((Decimal(line["Amount"]) for line in note["Lines"]), Decimal(0))
        return total

    def _check_credit_limit(self, org: Organization, voucher: dict, lines: list[dict]) -> None:
        if not CREDIT_NOTE_LIMITED_TO_VOUCHER_TOTAL:
            return
        voucher_total = sum((Decimal(line["Amount"]) for line in voucher["Lines"]), Decimal(0))
        new_total = sum((Decimal(line["Amount"]) for line in lines), Decimal(0))
        if self._credited_total(org, voucher["Guid"]) + new_total > voucher_total:
            raise validation_error(
                {"Lines": "The credit note exceeds the remaining amount of the purchase voucher."}
            )

    def _store_credit_note(self, org: Organization, fields: dict) -> dict:
        guid = str(uuid.uuid4())
        now = self._now_iso()
        record = {
            "Guid": guid,
            "Timestamp": self._next_timestamp(),
            "Booked": False,
            "VoucherNumber": None,
            "CreatedAt": now,
            "UpdatedAt": now,
            **fields,
        }
        org.credit_notes[guid] = record
        self._link_file(org, record["FileGuid"], guid, "PurchaseCreditNote")
        return record

    def _ep_credit_note_create(self, request: Request, org: Organization, args: dict) -> Response:
        body = self._json_body(request)
        if body is _MISSING or not isinstance(body, dict):
            raise validation_error({"CreditNoteFor": "The CreditNoteFor field is required."})
        body = _ci(body)
        errors: dict[str, str] = {}
        note_date = self._check_date(org, body, "date", "Date", errors, required=True)
        voucher = None
        voucher_raw = body.get("creditnotefor")
        if voucher_raw is None:
            errors["CreditNoteFor"] = "The CreditNoteFor field is required."
        else:
            key = _normalise_guid(voucher_raw)
            voucher = org.purchase_vouchers.get(key) if key else None
            if voucher is None:
                errors["CreditNoteFor"] = f"The purchase voucher '{voucher_raw}' does not exist."
            elif not voucher["Booked"]:
                errors["CreditNoteFor"] = "Only booked purchase vouchers can be credited."
        contact = self._check_contact(org, body.get("contactguid"), errors)
        currency = body.get("currency") or (voucher["CurrencyKey"] if voucher else "DKK")
        if currency not in KNOWN_CURRENCIES:
            errors["Currency"] = f"Unknown currency '{currency}'."
        file_guid = self._check_file(org, body.get("fileguid"), None, errors)
        # §16: the credit-note model is Date, FileGuid, ContactGuid, Currency, CreditNoteFor, Timestamp,
        # Lines (HEXIO Models/PurchaseVouchers/CreatePurchaseVoucherCreditNoteModel.cs): no
        # ExternalReference. Like every unknown property it is silently ignored, so nothing is kept.
        lines = self._validate_lines(org, body.get("lines"), errors)
        if not lines and "Lines" not in errors and not any(k.startswith("Lines[") for k in errors):
            errors["Lines"] = "A credit note must have at least one line."
        if errors:
            raise validation_error(errors)
        self._check_credit_limit(org, voucher, lines)
        record = self._store_credit_note(
            org,
            {
                "Date": note_date,
                "ContactGuid": contact or voucher["ContactGuid"],
                "CreditNoteFor": voucher["Guid"],
                "Currency": currency,
                "FileGuid": file_guid,
                "Lines": lines,
            },
        )
        return _json_response({"Guid": record["Guid"], "Timestamp": record["Timestamp"]}, CREATE_STATUS)

    def _ep_voucher_generate_credit_note(
        self, request: Request, org: Organization, args: dict, guid: str
    ) -> Response:
        voucher = self._voucher(org, guid)
        body = self._json_object(request, required_message="The Timestamp field is required.")
        # HEXIO: the timestamp is wrapped, {"Timestamp": {"Timestamp": "…"}}
        wrapped = body.get("timestamp")
        if not isinstance(wrapped, dict):
            raise validation_error({"Timestamp": "The Timestamp field is required."})
        self._check_timestamp(_ci(wrapped), voucher)
        errors: dict[str, str] = {}
        note_date = self._check_date(org, body, "voucherdate", "VoucherDate", errors, required=True)
        if not voucher["Booked"]:
            errors["Guid"] = "Only booked purchase vouchers can be credited."
        if errors:
            raise validation_error(errors)
        lines = copy.deepcopy(voucher["Lines"])
        self._check_credit_limit(org, voucher, lines)
        record = self._store_credit_note(
            org,
            {
                "Date": note_date,
                "ContactGuid": voucher["ContactGuid"],
                "CreditNoteFor": voucher["Guid"],
                "Currency": voucher["CurrencyKey"],
                "FileGuid": None,
                "Lines": lines,
            },
        )
        return _json_response({"Guid": record["Guid"], "Timestamp": record["Timestamp"]}, CREATE_STATUS)

    def _credit_note(self, org: Organization, guid: str) -> dict:
        key = _normalise_guid(guid)
        record = org.credit_notes.get(key) if key else None
        if record is None:
            raise not_found("Purchase credit note")
        return record

    def _credit_note_read_model(self, org: Organization, record: dict) -> dict:
        lines, totals, _ = self._lines_and_totals(org, record["Lines"], record["Currency"])
        return {
            "Guid": record["Guid"],
            "Timestamp": record["Timestamp"],
            "Status": "Booked" if record["Booked"] else "Draft",
            "Date": record["Date"],
            "ContactGuid": record["ContactGuid"],
            "CreditNoteFor": record["CreditNoteFor"],
            "Currency": record["Currency"],
            "FileGuid": record["FileGuid"],
            "VoucherNumber": record["VoucherNumber"],
            "Lines": lines,
            "VoucherTotals": totals,
        }

    def _ep_credit_note_get(self, request: Request, org: Organization, args: dict, guid: str) -> Response:
        return _json_response(self._credit_note_read_model(org, self._credit_note(org, guid)))

    def _ep_credit_note_book(self, request: Request, org: Organization, args: dict, guid: str) -> Response:
        record = self._credit_note(org, guid)
        body = self._json_object(request, required_message="The Timestamp field is required.")
        self._check_timestamp(body, record)
        if record["Booked"]:
            raise validation_error({"Status": "The credit note is already booked."})
        if not org.has_accounting_year(date.fromisoformat(record["Date"])):
            raise validation_error({"Date": f"There is no accounting year for the date {record['Date']}."})
        record["VoucherNumber"] = self._take_number(org, body)
        record["Booked"] = True
        record["Timestamp"] = self._next_timestamp()
        record["UpdatedAt"] = self._now_iso()
        return _json_response({"Guid": record["Guid"], "Timestamp": record["Timestamp"]}, UPDATE_STATUS)


def basic_auth_header(client_id: str, client_secret: str) -> str:
    """``Authorization`` value for the token request (handy in tests and the demo)."""
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


__all__ = [
    "BALANCE_CATEGORIES",
    "PROFIT_AND_LOSS_CATEGORIES",
    "ApiError",
    "DineroSandbox",
    "Organization",
    "basic_auth_header",
    "standard_chart",
]
