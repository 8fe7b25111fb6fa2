"""'Vill du felanmäla något?': a problem report with diagnostics (never a secret), e-mailed to support."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import django
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db.models import Count
from django.utils import timezone

from bookkeeping.models import AccountPlan, AuditEvent, Voucher
from bookkeeping.services.audit import audit_record
from integrations.http import redact
from integrations.models import Integration
from wording import Msg

from ..models import NetsPayout, ProblemReport
from .activation import _activation
from .settings import SOURCE, TARGET, nets_accounts


def _kontera_version() -> str:
    head = Path(django_settings.BASE_DIR) / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (head.parent / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return "unknown"


def _secrets_to_hide(company) -> list[str]:
    values = []
    for integration in Integration.objects.filter(company=company):
        for key, value in (integration.credentials or {}).items():
            if isinstance(value, str) and len(value) >= 8 and not key.endswith("_at") and key not in (
                    "token_type", "scope"):
                values.append(value)
    for name in ("SECRET_KEY", "FORTNOX_CLIENT_SECRET", "DINERO_CLIENT_SECRET", "EMAIL_HOST_PASSWORD"):
        value = getattr(django_settings, name, "")
        if isinstance(value, str) and len(value) >= 6:
            values.append(value)
    values += [k for k in getattr(django_settings, "KONTERA_ENCRYPTION_KEYS", []) if k and len(k) >= 6]
    return sorted(set(values), key=len, reverse=True)


def diagnostics_collect(*, integration: Integration) -> dict:
    """What support needs to help: states, recent errors, versions. Never a secret (scrubbed twice)."""
    company = integration.company
    fortnox = Integration.objects.filter(company=company, system=TARGET).first()
    plan = AccountPlan.objects.filter(company=company, system=TARGET).first()
    settings_shown = {k: v for k, v in (integration.settings or {}).items() if k != "activation"}
    settings_shown["accounts"] = nets_accounts(company)  # the mapping rows the settings page edits
    activation = _activation(integration)
    vouchers = Voucher.objects.filter(company=company, source_system=SOURCE)
    data = {
        "generated_at": timezone.now().isoformat(),
        "versions": {"kontera": _kontera_version(), "django": django.get_version(),
                     "python": platform.python_version()},
        "company": {"id": company.pk, "slug": company.slug, "name": company.name},
        "integration": {
            "id": integration.pk, "system": integration.system, "status": integration.status,
            "status_message": integration.status_message, "settings": settings_shown,
            "secret_key_stored": bool((integration.credentials or {}).get("secret_key")),
            "last_success_at": integration.last_success_at.isoformat() if integration.last_success_at else None,
            "activation": {k: activation.get(k) for k in ("test_voucher_id", "requested_at", "key_check",
                                                            "confirmed_by", "confirmed_at")},
        },
        "fortnox": {
            "status": fortnox.status if fortnox else None,
            "status_message": fortnox.status_message if fortnox else None,
            "chart_imported_at": plan.imported_at.isoformat() if plan and plan.imported_at else None,
            "accounts": plan.accounts.count() if plan else 0,
        },
        "vouchers": {
            "by_state": dict(vouchers.values_list("state").annotate(n=Count("id")).values_list("state", "n")),
            "recent_problems": [
                {"id": v.pk, "reference": v.source_reference, "state": v.state, "date": v.date.isoformat(),
                 "last_error": v.last_error[:500]}
                for v in vouchers.exclude(last_error="").order_by("-updated_at")[:10]],
        },
        "payouts": {
            "by_state": dict(NetsPayout.objects.filter(integration=integration).values_list("state")
                             .annotate(n=Count("id")).values_list("state", "n")),
            "recent": [
                {"id": p.pk, "date": p.date.isoformat(), "currency": p.currency, "amount": str(p.amount),
                 "state": p.state, "residual": str(p.residual) if p.residual is not None else None,
                 "message": p.state_message[:300]}
                for p in NetsPayout.objects.filter(integration=integration).order_by("-date", "-id")[:10]],
        },
        "recent_errors": [
            {"at": e.created_at.isoformat(), "action": e.action, "http_status": e.http_status,
             "message": e.message[:500]}
            for e in AuditEvent.objects.filter(company=company, outcome=AuditEvent.Outcome.ERROR)[:20]],
    }
    return scrub(data, _secrets_to_hide(company))


def scrub(data, secrets: list[str]):
    """Every text in ``data`` without the given secret values and without anything secret-shaped."""
    if isinstance(data, dict):
        return {str(key): scrub(value, secrets) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [scrub(value, secrets) for value in data]
    if isinstance(data, str):
        for secret in secrets:
            data = data.replace(secret, "[redacted]")
        return redact(data)
    if data is None or isinstance(data, bool | int | float):
        return data
    return scrub(str(data), secrets)


def problem_report_create(*, integration: Integration, text: str, user=None) -> ProblemReport:
    """Store the report with its diagnostics and e-mail it to support."""
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": [Msg("Describe the problem in a few words.")]})
    diagnostics = diagnostics_collect(integration=integration)
    secrets = _secrets_to_hide(integration.company)
    clean_text = scrub({"t": text}, secrets)["t"]
    report = ProblemReport.objects.create(integration=integration, company=integration.company, user=user,
                                          text=clean_text, diagnostics=diagnostics)
    who = f"{user.get_username()} <{user.email}>" if user else "system"
    body = scrub({"b": Msg("Problem report #%(id)s from %(who)s for %(company)s (%(system)s):\n\n%(text)s\n\n"
                         "Diagnostics (no secrets):\n%(diagnostics)s\n", id=report.pk, who=who, company=integration.company, system=integration.get_system_display(), text=clean_text, diagnostics=json.dumps(diagnostics, indent=2, ensure_ascii=False))}, secrets)["b"]
    support = django_settings.KONTERA_SUPPORT_EMAIL
    message = EmailMessage(
        subject=Msg("Problem report: %(company)s – %(system)s", company=integration.company, system=integration.get_system_display()),
        body=body, from_email=django_settings.DEFAULT_FROM_EMAIL, to=[support],
        reply_to=[user.email] if user and user.email else None)
    sent = message.send(fail_silently=True)
    if sent:
        ProblemReport.objects.filter(pk=report.pk).update(emailed_to=support)
        report.emailed_to = support
    audit_record(action="netseasy:problem_report", integration=integration, actor=user,
                 message=Msg("Problem report #%(id)s stored%(mailed)s.", id=report.pk, mailed=Msg(" and e-mailed to support") if sent else ""))
    return report
