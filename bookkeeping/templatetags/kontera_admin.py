from django import template

from integrations.models import Integration, IntegrationStatus

from ..selectors.companies import scope_to_user

register = template.Library()


@register.simple_tag(takes_context=True)
def kontera_alerts(context):
    """Integrations that need staff now (re-authorisation, confirmation), for the admin index."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return []
    qs = Integration.objects.filter(
        status__in=[IntegrationStatus.NEEDS_REAUTHORISATION, IntegrationStatus.AWAITING_CONFIRMATION]
    ).select_related("company")
    return list(scope_to_user(qs, request.user))


@register.simple_tag(takes_context=True)
def kontera_overview(context):
    """The overview's content for the admin's home page (``bookkeeping.admin.overview``)."""
    from ..admin.overview import overview_context

    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {}
    return overview_context(request)
