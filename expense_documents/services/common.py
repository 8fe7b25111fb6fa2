"""What every part of the expense-document flow shares: the target, the source name, the Dinero integration."""

from __future__ import annotations

import logging
from decimal import Decimal

from bookkeeping.models import (
    VoucherState,
)
from bookkeeping.services.audit import Actor, actor_parts
from integrations.models import Integration
from wording import Msg

logger = logging.getLogger("kontera.expenses")

SYSTEM = "dinero"
# How the Dinero integration signs in (its settings' "auth"): Visma Connect for a bureau's client
# companies, or the personal integration's API key for a company's own Dinero.
AUTH_VISMA_CONNECT = "visma_connect"
AUTH_API_KEY = "api_key"
SOURCE_SYSTEM = "expenses"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
S = VoucherState
MAX_ATTACHMENT_BYTES = 6_000_000


def dinero_integration(company) -> Integration | None:
    return Integration.objects.filter(company=company, system=SYSTEM).first()


def _user(actor: Actor):
    user, _label = actor_parts(actor)
    return user


def rules_text(problems) -> str:
    return Msg.join("\n", [str(p) for p in problems])


# The wizard's choices after the connection; with these the integration can be finished.
SETUP_CHOICES = ("error_account", "invoice_counter_account", "receipt_payment_list")


class SetupError(Exception):
    def __init__(self, message: str, *, field_name: str = "", link: str = "", identity=None):
        super().__init__(message)
        self.message = message
        self.field_name = field_name
        self.link = link
        self.identity = identity  # an IdentityCheck when the organisation is not the company's
