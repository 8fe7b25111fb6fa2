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
    attention = [IntegrationStatus.NEEDS_REAUTHORISATION, IntegrationStatus.AWAITING_CONFIRMATION]
    qs = scope_to_user(Integration.objects.select_related("company"), request.user)
    # Credentials no key can open show here too, whatever the status (a lost key, a changed SECRET_KEY).
    return [i for i in qs if i.status in attention or i.credentials_unreadable]


@register.simple_tag(takes_context=True)
def kontera_overview(context):
    """The overview's content for the admin's home page (``bookkeeping.admin.overview``)."""
    from ..admin.overview import overview_context

    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {}
    return overview_context(request)


@register.simple_tag(takes_context=True)
def kontera_waiting_for_mappings(context) -> int:
    """How many vouchers not sent yet wait for a mapping, in the user's companies (one query)."""
    from ..models import Voucher
    from ..selectors.mappings import SENT_STATES

    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return 0
    waiting = Voucher.objects.filter(rows__awaits_mapping=True).exclude(state__in=SENT_STATES).distinct()
    return scope_to_user(waiting, request.user).count()
