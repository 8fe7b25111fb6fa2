"""The task queue's tables and the login records are for superusers only.

django-q2's admin lets anyone with its model permissions add a schedule that runs any importable
function with any arguments, and resubmit any task (its ``resubmit_task`` action declares no
permission). Those are doors to running code, so no group holds them and the pages open for
superusers alone, whatever permissions a user was given. django-axes' records of logins (user
names, addresses, what was posted) are for superusers too; unlocking an account is deleting its
access attempt there.
"""

from __future__ import annotations

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.utils import timezone
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success


class SuperuserOnlyMixin:
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # Their actions declare no permission: offered to superusers only.
        return super().get_actions(request) if request.user.is_superuser else {}


class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    @admin.action(description=axes_admin.AccessAttemptAdmin.cleanup_expired_attempts.short_description)
    def cleanup_expired_attempts(self, request, queryset):
        # django-axes reads the attempt time its login middleware sets; an admin request has none.
        request.axes_attempt_time = timezone.now()
        return super().cleanup_expired_attempts(request, queryset)


for model, model_admin in ((Schedule, q_admin.ScheduleAdmin), (Success, q_admin.TaskAdmin),
                           (Failure, q_admin.FailAdmin), (OrmQ, q_admin.QueueAdmin),
                           (AccessAttempt, AccessAttemptAdmin), (AccessLog, axes_admin.AccessLogAdmin),
                           (AccessFailureLog, axes_admin.AccessFailureLogAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, type(model_admin.__name__, (SuperuserOnlyMixin, model_admin), {}))
