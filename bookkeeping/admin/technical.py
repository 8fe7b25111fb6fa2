"""The technical tables (task queue, OAuth states, rate-limit slots …) are for superusers only: staff see
bookkeeping, not machinery. django-q2's own admins are wrapped so its tables follow the same rule."""

from __future__ import annotations

from django.contrib import admin
from django_q import models as q_models


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


def superusers_only(model) -> None:
    """Re-register ``model``'s admin (whoever registered it) behind ``SuperusersOnly``."""
    if not admin.site.is_registered(model):
        return
    current = type(admin.site._registry[model])
    admin.site.unregister(model)
    admin.site.register(model, type(f"SuperusersOnly{current.__name__}", (SuperusersOnly, current), {}))


for q_model in (q_models.Success, q_models.Failure, q_models.Schedule, q_models.OrmQ):
    superusers_only(q_model)
