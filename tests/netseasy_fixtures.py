"""Fixtures for the Nets Easy → Fortnox flow: the Nets sandbox over real HTTP, a web shop's sales, settings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

NETS_KEY = "live-secret-key-0123456789abcdef0123456789abcdef"
OTHER_NETS_KEY = "live-secret-key-fedcba9876543210fedcba9876543210"
FORTNOX_TENANT = 1046823

__all__ = ["nets_sandbox", "nets_saved", "nets_active"]  # the fixtures conftest.py takes; helpers are imported


def nets_values(**overrides) -> dict:
    """The guide's fields plus the implicit ones, BAS defaults."""
    values = {
        "start_date": (timezone.localdate() - dt.timedelta(days=30)).isoformat(),
        "sales_account_se": 3001, "sales_account_eu": 3106, "sales_account_world": 3105,
        "receivable_account": 1580, "bank_account": 1930, "fee_account": 6040,
        "vat_accounts": {"25": 2611, "12": 2621, "6": 2631},
        "sales_series": "A", "payout_series": "A", "mode": "per_sale",
    }
    values.update(overrides)
    return values


def days_ago(n: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=n)


def sell(sandbox, *, day: dt.date, country: str = "SWE", lines=((10000, 2500, 1),), company: bool = False,
         reference: str = "ORDER-1", key: str = NETS_KEY, currency: str = "SEK") -> tuple[str, str]:
    """A completed card sale: (payment id, charge id). ``lines`` are (unit price öre excl. VAT, taxRate, qty)."""
    specs = [{"reference": f"SKU-{i}", "name": f"Vara {i}", "unitPrice": price, "taxRate": rate, "quantity": qty}
             for i, (price, rate, qty) in enumerate(lines, start=1)]
    payment_id = sandbox.create_payment(key, amount_items=specs, country=country, reference=reference,
                                        company=company, created=day, currency=currency)
    return payment_id, sandbox.charge(payment_id, at=day)


def remote_balance(fortnox_sandbox, account: int, tenant: int = FORTNOX_TENANT) -> Decimal:
    """Σ debit − credit on ``account`` over every voucher that landed in the Fortnox sandbox."""
    total = Decimal("0.00")
    for voucher in fortnox_sandbox.vouchers(tenant):
        for row in voucher.rows:
            if row.account == account and not row.removed:
                total += Decimal(row.debit) - Decimal(row.credit)
    return total


@pytest.fixture
def nets_sandbox(sandbox_server, settings, sandbox_clock, virtual_time):
    """A fresh Nets Easy sandbox with the web shop's merchant; Kontera's settings point at it."""
    from integrations.sandboxes.netseasy import NetsEasySandbox

    sandbox = NetsEasySandbox()
    sandbox.clock = sandbox_clock
    sandbox.add_merchant(NETS_KEY, "Webbshop AB")
    sandbox_server.board.apps["/netseasy"] = sandbox
    settings.NETS_EASY_API_URL = f"{sandbox_server.url}/netseasy"
    settings.KONTERA_HTTP_TIMEOUT = (2.0, 3.0)
    yield sandbox
    sandbox_server.board.apps.pop("/netseasy", None)


@pytest.fixture
def nets_saved(connected_fortnox, nets_sandbox, staff_user, django_capture_on_commit_callbacks):
    """Settings saved by a staff member: awaiting confirmation, the test voucher posted and e-mailed."""
    from card_payments.services.activation import netseasy_settings_save

    company = connected_fortnox.company
    company.members.add(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        saved = netseasy_settings_save(company=company, values=nets_values(), secret_key=NETS_KEY, actor=staff_user)
    saved.integration.refresh_from_db()
    return saved.integration


@pytest.fixture
def nets_active(nets_saved, django_capture_on_commit_callbacks):
    """Confirmed with OK: automatic booking is on."""
    from card_payments.services.activation import netseasy_confirm

    with django_capture_on_commit_callbacks(execute=True):
        ok, message = netseasy_confirm(integration=nets_saved, actor="test")
    assert ok, message
    nets_saved.refresh_from_db()
    return nets_saved


def sync_and_post(integration, **kwargs):
    """One sync, then the dispatcher (on_commit does not fire inside a test transaction)."""
    from bookkeeping.services.sending import vouchers_dispatch
    from card_payments.services.sync import payouts_sync

    result = payouts_sync(integration=integration, actor="test", **kwargs)
    vouchers_dispatch(max_seconds=60)
    return result
