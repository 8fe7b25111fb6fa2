"""Remember the language each staff member uses the admin in (for what the worker e-mails them)."""

from __future__ import annotations

from django.utils import translation

SESSION_KEY = "kontera:language"


class RememberLanguage:
    """After ``LocaleMiddleware``: one write when a signed-in staff member's language changes, never per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        language = (getattr(request, "LANGUAGE_CODE", "") or translation.get_language() or "").split("-")[0]
        if user is not None and user.is_authenticated and user.is_staff and language \
                and hasattr(request, "session") and request.session.get(SESSION_KEY) != language:
            from .models import StaffPreference

            StaffPreference.objects.update_or_create(user=user, defaults={"language": language})
            request.session[SESSION_KEY] = language
        return response
