"""The OAuth round trip with Fortnox: start (Connect button) and callback."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from bookkeeping.selectors.companies import user_can_act_on
from bookkeeping.services.audit import audit_record
from integrations import tokens
from integrations.base import ConnectorError
from integrations.models import Integration
from wording import Msg, MsgN

from .services.reconnection import integration_reconnected


def _integration_page(integration: Integration) -> str:
    return reverse("admin:integrations_integration_change", args=[integration.pk])


@staff_member_required
def fortnox_connect(request, pk: int):
    integration = get_object_or_404(Integration, pk=pk, system="fortnox")
    if not user_can_act_on(request.user, integration.company):
        raise PermissionDenied
    url = tokens.fortnox_authorisation_url(integration=integration, user=request.user)
    audit_record(action="fortnox:authorise_started", integration=integration, actor=request.user,
                 message=Msg("Sent to Fortnox to approve the connection."))
    return redirect(url)


@staff_member_required
def fortnox_callback(request):
    state = request.GET.get("state", "")
    try:
        integration = tokens.consume_state(state=state, user=request.user, user_can_act_on=user_can_act_on)
    except tokens.StateError as exc:
        messages.error(request, Msg("Fortnox connection not made: %(reason)s", reason=exc))
        return redirect("admin:integrations_integration_changelist")
    if request.GET.get("error"):
        reason = request.GET.get("error_description") or request.GET.get("error")
        audit_record(action="fortnox:authorise_refused", outcome="error", integration=integration,
                     actor=request.user, message=reason)
        messages.error(request, Msg("Fortnox did not grant access: %(reason)s", reason=reason))
        return redirect(_integration_page(integration))
    code = request.GET.get("code", "")
    try:
        tokens.fortnox_exchange_code(integration=integration, code=code)
    except ConnectorError as exc:
        audit_record(action="fortnox:authorise_failed", outcome="error", integration=integration,
                     actor=request.user, http_status=exc.http_status, message=exc.message)
        messages.error(request, Msg("Fortnox connection failed: %(reason)s", reason=exc.message))
        return redirect(_integration_page(integration))
    requeued = integration_reconnected(integration=integration, actor=request.user)
    from .tasks import enqueue_master_data_import

    transaction.on_commit(lambda: enqueue_master_data_import(integration.pk, actor=request.user.get_username()))
    messages.success(request, MsgN("Fortnox is connected. The chart of accounts is being imported; %(n)s waiting voucher was queued again.", "Fortnox is connected. The chart of accounts is being imported; %(n)s waiting vouchers were queued again.", requeued, n=requeued))
    return redirect(_integration_page(integration))
