"""An integration's lifecycle as the back office sees it: authorised, lost, reconnected, paused."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import translation

from integrations.models import Integration, IntegrationStatus
from wording import Msg, english, render, set_text, stored

from ..models import AuditEvent
from .audit import Actor, audit_record

logger = logging.getLogger("kontera.integrations")


def staff_emails(company) -> list[str]:
    """Who hears about a company's connection problems: its staff, else the superusers."""
    return sorted({email for email, _language in _recipients(company)})


def _recipients(company) -> list[tuple[str, str]]:
    users = company.members.filter(is_active=True).exclude(email="")
    if not users.exists():
        users = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return [(email, language or settings.LANGUAGE_CODE)
            for email, language in users.values_list("email", "kontera_preference__language")]


def user_language(user) -> str:
    """The language a staff member last used the admin in (English until they have)."""
    from ..models import StaffPreference

    preference = StaffPreference.objects.filter(user=user).values_list("language", flat=True).first()
    return preference or settings.LANGUAGE_CODE


def in_language(language: str, value) -> str:
    """A ``Msg`` (or plain text) as read in ``language``."""
    with translation.override(language):
        return render(stored(value))


def notify_staff(*, company, subject: str, body: str) -> int:
    """E-mail the company's staff, each in the language they use Kontera in (one message per language)."""
    recipients = _recipients(company)
    if not recipients:
        logger.warning("No staff e-mail for %s; not sent: %s", company, english(subject))
        return 0
    sent = 0
    for language in sorted({language for _email, language in recipients}):
        emails = sorted({email for email, lang in recipients if lang == language})
        sent += send_mail(in_language(language, subject), in_language(language, body),
                          settings.DEFAULT_FROM_EMAIL, emails, fail_silently=True)
    return sent


def integration_set_status(*, integration: Integration, status: str, message: str = "", actor: Actor = None) -> Integration:
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        before = integration.status
        integration.status = status
        fields = set_text(integration, "status_message", message)
        integration.save(update_fields=["status", *fields, "updated_at"])
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
        fields = set_text(integration, "status_message", reason)
        integration.save(update_fields=["status", *fields, "updated_at"])
        audit_record(action="integration:needs_reauthorisation", outcome=AuditEvent.Outcome.ERROR,
                     integration=integration, actor=actor, message=reason)
        company = integration.company
        system = integration.get_system_display()
        transaction.on_commit(lambda: notify_staff(
            company=company,
            subject=Msg("%(system)s needs to be authorised again for %(company)s", system=system, company=company),
            body=Msg("Kontera can no longer reach %(system)s for %(company)s: %(reason)s\n\n"
                "Nothing is lost: vouchers wait and are sent by themselves once you reconnect.\n"
                "Open the integration in the admin and press 'Connect' to authorise again.", system=system, company=company, reason=reason),
        ))
    return True
