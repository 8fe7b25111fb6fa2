"""Company scoping for every admin: staff see and act on their own companies only."""

from __future__ import annotations

from django.contrib import admin

from ..models import AccountPlan, Company
from ..selectors.companies import companies_for_user, scope_to_user


class CompanyScopedAdmin(admin.ModelAdmin):
    """``company_field`` is the lookup from this model to its company (e.g. ``plan__company``)."""

    company_field = "company"

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user, company_field=self.company_field)

    def _allowed(self, request, obj) -> bool:
        if obj is None or request.user.is_superuser:
            return True
        company = obj
        for part in self.company_field.split("__"):
            company = getattr(company, part, None)
        return company is not None and companies_for_user(request.user).filter(pk=company.pk).exists()

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._allowed(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._allowed(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Company:
            kwargs["queryset"] = companies_for_user(request.user)
        elif db_field.related_model is AccountPlan:
            kwargs["queryset"] = AccountPlan.objects.filter(company__in=companies_for_user(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.related_model is Company:
            kwargs["queryset"] = companies_for_user(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ScopedInlineMixin:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Company:
            kwargs["queryset"] = companies_for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
