"""Optional error tracking: with ``SENTRY_DSN`` set, errors of the web app and of background tasks go
to Sentry (https://docs.sentry.io/platforms/python/integrations/django/); without it nothing happens.

No personal data by default (``send_default_pii=False``), and every text of an event passes the same
secret redaction as the logs before it leaves the machine.
"""

from __future__ import annotations

from typing import Any


def _redact_tree(value: Any) -> Any:
    from integrations.http import redact

    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_tree(item) for item in value]
    return value


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    """``before_send``: mask anything secret-like in messages, exception values, breadcrumbs and extra."""
    for key in ("message", "logentry", "exception", "breadcrumbs", "extra", "request"):
        if key in event:
            event[key] = _redact_tree(event[key])
    return event


def init_sentry(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> bool:
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        integrations=[DjangoIntegration(), LoggingIntegration()],
        send_default_pii=False,
        traces_sample_rate=traces_sample_rate,
        before_send=scrub_event,
        before_breadcrumb=lambda crumb, hint: _redact_tree(crumb),
    )
    return True
