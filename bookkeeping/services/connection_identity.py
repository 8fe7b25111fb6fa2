"""A connection must reach the company's own books: the remote company's organisation number (Fortnox's
organisation number, Dinero's CVR) is compared with the Kontera company's before the connection is
kept. A different or unknown number is refused with both names and numbers; staff with the permission
"connect to another organisation" may connect anyway with a note — audited, and shown on the overview."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from integrations import registry
from integrations.base import ConnectionInfo
from integrations.models import Integration
from wording import Msg

from .. import identity
from ..models import AuditEvent
from .audit import Actor, actor_parts, audit_record

OVERRIDE_PERMISSION = "integrations.connect_other_organisation"


@dataclass(frozen=True)
class IdentityCheck:
    ok: bool | None  # True: the same organisation; False: another; None: the remote number is unknown
    company_name: str
    company_number: str  # as people write it; "" when the company has none in Kontera
    remote_name: str
    remote_number: str
    message: str

    @property
    def refused(self) -> bool:
        """Different numbers — or the company has none, so nothing could be compared."""
        return self.ok is False or (self.ok is None and not self.company_number and bool(self.remote_number))

    def as_dict(self) -> dict:
        return {"name": self.remote_name, "organisation_number": self.remote_number}


def identity_check(*, company, system: str, remote_name: str, remote_number: str) -> IdentityCheck:
    country = company.country
    ours, theirs = identity.shown(country, company.org_number), identity.shown(country, remote_number)
    same = identity.same_organisation(country, company.org_number, remote_number)
    label = dict(registry.SYSTEM_CHOICES).get(system, system)
    names = {"system": label, "remote": remote_name or "–", "remote_number": theirs, "company": company.name,
             "number": ours}
    if same is True:
        message = Msg("%(system)s company “%(remote)s” (%(remote_number)s) is %(company)s (%(number)s).", **names)
    elif same is False:
        message = Msg("%(system)s company “%(remote)s” (%(remote_number)s) is not %(company)s (%(number)s): the "
                      "organisation numbers differ. Connect the right company in %(system)s — or, if you know "
                      "this is right, connect anyway with a note.", **names)
    elif not ours and theirs:
        message = Msg("%(company)s has no organisation number in Kontera, so %(system)s company “%(remote)s” "
                      "(%(remote_number)s) cannot be checked. Enter the company's organisation number first — "
                      "or, if you know this is right, connect anyway with a note.", **names)
    else:
        message = Msg("%(system)s did not tell the organisation number of “%(remote)s”: check that it is "
                      "%(company)s.", **names)
    return IdentityCheck(ok=same, company_name=company.name, company_number=ours, remote_name=remote_name or "",
                         remote_number=theirs, message=message)


def remote_company(*, integration: Integration, credentials: dict) -> ConnectionInfo:
    """Which company new credentials reach — asked before they replace the stored ones (nothing saved)."""
    transient = Integration(pk=integration.pk, company=integration.company, system=integration.system,
                            settings=dict(integration.settings or {}), credentials=credentials)
    return registry.connector_for(transient).check_connection()


def identity_record(*, integration: Integration, check: IdentityCheck, actor: Actor = None, note: str = "") -> None:
    """Keep who the connection reaches on the integration; a connection made despite the check is audited."""
    remote = {**check.as_dict(), "checked_at": timezone.now().isoformat(), "same": check.ok}
    if note:
        user, label = actor_parts(actor)
        remote["override"] = {"by": (user.get_full_name() or label) if user else label, "note": note,
                              "at": timezone.now().isoformat()}
        audit_record(action=f"{integration.system}:other_organisation", outcome=AuditEvent.Outcome.ERROR,
                     integration=integration, actor=actor,
                     message=Msg("Connected although the organisation numbers differ: %(check)s Note: %(note)s",
                                 check=check.message, note=note),
                     data={"company_number": check.company_number, **check.as_dict()})
    Integration.objects.filter(pk=integration.pk).update(remote_company=remote)
    integration.remote_company = remote
