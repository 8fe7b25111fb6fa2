from django.contrib import admin
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import AuditEvent
from ..services.audit_export import audit_csv_lines, audit_events_for_export
from .base import CompanyScopedAdmin, ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, CompanyScopedAdmin):
    list_display = ("created_at", "company", "actor_label", "action", "outcome", "http_status", "voucher", "message")
    list_filter = ("outcome", ("company", admin.RelatedOnlyFieldListFilter), "action")
    search_fields = ("message", "action", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("company", "voucher")
    actions = ["export_csv"]

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff and self._allowed(request, obj)

    def has_export_permission(self, request):
        # The named permission, not just staff status: an export leaves the building.
        return request.user.has_perm("bookkeeping.view_auditevent")

    @admin.action(description=_("Export selected events (CSV, for the auditor)"), permissions=["export"])
    def export_csv(self, request, queryset):
        # ``queryset`` is already limited to the user's companies (CompanyScopedAdmin.get_queryset).
        events = audit_events_for_export(queryset=queryset)
        response = StreamingHttpResponse(audit_csv_lines(events), content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="kontera-audit-{stamp}.csv"'
        return response
