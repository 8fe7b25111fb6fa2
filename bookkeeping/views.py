"""The OAuth round trip with the targets that use it (Fortnox; Dinero through Visma Connect): the
Connect button and the callback, one pair of views for both — and the page for a consent held back
because it reaches another company than the Kontera company (organisation numbers differ)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from bookkeeping.permissions import require_permission
from bookkeeping.selectors.companies import CONNECT_PERMISSION
from bookkeeping.services.audit import audit_record
from integrations import tokens
from integrations.base import ConnectorError
from integrations.models import Integration, OAuthState
from wording import Msg, MsgN, render, stored

from .services.connection_identity import OVERRIDE_PERMISSION, identity_check, identity_record, remote_company
from .services.consent import consent_check, consent_complete
from .services.reconnection import integration_reconnected

# Systems whose consent tells which company it reaches (Fortnox: its company information): checked against
# the company's organisation number before the tokens are kept. Dinero through Visma Connect is checked
# when staff choose the organisation (expense_documents.services.dinero_connection).
IDENTITY_AT_CONSENT = {"fortnox"}
NOTE_LIMIT = 1000

# What happens once a consent is in, for a system whose flow needs more than "reconnected" (Dinero:
# choose the organisation). ``hook(request, integration) -> HttpResponse``; flows register in their
# admin module, so the core knows no flow.
AFTER_CONSENT: dict[str, Callable[..., HttpResponse]] = {}


def register_after_consent(system: str, hook: Callable[..., HttpResponse]) -> None:
    AFTER_CONSENT[system] = hook


def integration_page(integration: Integration) -> str:
    return reverse("admin:integrations_integration_change", args=[integration.pk])


@staff_member_required
def connect(request, pk: int, system: str):
    integration = get_object_or_404(Integration, pk=pk, system=system)
    require_permission(request.user, CONNECT_PERMISSION, company=integration.company)
    try:
        url = tokens.authorisation_url(integration=integration, user=request.user)
    except tokens.NotConfigured as exc:
        messages.error(request, str(exc))
        return redirect(integration_page(integration))
    audit_record(action=f"{system}:authorise_started", integration=integration, actor=request.user,
                 message=Msg("Sent to %(system)s to approve the connection.", system=integration.get_system_display()))
    return redirect(url)


@staff_member_required
def callback(request, system: str):
    # The company is known only from the state; the permission is checked before the state is read
    # (and the company's membership with it, by consent_check).
    require_permission(request.user, CONNECT_PERMISSION)
    label = dict(Integration._meta.get_field("system").choices).get(system, system)
    try:
        consent = consent_check(state=request.GET.get("state", ""), user=request.user, system=system)
    except tokens.StateError as exc:
        messages.error(request, Msg("%(system)s connection not made: %(reason)s", system=label, reason=exc.args[0]))
        return redirect("admin:integrations_integration_changelist")
    integration = consent.integration
    if request.GET.get("error"):
        reason = request.GET.get("error_description") or request.GET.get("error")
        audit_record(action=f"{system}:authorise_refused", outcome="error", integration=integration,
                     actor=request.user, message=reason)
        messages.error(request, Msg("%(system)s did not grant access: %(reason)s", system=label, reason=reason))
        return redirect(integration_page(integration))
    if system in IDENTITY_AT_CONSENT:
        # Which company do the new tokens reach? They replace the stored ones only if it is this one.
        try:
            credentials = consent_complete(consent=consent, code=request.GET.get("code", ""), actor=request.user,
                                           store=False)
            info = remote_company(integration=integration, credentials=credentials)
        except ConnectorError as exc:
            messages.error(request, Msg("%(system)s connection failed: %(reason)s", system=label, reason=exc.message))
            return redirect(integration_page(integration))
        check = identity_check(company=integration.company, system=system, remote_name=info.company_name,
                               remote_number=info.organisation_number)
        if check.refused:
            held = OAuthState.objects.get(state=request.GET.get("state", ""))
            held.pending_credentials = credentials
            held.remote_company = {**check.as_dict(), "message": stored(check.message)}
            held.save(update_fields=["pending_credentials", "remote_company"])
            audit_record(action=f"{system}:wrong_company", outcome="error", integration=integration,
                         actor=request.user, message=check.message, data=check.as_dict())
            return redirect("integrations:fortnox_held", pk=held.pk)
        tokens.store_credentials(integration=integration, credentials=credentials)
        identity_record(integration=integration, check=check, actor=request.user)
        if check.ok is None:
            messages.warning(request, check.message)
    else:
        try:
            consent_complete(consent=consent, code=request.GET.get("code", ""), actor=request.user)
        except ConnectorError as exc:
            messages.error(request, Msg("%(system)s connection failed: %(reason)s", system=label, reason=exc.message))
            return redirect(integration_page(integration))
    hook = AFTER_CONSENT.get(system)
    if hook is not None:
        return hook(request, integration)
    _reconnected(request, integration, label)
    return redirect(integration_page(integration))


def _reconnected(request, integration: Integration, label) -> None:
    requeued = integration_reconnected(integration=integration, actor=request.user)
    from .tasks import enqueue_master_data_import

    transaction.on_commit(lambda: enqueue_master_data_import(integration.pk, actor=request.user.get_username()))
    messages.success(request, MsgN(
        "%(system)s is connected. The chart of accounts is being imported; %(n)s waiting voucher was queued again.",
        "%(system)s is connected. The chart of accounts is being imported; %(n)s waiting vouchers were queued again.",
        requeued, system=label))


@staff_member_required
def held_connection(request, pk: int):
    """A consent held back: both companies side by side; cancel, or connect anyway with a note."""
    require_permission(request.user, CONNECT_PERMISSION)  # before anything is looked up
    held = OAuthState.objects.select_related("integration__company").filter(pk=pk).first()
    if held is None or not held.pending_credentials:
        raise Http404(_("This connection is no longer waiting: connect again from the integration."))
    integration = held.integration
    require_permission(request.user, CONNECT_PERMISSION, company=integration.company)
    if held.user_id != request.user.pk:
        raise PermissionDenied(_("Only the staff member who gave this consent can decide about it."))
    label = integration.get_system_display()
    expired = held.used_at is None or timezone.now() - held.used_at > tokens.STATE_TTL
    may_override = request.user.has_perm(OVERRIDE_PERMISSION)
    note_error = ""
    if request.method == "POST" or expired:
        if expired or request.POST.get("decision") == "cancel":
            _forget(held)
            audit_record(action=f"{integration.system}:wrong_company", integration=integration, actor=request.user,
                         message=Msg("The held-back %(system)s connection was cancelled; nothing was changed.",
                                     system=label))
            (messages.warning if expired else messages.info)(request, Msg(
                "The %(system)s connection was not made. Connect again and choose %(company)s's company on the "
                "consent page.", system=label, company=integration.company.name))
            return redirect(integration_page(integration))
        if request.POST.get("decision") == "connect":
            if not may_override:
                require_permission(request.user, OVERRIDE_PERMISSION)
            note = request.POST.get("note", "").strip()[:NOTE_LIMIT]
            if note:
                check = identity_check(company=integration.company, system=integration.system,
                                       remote_name=held.remote_company.get("name", ""),
                                       remote_number=held.remote_company.get("organisation_number", ""))
                credentials = held.pending_credentials
                _forget(held)
                tokens.store_credentials(integration=integration, credentials=credentials)
                identity_record(integration=integration, check=check, actor=request.user, note=note)
                _reconnected(request, integration, label)
                return redirect(integration_page(integration))
            note_error = _("Write why this is the right company: the note goes into the audit trail.")
    context = {
        **admin.site.each_context(request),
        "title": Msg("Which %(system)s company?", system=label),
        "integration": integration,
        "company": integration.company,
        "system_label": label,
        "remote": held.remote_company,
        "message": render(held.remote_company.get("message", "")),
        "may_override": may_override,
        "note_error": note_error,
    }
    return TemplateResponse(request, "admin/integrations/held_connection.html", context)


def _forget(held: OAuthState) -> None:
    held.pending_credentials = {}
    held.save(update_fields=["pending_credentials"])
