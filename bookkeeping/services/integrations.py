"""An integration's lifecycle as the back office sees it: authorised, lost, reconnected, paused."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils.translation import gettext as _

from integrations.models import Integration, IntegrationStatus

from ..models import AuditEvent
from .audit import Actor, audit_record

logger = logging.getLogger("kontera.integrations")


def staff_emails(company) -> list[str]:
    """Who hears about a company's connection problems: its staff, else the superusers."""
    emails = [e for e in company.members.filter(is_active=True).values_list("email", flat=True) if e]
    if not emails:
        emails = [e for e in get_user_model().objects.filter(is_superuser=True, is_active=True)
                  .values_list("email", flat=True) if e]
    return sorted(set(emails))


def notify_staff(*, company, subject: str, body: str) -> int:
    recipients = staff_emails(company)
    if not recipients:
        logger.warning("No staff e-mail for %s; not sent: %s", company, subject)
        return 0
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True)


def integration_set_status(*, integration: Integration, status: str, message: str = "", actor: Actor = None) -> Integration:
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        before = integration.status
        integration.status = status
        integration.status_message = message
        integration.save(update_fields=["status", "status_message", "updated_at"])
        audit_record(action=f"integration:{before}->{status}", integration=integration, actor=actor,
                     message=message or IntegrationStatus(status).label)
    return integration


def integration_needs_reauthorisation(*, integration: Integration, reason: str, actor: Actor = "worker") -> bool:
    """The target refused our authorisation: tell staff once; vouchers wait, nothing is lost."""
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        if integration.status == IntegrationStatus.NEEDS_REAUTHORISATION:
            return False
        integration.status = IntegrationStatus.NEEDS_REAUTHORISATION
        integration.status_message = reason
        integration.save(update_fields=["status", "status_message", "updated_at"])
        audit_record(action="integration:needs_reauthorisation", outcome=AuditEvent.Outcome.ERROR,
                     integration=integration, actor=actor, message=reason)
        company = integration.company
        system = integration.get_system_display()
        transaction.on_commit(lambda: notify_staff(
            company=company,
            subject=_("%(system)s needs to be authorised again for %(company)s") % {"system": system,
                                                                                    "company": company},
            body=_(
                "Kontera can no longer reach %(system)s for %(company)s: %(reason)s\n\n"
                "Nothing is lost: vouchers wait and are sent by themselves once you reconnect.\n"
                "Open the integration in the admin and press 'Connect' to authorise again."
            ) % {"system": system, "company": company, "reason": reason},
        ))
    return True
