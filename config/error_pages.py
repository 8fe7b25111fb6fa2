"""The pages staff see when something is refused, missing or broken: in the admin's look, in their
language, saying why and where to go back to — never a traceback or a setting (DEBUG stays off,
also under `manage.py run`)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

logger = logging.getLogger("kontera.errors")


def _back(request) -> str:
    """Where "back" goes: the page the user came from (on this site, not this one), else the admin's home."""
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()},
                                                   require_https=request.is_secure()):
        if urlsplit(referer).path != request.path:
            return referer
    return reverse("admin:index")


def _context(request, **extra) -> dict:
    try:
        context = admin.site.each_context(request)
    except Exception:  # the page must render even when the database is the problem
        logger.exception("The admin context for an error page could not be built")
        context = {}
    return {**context, "back_url": _back(request), **extra}


def permission_denied(request, exception=None):
    reason = str(exception or "") or _("Your account may not open this page.")
    context = _context(request, title=_("Not allowed"), reason=reason)
    return TemplateResponse(request, "kontera/403.html", context, status=403).render()


def page_not_found(request, exception=None):
    context = _context(request, title=_("Page not found"))
    return TemplateResponse(request, "kontera/404.html", context, status=404).render()


def server_error(request):
    # No database, no admin context: whatever broke may break those too.
    return TemplateResponse(request, "kontera/500.html", {"back_url": reverse("admin:index")}, status=500).render()


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a login while locked out (AXES_LOCKOUT_CALLABLE)."""
    from django.conf import settings

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = _context(request, title=_("Too many failed logins"), cooloff_minutes=minutes)
    return TemplateResponse(request, "admin/locked_out.html", context, status=429).render()
