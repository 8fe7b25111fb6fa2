"""Issue 8, cause 6: a lost answer to a token refresh.

Fortnox and Visma Connect rotate refresh tokens: the refresh that took effect remotely, whose answer
was lost, spent the stored refresh token, so the next refresh gets invalid_grant. Nothing is posted
twice or lost: the connection is reported as needing re-authorisation, in words that say what to do,
the vouchers wait, and after connecting again they go out once.
"""

from __future__ import annotations

import time

from django.utils import timezone

from bookkeeping.models import Voucher, VoucherState
from bookkeeping.services.reconnection import integration_reconnected
from bookkeeping.services.sending import vouchers_dispatch
from bookkeeping.services.vouchers import voucher_queue
from integrations import tokens
from integrations.models import Integration, IntegrationStatus
from tests.conftest import FORTNOX_CLIENT, FORTNOX_REDIRECT
from tests.dinero_fixtures import DINERO_ORG, expense, sync_and_send, visma_consent
from tests.factories import balanced_voucher


def _expire_access_token(integration):
    integration.credentials = {**integration.credentials, "expires_at": time.time() - 1}
    integration.save()


def _dispatch_again(system, voucher_id):
    Voucher.objects.filter(pk=voucher_id).update(next_attempt_at=timezone.now())
    vouchers_dispatch(system=system, max_seconds=60)
    return Voucher.objects.get(pk=voucher_id)


def test_fortnox_lost_refresh_answer_needs_reauthorisation_then_posts_once(connected_fortnox, fortnox_sandbox):
    integration = connected_fortnox
    _expire_access_token(integration)
    fortnox_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/oauth-v1/token")
    voucher = balanced_voucher(integration.company, rows=((1930, "5.00", "0"), (1510, "0", "5.00")),
                               source_reference="TOK-1", series="A", date=timezone.localdate(), description="TOK-1")
    assert voucher_queue(voucher=voucher, actor="test") == []
    vouchers_dispatch(system="fortnox", max_seconds=60)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.QUEUED  # the refresh got no answer: tried again later
    assert fortnox_sandbox.refresh_count == 1  # but Fortnox did rotate the refresh token

    voucher = _dispatch_again("fortnox", voucher.pk)
    integration.refresh_from_db()
    assert voucher.state == VoucherState.AWAITING_AUTHORISATION
    assert integration.status == IntegrationStatus.NEEDS_REAUTHORISATION
    assert "invalid_grant" in integration.status_message and "Connect Fortnox" in integration.status_message
    assert fortnox_sandbox.vouchers(fortnox_sandbox.tenant_id) == []

    # Staff connect Fortnox again (the OAuth code flow); the waiting voucher goes out, once.
    code = fortnox_sandbox.authorize(FORTNOX_CLIENT[0], fortnox_sandbox.tenant_id, tokens.FORTNOX_SCOPES,
                                     FORTNOX_REDIRECT)
    tokens.fortnox_exchange_code(integration=integration, code=code)
    integration_reconnected(integration=Integration.objects.get(pk=integration.pk), actor="test")
    vouchers_dispatch(system="fortnox", max_seconds=60)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    assert len(fortnox_sandbox.vouchers(fortnox_sandbox.tenant_id)) == 1


def test_visma_connect_lost_refresh_answer_needs_reauthorisation_then_posts_once(visma_dinero, dinero_sandbox):
    integration = visma_dinero
    _expire_access_token(integration)
    dinero_sandbox.faults.inject("drop_after_commit", method="POST", path_contains="/connect/token")
    document = expense(integration.company, "TOK-D1")
    sync_and_send(document)
    voucher = document.voucher
    assert voucher.state == VoucherState.QUEUED  # the refresh got no answer: tried again later

    voucher = _dispatch_again("dinero", voucher.pk)
    integration.refresh_from_db()
    assert voucher.state == VoucherState.AWAITING_AUTHORISATION
    assert integration.status == IntegrationStatus.NEEDS_REAUTHORISATION
    assert "invalid_grant" in integration.status_message and "Connect Dinero" in integration.status_message
    assert dinero_sandbox.organization(DINERO_ORG).purchase_vouchers == {}

    visma_consent(dinero_sandbox, Integration.objects.get(pk=integration.pk))  # staff connect Dinero again
    integration_reconnected(integration=Integration.objects.get(pk=integration.pk), actor="test")
    vouchers_dispatch(system="dinero", max_seconds=60)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    assert len(dinero_sandbox.organization(DINERO_ORG).purchase_vouchers) == 1
