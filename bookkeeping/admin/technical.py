"""The task queue's tables are for superusers only.

django-q2's admin lets anyone with its model permissions add a schedule that runs any importable
function with any arguments, and resubmit any task (its ``resubmit_task`` action declares no
permission). Those are doors to running code, so no group holds them and the pages open for
superusers alone, whatever permissions a user was given.
"""

from __future__ import annotations

from django.contrib import admin
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


for model, model_admin in ((Schedule, q_admin.ScheduleAdmin), (Success, q_admin.TaskAdmin),
                           (Failure, q_admin.FailAdmin), (OrmQ, q_admin.QueueAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, type(model_admin.__name__, (SuperuserOnlyMixin, model_admin), {}))
