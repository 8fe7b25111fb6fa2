from django.contrib import admin

from ..models import AuditEvent
from .base import CompanyScopedAdmin, ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, CompanyScopedAdmin):
    list_display = ("created_at", "company", "actor_label", "action", "outcome", "http_status", "voucher", "message")
    list_filter = ("outcome", ("company", admin.RelatedOnlyFieldListFilter), "action")
    search_fields = ("message", "action", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("company", "voucher")

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff and self._allowed(request, obj)
