"""A consent came back from Fortnox or Visma Connect: check and burn its state, fetch the first tokens.

The callback view and the demo (which consents in the sandbox over HTTP, as a browser would) share it.
"""

from __future__ import annotations

from integrations import tokens
from integrations.base import ConnectorError
from wording import Msg

from ..selectors.companies import user_can_connect
from .audit import Actor, audit_record


def consent_check(*, state: str, user, system: str) -> tokens.ReturnedConsent:
    """The state is known, unused, under 10 minutes old, for this system, and the user serves the
    company with the permission to connect it. Raises ``tokens.StateError``."""
    return tokens.consume_state(state=state, user=user, user_can_act_on=user_can_connect, system=system)


def consent_complete(*, consent: tokens.ReturnedConsent, code: str, actor: Actor = None, store: bool = True):
    """Exchange the code for the first token pair (stored encrypted). Raises ``ConnectorError``.

    ``store=False`` returns the new credentials without keeping them (their company is checked first)."""
    integration = consent.integration
    system = integration.get_system_display()
    try:
        credentials = tokens.exchange_code(integration=integration, code=code, code_verifier=consent.code_verifier,
                                           store=store)
    except ConnectorError as exc:
        audit_record(action=f"{integration.system}:authorise_failed", outcome="error", integration=integration,
                     actor=actor, http_status=exc.http_status, message=exc.message)
        raise
    audit_record(action=f"{integration.system}:authorised", outcome="ok", integration=integration, actor=actor,
                 message=Msg("%(system)s granted access.", system=system))
    return integration if store else credentials
