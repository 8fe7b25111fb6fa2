"""Fixtures for the Dinero flow: the sandbox over real HTTP, a record of what it received, and
virtual time.

Dinero's rate-limit window is a minute, so waiting it out for real would make the suite crawl. The
pacing (``integrations.ratelimit``) and the Dinero client read the time through their module's
``time``; here both read the sandbox's clock instead, and sleeping advances that clock. Both sides
of the wire thus share one clock in which a minute passes instantly — the HTTP itself stays real.
"""

from __future__ import annotations

import io
import json
import time as real_time
from dataclasses import dataclass

import pytest

DINERO_CLIENT = ("kontera-demo", "kontera-demo-secret")
DINERO_ORG = 123456
DINERO_KEY = "demo-dinero-api-key"
DINERO_NOPRO_ORG = 654321
DINERO_NOPRO_KEY = "demo-dinero-nopro-key"
# Visma Connect: Kontera's application and an accountant's Visma login reaching both organisations.
VISMA_CLIENT = ("isv_kontera_test", "kontera-test-visma-secret")
VISMA_REDIRECT = "http://testserver/integrations/dinero/callback"
VISMA_USER = ("anne@bureau.example", "visma-pass-2026", "Anne Bogholder")

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Received:
    method: str
    path: str
    query: str
    content_type: str
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


class Recorder:
    """WSGI middleware in front of the sandbox: keeps every request body exactly as it arrived."""

    def __init__(self, app):
        self.app = app
        self.requests: list[Received] = []

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        self.requests.append(Received(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                      environ.get("QUERY_STRING", ""), environ.get("CONTENT_TYPE", ""), body))
        return self.app(environ, start_response)

    def clear(self) -> None:
        self.requests.clear()

    def find(self, method: str, path_contains: str = "") -> list[Received]:
        return [r for r in self.requests if r.method == method and path_contains in r.path]

    def api_calls(self) -> list[Received]:
        """Requests to the API (the token endpoint excluded)."""
        return [r for r in self.requests if "/oauth/token" not in r.path]


class VirtualTime:
    """Stands in for the ``time`` module of the pacing and the Dinero client: the sandbox's clock."""

    def __init__(self, clock):
        self.clock = clock
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.clock.now()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def monotonic(self) -> float:
        return real_time.monotonic()


@pytest.fixture
def dinero_sandbox(sandbox_server, settings, monkeypatch, sandbox_clock, virtual_time):
    """A fresh Dinero sandbox with the demo client and organisations; Kontera's settings point at it."""
    import integrations.dinero.client as dinero_client
    from integrations.sandboxes.dinero import DineroSandbox

    sandbox = DineroSandbox(clock=sandbox_clock)
    sandbox.seed_demo()
    recorder = Recorder(sandbox)
    sandbox_server.board.apps["/dinero"] = recorder
    settings.DINERO_API_URL = f"{sandbox_server.url}/dinero"
    settings.DINERO_AUTH_URL = f"{sandbox_server.url}/dinero/dineroapi/oauth/token"
    settings.DINERO_CLIENT_ID, settings.DINERO_CLIENT_SECRET = DINERO_CLIENT
    sandbox.visma.register_client(*VISMA_CLIENT, [VISMA_REDIRECT], name="Kontera (test)")
    sandbox.visma.add_user(*VISMA_USER, [DINERO_ORG, DINERO_NOPRO_ORG])
    settings.VISMA_CONNECT_AUTHORIZE_URL = f"{sandbox_server.url}/dinero/connect/authorize"
    settings.VISMA_CONNECT_TOKEN_URL = f"{sandbox_server.url}/dinero/connect/token"
    settings.VISMA_CONNECT_CLIENT_ID, settings.VISMA_CONNECT_CLIENT_SECRET = VISMA_CLIENT
    settings.VISMA_CONNECT_REDIRECT_URI = VISMA_REDIRECT
    settings.KONTERA_HTTP_TIMEOUT = (2.0, 3.0)
    virtual = virtual_time  # the pacing already reads the shared clock (conftest.virtual_time)
    monkeypatch.setattr(dinero_client, "time", virtual)
    sandbox.received = recorder
    sandbox.virtual_time = virtual
    sandbox.org = sandbox.organization(DINERO_ORG)
    yield sandbox
    sandbox_server.board.apps.pop("/dinero", None)


@pytest.fixture
def dk_company(db):
    from tests import factories

    company = factories.CompanyFactory(name="Demo ApS", slug="demo-aps", country="DK", base_currency="DKK",
                                       org_number="DK12345678")
    payment_list = factories.PaymentMethodListFactory(company=company, name="Kvitteringer")
    factories.PaymentMethodFactory(payment_list=payment_list, name="Firmakort", account_number=55010)
    factories.PaymentMethodFactory(payment_list=payment_list, name="Kontant", account_number=55040)
    return company


