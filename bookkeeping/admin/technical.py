"""The technical tables (task queue, OAuth states, rate-limit slots, login records …) are for superusers
only: staff see bookkeeping, not machinery. django-q2's and django-axes' own admins are wrapped so their
tables follow the same rule.

django-q2's admin would otherwise let anyone with its model permissions add a schedule that runs any
importable function with any arguments, and resubmit any task (its ``resubmit_task`` action declares
no permission): doors to running code. django-axes' records hold user names, addresses and what was
posted; unlocking an account is deleting its access attempt there.
"""

from __future__ import annotations

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_noop
from django_q import models as q_models

# django-axes ships no Swedish or Danish: its names are translated in our catalog (listed here so that
# makemessages keeps them).
AXES_NAMES = [gettext_noop(name) for name in (
    "access attempt", "access attempts", "Access Attempt", "access attempt expiration",
    "access attempt expirations", "access failure", "access failures", "access log", "access logs")]


class SuperusersOnly:
    """Hidden from the home page, the menu and direct addresses for everyone but superusers."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser and super().has_change_permission(request, obj)

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser and super().has_add_permission(request, *args)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # Their actions declare no permission: offered to superusers only.
        return super().get_actions(request) if request.user.is_superuser else {}


def superusers_only(model) -> None:
    """Re-register ``model``'s admin (whoever registered it) behind ``SuperusersOnly``."""
    if not admin.site.is_registered(model):
        return
    current = type(admin.site._registry[model])
    admin.site.unregister(model)
    admin.site.register(model, type(f"SuperusersOnly{current.__name__}", (SuperusersOnly, current), {}))


class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    @admin.action(description=axes_admin.AccessAttemptAdmin.cleanup_expired_attempts.short_description)
    def cleanup_expired_attempts(self, request, queryset):
        # django-axes reads the attempt time its login middleware sets; an admin request has none.
        request.axes_attempt_time = timezone.now()
        return super().cleanup_expired_attempts(request, queryset)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, AccessAttemptAdmin)

for model in (q_models.Success, q_models.Failure, q_models.Schedule, q_models.OrmQ,
              AccessAttempt, AccessLog, AccessFailureLog):
    superusers_only(model)
