"""The OAuth round trip with the targets that use it (Fortnox; Dinero through Visma Connect): the
Connect button and the callback, one pair of views for both."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from bookkeeping.selectors.companies import user_can_connect
from bookkeeping.services.audit import audit_record
from integrations import tokens
from integrations.base import ConnectorError
from integrations.models import Integration

from .services.consent import consent_check, consent_complete
from .services.reconnection import integration_reconnected

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
    if not user_can_connect(request.user, integration.company):
        raise PermissionDenied
    try:
        url = tokens.authorisation_url(integration=integration, user=request.user)
    except tokens.NotConfigured as exc:
        messages.error(request, str(exc))
        return redirect(integration_page(integration))
    audit_record(action=f"{system}:authorise_started", integration=integration, actor=request.user,
                 message=_("Sent to %(system)s to approve the connection.")
                 % {"system": integration.get_system_display()})
    return redirect(url)


@staff_member_required
def callback(request, system: str):
    label = dict(Integration._meta.get_field("system").choices).get(system, system)
    try:
        consent = consent_check(state=request.GET.get("state", ""), user=request.user, system=system)
    except tokens.StateError as exc:
        messages.error(request, _("%(system)s connection not made: %(reason)s") % {"system": label, "reason": exc})
        return redirect("admin:integrations_integration_changelist")
    integration = consent.integration
    if request.GET.get("error"):
        reason = request.GET.get("error_description") or request.GET.get("error")
        audit_record(action=f"{system}:authorise_refused", outcome="error", integration=integration,
                     actor=request.user, message=reason)
        messages.error(request, _("%(system)s did not grant access: %(reason)s") % {"system": label, "reason": reason})
        return redirect(integration_page(integration))
    try:
        consent_complete(consent=consent, code=request.GET.get("code", ""), actor=request.user)
    except ConnectorError as exc:
        messages.error(request, _("%(system)s connection failed: %(reason)s") % {"system": label, "reason": exc.message})
        return redirect(integration_page(integration))
    hook = AFTER_CONSENT.get(system)
    if hook is not None:
        return hook(request, integration)
    requeued = integration_reconnected(integration=integration, actor=request.user)
    from .tasks import enqueue_master_data_import

    transaction.on_commit(lambda: enqueue_master_data_import(integration.pk, actor=request.user.get_username()))
    messages.success(request, ngettext(
        "%(system)s is connected. The chart of accounts is being imported; %(n)s waiting voucher was queued again.",
        "%(system)s is connected. The chart of accounts is being imported; %(n)s waiting vouchers were queued again.",
        requeued) % {"system": label, "n": requeued})
    return redirect(integration_page(integration))
