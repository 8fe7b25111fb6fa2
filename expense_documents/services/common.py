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
