"""The OAuth round trip with Fortnox: start (Connect button), callback, and the page for a connection
held back because the Fortnox company is not the Kontera company (organisation numbers differ)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from bookkeeping.selectors.companies import user_can_act_on
from bookkeeping.services.audit import audit_record
from integrations import tokens
from integrations.base import ConnectorError
from integrations.models import Integration, OAuthState
from wording import Msg, MsgN, render, stored

from .services.connection_identity import (
    OVERRIDE_PERMISSION,
    IdentityCheck,
    identity_check,
    identity_record,
    remote_company,
)
from .services.reconnection import integration_reconnected

NOTE_LIMIT = 1000


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
        messages.error(request, Msg("Fortnox connection not made: %(reason)s", reason=str(exc)))
        return redirect("admin:integrations_integration_changelist")
    if request.GET.get("error"):
        reason = request.GET.get("error_description") or request.GET.get("error")
        audit_record(action="fortnox:authorise_refused", outcome="error", integration=integration,
                     actor=request.user, message=reason)
        messages.error(request, Msg("Fortnox did not grant access: %(reason)s", reason=reason))
        return redirect(_integration_page(integration))
    code = request.GET.get("code", "")
    try:
        credentials = tokens.fortnox_exchange_code(integration=integration, code=code, store=False)
        info = remote_company(integration=integration, credentials=credentials)
    except ConnectorError as exc:
        audit_record(action="fortnox:authorise_failed", outcome="error", integration=integration,
                     actor=request.user, http_status=exc.http_status, message=exc.message)
        messages.error(request, Msg("Fortnox connection failed: %(reason)s", reason=exc.message))
        return redirect(_integration_page(integration))
    check = identity_check(company=integration.company, system="fortnox", remote_name=info.company_name,
                           remote_number=info.organisation_number)
    if check.refused:
        held = OAuthState.objects.get(state=state)
        held.pending_credentials = credentials
        held.remote_company = {**check.as_dict(), "message": stored(check.message)}
        held.save(update_fields=["pending_credentials", "remote_company"])
        audit_record(action="fortnox:wrong_company", outcome="error", integration=integration, actor=request.user,
                     message=check.message, data=check.as_dict())
        return redirect("integrations:fortnox_held", pk=held.pk)
    _connected(request, integration, credentials, check)
    return redirect(_integration_page(integration))


def _connected(request, integration: Integration, credentials: dict, check: IdentityCheck, note: str = "") -> None:
    tokens.fortnox_store_credentials(integration=integration, credentials=credentials)
    identity_record(integration=integration, check=check, actor=request.user, note=note)
    requeued = integration_reconnected(integration=integration, actor=request.user)
    from .tasks import enqueue_master_data_import

    transaction.on_commit(lambda: enqueue_master_data_import(integration.pk, actor=request.user.get_username()))
    if check.ok is None and not note:
        messages.warning(request, check.message)
    messages.success(request, MsgN(
        "Fortnox is connected. The chart of accounts is being imported; %(n)s waiting voucher was queued again.",
        "Fortnox is connected. The chart of accounts is being imported; %(n)s waiting vouchers were queued again.",
        requeued))


@staff_member_required
def fortnox_held(request, pk: int):
    """A Fortnox connection held back: both companies side by side; cancel, or connect anyway with a note."""
    held = OAuthState.objects.select_related("integration__company").filter(pk=pk).first()
    if held is None or not held.pending_credentials:
        raise Http404(_("This connection is no longer waiting: connect Fortnox again from the integration."))
    integration = held.integration
    if held.user_id != request.user.pk or not user_can_act_on(request.user, integration.company):
        raise PermissionDenied
    expired = held.used_at is None or timezone.now() - held.used_at > tokens.STATE_TTL
    may_override = request.user.has_perm(OVERRIDE_PERMISSION)
    note_error = ""
    if request.method == "POST" or expired:
        if expired or request.POST.get("decision") == "cancel":
            _forget(held)
            audit_record(action="fortnox:wrong_company", integration=integration, actor=request.user,
                         message=Msg("The held-back Fortnox connection was cancelled; nothing was changed."))
            (messages.warning if expired else messages.info)(request, Msg(
                "The Fortnox connection was not made. Connect Fortnox again and choose %(company)s's Fortnox "
                "company on the consent page.", company=integration.company.name))
            return redirect(_integration_page(integration))
        if request.POST.get("decision") == "connect":
            if not may_override:
                raise PermissionDenied
            note = request.POST.get("note", "").strip()[:NOTE_LIMIT]
            if note:
                check = identity_check(company=integration.company, system="fortnox",
                                       remote_name=held.remote_company.get("name", ""),
                                       remote_number=held.remote_company.get("organisation_number", ""))
                credentials = held.pending_credentials
                _forget(held)
                _connected(request, integration, credentials, check, note=note)
                return redirect(_integration_page(integration))
            note_error = _("Write why this is the right company: the note goes into the audit trail.")
    context = {
        **admin.site.each_context(request),
        "title": _("Which Fortnox company?"),
        "integration": integration,
        "company": integration.company,
        "remote": held.remote_company,
        "message": render(held.remote_company.get("message", "")),
        "may_override": may_override,
        "note_error": note_error,
    }
    return TemplateResponse(request, "admin/integrations/held_connection.html", context)


def _forget(held: OAuthState) -> None:
    held.pending_credentials = {}
    held.save(update_fields=["pending_credentials"])
