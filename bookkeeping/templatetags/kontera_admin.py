from django import template

from integrations.models import Integration, IntegrationStatus

from ..selectors.companies import scope_to_user

register = template.Library()


@register.simple_tag(takes_context=True)
def kontera_alerts(context):
    """Integrations that need staff now (re-authorisation, confirmation), for the admin index."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated or not request.user.has_perm("integrations.view_integration"):
        return []
    qs = Integration.objects.filter(
        status__in=[IntegrationStatus.NEEDS_REAUTHORISATION, IntegrationStatus.AWAITING_CONFIRMATION]
    ).select_related("company")
    return list(scope_to_user(qs, request.user))
