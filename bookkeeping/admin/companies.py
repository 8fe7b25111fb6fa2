from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import Company
from .base import CompanyScopedAdmin


@admin.register(Company)
class CompanyAdmin(CompanyScopedAdmin):
    company_field = "pk"
    list_display = ("name", "slug", "country", "org_number", "base_currency", "active")
    list_filter = ("country", "active")
    search_fields = ("name", "slug", "org_number")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "country", "org_number", "base_currency", "default_series", "active")}),
        (_("Staff"), {"fields": ("members",)}),
    )

    def get_queryset(self, request):
        from ..selectors.companies import companies_for_user

        return companies_for_user(request.user)

    def _allowed(self, request, obj):
        from ..selectors.companies import user_can_act_on

        return obj is None or request.user.is_superuser or user_can_act_on(request.user, obj)

    def get_fieldsets(self, request, obj=None):
        # Only superusers decide who serves which company.
        if request.user.is_superuser:
            return self.fieldsets
        return self.fieldsets[:1]

    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)
