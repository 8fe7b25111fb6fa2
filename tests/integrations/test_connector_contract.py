"""One battery, every target connector (allauth's OAuth2TestsMixin idea): the interface keeps its promises.

Each connector is exercised through the real flow that uses it, against its sandbox over HTTP.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.utils import timezone

from bookkeeping.models import VoucherState
from bookkeeping.services.sending import vouchers_dispatch
from bookkeeping.services.vouchers import voucher_dto, voucher_queue
from integrations import registry
from integrations.base import AuthError, MasterData
from integrations.models import Integration
from tests.factories import balanced_voucher


def _fortnox_posted(request):
    integration = request.getfixturevalue("connected_fortnox")
    voucher = balanced_voucher(integration.company, rows=((1930, "10.00", "0"), (1510, "0", "10.00")),
                               date=timezone.localdate(), series="A")
    assert voucher_queue(voucher=voucher, actor="test") == []
    vouchers_dispatch(max_seconds=20)
    return integration, voucher


def _dinero_posted(request):
    from tests.dinero_fixtures import expense, sync_and_send

    integration = request.getfixturevalue("connected_dinero")
    document = expense(integration.company, "CONTRACT-1")
    sync_and_send(document)
    return integration, document.voucher


CONNECTORS = {
    "fortnox": (_fortnox_posted, "fortnox_sandbox"),
    "dinero": (_dinero_posted, "dinero_sandbox"),
}


def posted_voucher(request, system):
    make, sandbox_fixture = CONNECTORS[system]
    integration, voucher = make(request)
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.POSTED, voucher.last_error
    return Integration.objects.get(pk=integration.pk), voucher, request.getfixturevalue(sandbox_fixture)


every_target = pytest.mark.parametrize("system", sorted(CONNECTORS))


@every_target
def test_the_registry_names_every_target(request, db, system):
    integration, _voucher, _sandbox = posted_voucher(request, system)
    connector = registry.connector_for(integration)
    assert connector.system == system and connector.is_target


@every_target
def test_check_connection(request, db, system):
    integration, _voucher, _sandbox = posted_voucher(request, system)
    info = registry.connector_for(integration).check_connection()
    assert info.ok


@every_target
def test_master_data_has_profit_and_loss_and_balance_accounts(request, db, system):
    integration, _voucher, _sandbox = posted_voucher(request, system)
    data = registry.connector_for(integration).import_master_data()
    assert isinstance(data, MasterData)
    assert any(a.is_balance for a in data.accounts) and any(not a.is_balance for a in data.accounts)


@every_target
def test_find_voucher_finds_what_was_posted_and_nothing_else(request, db, system):
    integration, voucher, _sandbox = posted_voucher(request, system)
    connector = registry.connector_for(integration)
    dto = voucher_dto(voucher, integration=integration)
    found = connector.find_voucher(dto)
    assert found is not None and found.remote_id == voucher.remote_id
    stranger = dataclasses.replace(dto, reference=f"{dto.reference}-NEVER-POSTED")
    assert connector.find_voucher(stranger) is None


@every_target
def test_refused_credentials_raise_auth_error(request, db, system):
    integration, _voucher, sandbox = posted_voucher(request, system)
    if system == "fortnox":
        sandbox.revoke(1046823, "kontera-test")
        integration.credentials = {**integration.credentials, "expires_at": 0}
    else:
        integration.credentials = {**integration.credentials, "api_key": "not-a-key", "access_token": "",
                                   "token_expires_at": 0}
    integration.save()
    with pytest.raises(AuthError):
        registry.connector_for(Integration.objects.get(pk=integration.pk)).check_connection()
