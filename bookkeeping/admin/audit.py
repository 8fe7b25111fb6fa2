from django.contrib import admin

from ..models import AuditEvent
from .base import CompanyScopedAdmin, ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, CompanyScopedAdmin):
    """Read-only; seen with the named permission view_auditevent, for the companies one serves."""

    list_display = ("created_at", "company", "actor_label", "action", "outcome", "http_status", "voucher", "message")
    list_filter = ("outcome", ("company", admin.RelatedOnlyFieldListFilter), "action")
    search_fields = ("message", "action", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("company", "voucher")
