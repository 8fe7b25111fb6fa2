"""An integration's settings and credentials in plain words: real form fields per system (no raw JSON),
a summary of settings edited on a flow's own page, and credentials as "access valid 52 more minutes,
refresh token until 16 Jan 2027" — masked, never shown in full."""

from __future__ import annotations

import datetime as dt
import time

from django import forms
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from integrations.crypto import mask_secret

# Per system: {setting name: form field} editable on the integration page, and (label, value) lines
# for settings kept on a flow's own page. Flows register theirs (``register_integration_page``).
SETTINGS_FIELDS: dict[str, object] = {}
SETTINGS_SUMMARIES: dict[str, object] = {}

SECRET_LABELS = {
    "api_key": gettext_lazy("API key"),
    "secret_key": gettext_lazy("Live secret key"),
}


def fortnox_fields(integration) -> dict[str, forms.Field]:
    return {
        "locked_period_policy": forms.ChoiceField(
            label=gettext_lazy("A voucher dated in a locked period"), widget=forms.RadioSelect,
            choices=[("refuse", gettext_lazy("is not sent: the pre-flight check refuses it (the default)")),
                     ("first_open", gettext_lazy("is posted on the first open date; its own date is kept in the "
                                                 "voucher text"))],
            initial="refuse",
            help_text=gettext_lazy("Fortnox refuses vouchers on or before its locked period (Låst period)."),
        ),
    }


SETTINGS_FIELDS["fortnox"] = fortnox_fields


def _moment(timestamp) -> dt.datetime | None:
    try:
        return timezone.localtime(dt.datetime.fromtimestamp(float(timestamp), tz=dt.UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _day(moment: dt.datetime) -> str:
    return formats.date_format(moment, "j M Y")


def credentials_words(credentials: dict, *, now: float | None = None) -> list[str]:
    """Each stored credential masked, with its validity in words."""
    now = time.time() if now is None else now
    lines = []
    if credentials.get("access_token"):
        expires = credentials.get("expires_at")
        masked = mask_secret(credentials["access_token"])
        if expires and float(expires) > now:
            minutes = max(int((float(expires) - now) // 60), 0)
            lines.append(ngettext("Access token %(masked)s: valid %(n)s more minute.",
                                  "Access token %(masked)s: valid %(n)s more minutes.", minutes)
                         % {"masked": masked, "n": minutes})
        elif expires:
            lines.append(_("Access token %(masked)s: expired; a new one is fetched when it is next needed.")
                         % {"masked": masked})
        else:
            lines.append(_("Access token %(masked)s.") % {"masked": masked})
    if credentials.get("refresh_token"):
        until = _moment(credentials.get("refresh_expires_at"))
        masked = mask_secret(credentials["refresh_token"])
        lines.append(_("Refresh token %(masked)s: until %(day)s (renewed with every use).")
                     % {"masked": masked, "day": _day(until)} if until else
                     _("Refresh token %(masked)s.") % {"masked": masked})
    renewed = _moment(credentials.get("refreshed_at"))
    if renewed:
        lines.append(_("Last renewed %(when)s.") % {"when": renewed.strftime("%Y-%m-%d %H:%M")})
    for key, label in SECRET_LABELS.items():
        if credentials.get(key):
            lines.append(_("%(label)s: stored (%(masked)s).") % {"label": label, "masked": mask_secret(credentials[key])})
    if credentials.get("scope"):
        lines.append(_("Permissions: %(scope)s.") % {"scope": credentials["scope"]})
    return lines
