from django import template
from django.utils import timezone

register = template.Library()


@register.simple_tag(takes_context=True)
def kontera_worker_heartbeat(context):
    """The background workers' liveness for the overview (``operations.heartbeat``): any staff member sees it."""
    from ..heartbeat import cluster_liveness

    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return None
    liveness = cluster_liveness()
    if liveness.last_beat:
        liveness.seconds_ago = max(int((timezone.now() - liveness.last_beat).total_seconds()), 0)
    return liveness