@pytest.fixture
def connected_dinero(dinero_sandbox, dk_company):
    """The demo organisation set up through the same service as the wizard and the command."""
    from expense_documents.services.common import dinero_integration
    from expense_documents.services.dinero_setup import dinero_setup

    dinero_setup(company=dk_company, api_key=DINERO_KEY, organization_id=str(DINERO_ORG), error_account=7480,
                 import_chart=True, invoice_payment_method="63000", receipt_payment_list="Kvitteringer",
                 actor="test")
    dinero_sandbox.received.clear()
    return dinero_integration(dk_company)


def visma_consent(sandbox, integration, *, email=VISMA_USER[0]):
    """A Dinero user approves in Visma Connect and the callback's steps run: the real authorisation
    request (state, PKCE) and token exchange; only the browser round trip is left out (the admin tests
    walk it through the sandbox's consent page)."""
    from urllib.parse import parse_qs, urlsplit

    from integrations import tokens

    query = {k: v[0] for k, v in parse_qs(urlsplit(tokens.authorisation_url(integration=integration)).query).items()}
    code = sandbox.visma.authorize(query["client_id"], email, scopes=query["scope"].split(),
                                   redirect_uri=query["redirect_uri"], code_challenge=query["code_challenge"])
    consent = tokens.consume_state(state=query["state"], user=None, user_can_act_on=lambda user, company: True,
                                   system="dinero")
    return tokens.exchange_code(integration=integration, code=code, code_verifier=consent.code_verifier)


@pytest.fixture
def visma_dinero(dinero_sandbox, dk_company):
    """The demo organisation connected through Visma Connect and set up with the same service as the
    wizard and ``dinero_setup`` (without an API key)."""
    from expense_documents.services.common import dinero_integration
    from expense_documents.services.dinero_connection import visma_connect_start
    from expense_documents.services.dinero_setup import dinero_setup

    visma_consent(dinero_sandbox, visma_connect_start(company=dk_company, actor="test"))
    dinero_setup(company=dk_company, api_key=None, organization_id=str(DINERO_ORG), error_account=7480,
                 import_chart=True, invoice_payment_method="63000", receipt_payment_list="Kvitteringer",
                 actor="test")
    dinero_sandbox.received.clear()
    return dinero_integration(dk_company)


def expense(company, reference="INV-1", *, type="invoice", supplier="Kontorland A/S", supplier_vat="DK12345678",
            lines=(("125.00", "I25", 7200, "Kontorartikler"),), day=None, due=None, currency="DKK",
            amount_dkk=None, payment_method=None, attachment=None, **fields):
    """An expense document with (amount, vat code, category, text) lines, as staff would enter it."""
    import datetime as dt
    from decimal import Decimal

    from django.core.files.base import ContentFile

    from bookkeeping.models import PaymentMethod
    from expense_documents.models import ExpenseDocument, ExpenseLine

    if type == "receipt" and payment_method is None:
        payment_method = PaymentMethod.objects.filter(payment_list__company=company, name="Firmakort").first()
    day = day or dt.date.today()
    document = ExpenseDocument.objects.create(
        company=company, reference=reference, type=type, supplier_name=supplier, supplier_vat=supplier_vat,
        document_date=day, due_date=due if due is not None else (day + dt.timedelta(days=30) if type == "invoice"
                                                                 else None),
        currency=currency, amount_dkk=Decimal(amount_dkk) if amount_dkk is not None else None,
        payment_method=payment_method, **fields,
    )
    for position, (amount, vat, category, text) in enumerate(lines):
        ExpenseLine.objects.create(document=document, position=position, amount=Decimal(amount), vat_code=vat or "",
                                   category=category, text=text)
    if attachment is not None:
        name, content = attachment
        document.attachment.save(name, ContentFile(content), save=True)
    return document


def sync_and_send(document, **kwargs):
    """What the worker does: sync the document, then the dispatcher sends what was queued."""
    from bookkeeping.services.sending import vouchers_dispatch
    from expense_documents.selectors import document_sync_state
    from expense_documents.services.sync import SyncOutcome, expense_document_sync

    expense_document_sync(document=document, actor="test", kick=False, **kwargs)
    vouchers_dispatch(system="dinero", max_seconds=30)
    document.refresh_from_db()
    if document.voucher_id:
        document.voucher.refresh_from_db()
    state = document_sync_state(document)  # where it stands after the dispatcher ran
    return SyncOutcome(reference=document.reference, state=state.code, message=state.detail)


__all__ = [
    "DINERO_CLIENT",
    "DINERO_KEY",
    "DINERO_NOPRO_KEY",
    "DINERO_NOPRO_ORG",
    "DINERO_ORG",
    "PDF",
    "Recorder",
    "VirtualTime",
    "connected_dinero",
    "dinero_sandbox",
    "dk_company",
    "expense",
    "sync_and_send",
    "VISMA_CLIENT",
    "VISMA_REDIRECT",
    "VISMA_USER",
    "visma_consent",
    "visma_dinero",
]
