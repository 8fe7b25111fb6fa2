"""The demo Danish company's expense documents, connected to the Dinero sandbox's demo organisation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bookkeeping.models import (
    PaymentMethod,
    PaymentMethodList,
)
from expense_documents.services.common import dinero_integration
from expense_documents.services.csv_import import expense_document_write
from expense_documents.services.dinero_setup import SetupError, dinero_setup
from integrations.base import ConnectorError

DEMO_CLIENT_ID = "kontera-demo"
DEMO_ORGANIZATION = ("123456", "demo-dinero-api-key")


def demo_expenses(company) -> dict:
    """A few supplier invoices and receipts for the demo Danish company (idempotent).

    When Kontera points at the local sandbox (its demo client id), the company is also connected to
    the sandbox's demo organisation, so ``documents_push`` or the worker sends the documents.
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
    if django_settings.DINERO_CLIENT_ID == DEMO_CLIENT_ID and dinero_integration(company) is None:
        organization_id, api_key = DEMO_ORGANIZATION
        try:
            dinero_setup(company=company, api_key=api_key, organization_id=organization_id, error_account=7480,
                         import_chart=True, invoice_payment_method="63000", receipt_payment_list=payment_list.pk,
                         actor="demo")
            result["dinero"] = _("connected to the sandbox organisation %(org)s") % {"org": organization_id}
        except (SetupError, ConnectorError) as exc:
            result["dinero"] = _("not connected: %(reason)s") % {"reason": getattr(exc, "message", exc)}
    return result
