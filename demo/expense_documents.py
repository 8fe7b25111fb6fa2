"""The demo Danish company's expense documents, connected to the Dinero sandbox's demo organisation
through Visma Connect, as a bureau connects its clients."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bookkeeping.models import (
    PaymentMethod,
    PaymentMethodList,
)
from bookkeeping.services.consent import consent_check, consent_complete
from expense_documents.services.common import dinero_integration
from expense_documents.services.csv_import import expense_document_write
from expense_documents.services.dinero_connection import visma_connect_start
from expense_documents.services.dinero_setup import SetupError, dinero_setup
from integrations import tokens
from integrations.base import ConnectorError
from integrations.sandboxes.dinero import DEMO_VISMA_CLIENT_ID, DEMO_VISMA_USER

DEMO_ORGANIZATION = "123456"


def demo_expenses(company) -> dict:
    """A few supplier invoices and receipts for the demo Danish company (idempotent).

    When Kontera's Visma Connect application is the sandbox's demo application, the company is also
    connected to the sandbox's demo organisation through Visma Connect (the demo's Danish staff
    member consents in the sandbox), so ``documents_push`` or the worker sends the documents.
    """
    payment_list, _created = PaymentMethodList.objects.get_or_create(company=company, name="Kvitteringer")
    card, _created = PaymentMethod.objects.get_or_create(payment_list=payment_list, name="Firmakort",
                                                         defaults={"account_number": 55010})
    cash, _created = PaymentMethod.objects.get_or_create(payment_list=payment_list, name="Kontant",
                                                         defaults={"account_number": 55040})
    today = timezone.localdate()
    documents = [
        ("DEMO-INV-1", {"type": "invoice", "supplier": "Kontorland A/S", "supplier_vat": "DK12345678",
                        "date": today - dt.timedelta(days=10), "due_date": today + dt.timedelta(days=20),
                        "description": "Kontorartikler", "currency": "DKK"},
         [{"amount": Decimal("1250.00"), "vat_code": "I25", "category": 7200, "text": "Papir og toner"}]),
        ("DEMO-INV-2", {"type": "invoice", "supplier": "Hetzner Online GmbH", "supplier_vat": "DE812871812",
                        "date": today - dt.timedelta(days=5), "due_date": today + dt.timedelta(days=9),
                        "description": "Webhotel", "currency": "EUR", "amount_dkk": Decimal("113.70")},
         [{"amount": Decimal("15.24"), "vat_code": "IEUY", "category": 7300, "text": "Server, januar"}]),
        ("DEMO-REC-1", {"type": "receipt", "supplier": "Café Norden", "date": today - dt.timedelta(days=3),
                        "description": "Kundemøde", "currency": "DKK", "payment_method": card.pk},
         [{"amount": Decimal("420.00"), "vat_code": "REP", "category": 4140, "text": "Frokost med kunde"}]),
        ("DEMO-REC-2", {"type": "receipt", "supplier": "Q8", "date": today - dt.timedelta(days=1),
                        "description": "Parkering", "currency": "DKK", "payment_method": cash.pk},
         [{"amount": Decimal("60.00"), "vat_code": "", "category": None, "text": "Parkering (ingen kategori)"}]),
    ]
    outcomes: dict[str, int] = {}
    with transaction.atomic():
        for reference, values, lines in documents:
            _document, outcome = expense_document_write(company=company, reference=reference, values=values,
                                                        lines=lines, actor="demo")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    result = {"payment_method_list": payment_list.name, "documents": len(documents), **outcomes}
    if django_settings.VISMA_CONNECT_CLIENT_ID == DEMO_VISMA_CLIENT_ID and dinero_integration(company) is None:
        try:
            _connect_through_visma_connect(company)
            dinero_setup(company=company, api_key=None, organization_id=DEMO_ORGANIZATION, error_account=7480,
                         import_chart=True, invoice_payment_method="63000", receipt_payment_list=payment_list.pk,
                         actor="demo")
            result["dinero"] = _("connected to the sandbox organisation %(org)s through Visma Connect") % {
                "org": DEMO_ORGANIZATION}
        except (SetupError, ConnectorError, tokens.StateError, requests.RequestException, KeyError) as exc:
            result["dinero"] = _("not connected: %(reason)s") % {"reason": getattr(exc, "message", exc)}
    return result


def _connect_through_visma_connect(company) -> None:
    """What the Danish staff member does in the browser, done over HTTP against the sandbox: open the
    authorisation URL, log in to Visma Connect and accept; then the callback's own steps."""
    staff = company.members.filter(is_active=True, is_staff=True).order_by("pk").first()
    if staff is None:
        raise SetupError(_("no staff member serves %(company)s to give the consent.") % {"company": company})
    integration = visma_connect_start(company=company, actor="demo")
    url = tokens.authorisation_url(integration=integration, user=staff)
    page = requests.get(url, timeout=10)
    page.raise_for_status()
    hidden = dict(re.findall(r'<input type=hidden name="([^"]+)" value="([^"]*)"', page.text))
    email, password, _name = DEMO_VISMA_USER
    answer = requests.post(url.split("?")[0], data={**hidden, "email": email, "password": password,
                                                    "decision": "accept"}, allow_redirects=False, timeout=10)
    back = {key: values[0] for key, values in parse_qs(urlsplit(answer.headers.get("Location", "")).query).items()}
    if "code" not in back:
        raise SetupError(_("Visma Connect (sandbox) did not give a code: %(answer)s")
                         % {"answer": back.get("error") or answer.status_code})
    consent = consent_check(state=back.get("state", ""), user=staff, system="dinero")
    consent_complete(consent=consent, code=back["code"], actor="demo")
