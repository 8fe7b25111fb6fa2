"""Connecting a company's Dinero through Visma Connect, and choosing its organisation.

Visma Connect is how a bureau connects its clients' Dinero organisations: a Dinero user consents
(the Connect button, or the authorisation URL ``dinero_connect`` prints), the callback stores the
tokens, and because one Visma login may reach several organisations, staff then choose which one
belongs to the company (its CVR is checked against the company's where both are known). The API key
of Dinero's *personal integration* stays for a company connecting its own Dinero only
(``dinero_setup.dinero_connect``).

The consent, its ``state`` and the tokens are the shared OAuth machinery (``integrations.tokens``,
the core's connect and callback views), exactly as for Fortnox.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from bookkeeping import identity
from bookkeeping.models import AuditEvent, Voucher
from bookkeeping.services.audit import Actor, audit_record
from bookkeeping.services.connection_identity import identity_check, identity_record
from bookkeeping.services.reconnection import integration_reconnected
from integrations import registry, tokens
from integrations.base import ConnectorError, RemoteOrganisation
from integrations.models import Integration, IntegrationStatus
from wording import Msg

from .common import AUTH_VISMA_CONNECT, SETUP_CHOICES, SYSTEM, SetupError
from .sync import _enqueue

# Credentials that belong to the personal integration only; dropped when Visma Connect takes over.
PERSONAL_CREDENTIALS = ("api_key", "token_for", "token_obtained_at")


def normalise_cvr(value) -> str:
    """A Danish CVR as its eight digits ("DK 12 34 56 78" → "12345678"); "" when it is not one
    (python-stdnum through ``bookkeeping.identity``, as every organisation number Kontera compares)."""
    number = identity.compact("DK", str(value or ""))
    return number if len(number) == 8 and number.isdigit() else ""


@dataclass(frozen=True)
class OrganisationChoice:
    """A Dinero organisation the consent reaches, as staff see it on the choice page."""

    remote_id: str
    name: str
    cvr: str
    usable: bool
    problem: str
    cvr_matches: bool | None  # None: the company's or the organisation's CVR is not known

    @property
    def label(self) -> str:
        parts = [f"{self.name} ({self.remote_id})"]
        if self.cvr:
            parts.append(Msg("CVR %(cvr)s", cvr=self.cvr))
        if not self.usable:
            parts.append(Msg("no Dinero Pro"))
        elif self.cvr_matches is False:
            parts.append(Msg("CVR differs from the company's"))
        return " · ".join(parts)


def visma_connect_start(*, company, actor: Actor = None) -> Integration:
    """The integration a Visma Connect consent will be bound to (created if the company has none)."""
    with transaction.atomic():
        integration, created = Integration.objects.select_for_update().get_or_create(
            company=company, system=SYSTEM,
            defaults={"status": IntegrationStatus.SETTING_UP, "settings": {"auth": AUTH_VISMA_CONNECT},
                      "status_message": Msg("Waiting for the consent in Visma Connect.")})
        if created:
            audit_record(action="dinero:created", integration=integration, actor=actor,
                         message=Msg("Dinero integration created for a Visma Connect consent."))
    return integration


def visma_connect_url(*, company, user=None, actor: Actor = None) -> tuple[Integration, str]:
    """``dinero_connect``: the authorisation URL to open (valid 10 minutes, single use)."""
    integration = visma_connect_start(company=company, actor=actor)
    url = tokens.authorisation_url(integration=integration, user=user)
    audit_record(action="dinero:authorise_started", integration=integration, actor=actor,
                 message=Msg("Authorisation URL for Visma Connect printed."))
    return integration, url


def has_visma_consent(integration: Integration | None) -> bool:
    credentials = (integration.credentials or {}) if integration else {}
    return bool(credentials.get("refresh_token") or credentials.get("access_token"))


def _choice(organisation: RemoteOrganisation, company_cvr: str) -> OrganisationChoice:
    cvr = normalise_cvr(organisation.organisation_number)
    matches = (cvr == company_cvr) if (cvr and company_cvr) else None
    return OrganisationChoice(remote_id=organisation.remote_id, name=organisation.name,
                              cvr=cvr or organisation.organisation_number, usable=organisation.usable,
                              problem=organisation.problem, cvr_matches=matches)


def dinero_organisations(*, integration: Integration) -> list[OrganisationChoice]:
    """The organisations the Visma Connect consent reaches, each compared with the company's CVR."""
    if not has_visma_consent(integration):
        raise SetupError(Msg("Connect Dinero through Visma Connect first."))
    transient = Integration(pk=integration.pk, company=integration.company, system=SYSTEM,
                            settings={**(integration.settings or {}), "auth": AUTH_VISMA_CONNECT},
                            credentials=dict(integration.credentials or {}))
    try:
        found = registry.connector_for(transient).organisations()
    except ConnectorError as exc:
        raise SetupError(exc.message) from None
    company_cvr = normalise_cvr(integration.company.org_number)
    return [_choice(organisation, company_cvr) for organisation in found]


def _set_up_before(integration: Integration) -> bool:
    conf = integration.settings or {}
    return bool(conf.get("organization_id")) and all(conf.get(key) for key in SETUP_CHOICES)


def _take_over(locked: Integration) -> None:
    """Visma Connect replaces the personal integration: its API key is no longer kept."""
    locked.settings = {**(locked.settings or {}), "auth": AUTH_VISMA_CONNECT}
    locked.credentials = {k: v for k, v in (locked.credentials or {}).items() if k not in PERSONAL_CREDENTIALS}


def dinero_after_consent(*, integration: Integration, actor: Actor = None) -> tuple[str, int]:
    """After the callback stored the tokens: ``("reconnected", n)`` when the integration was set up
    and its organisation is still reachable (the waiting vouchers go out by themselves, as after a
    Fortnox reconnect), else ``("choose", 0)``: staff choose the organisation."""
    integration = Integration.objects.get(pk=integration.pk)
    if not _set_up_before(integration):
        return "choose", 0
    try:
        reachable = {c.remote_id: c for c in dinero_organisations(integration=integration)}
    except SetupError:
        return "choose", 0
    chosen = reachable.get(str(integration.settings["organization_id"]))
    if chosen is None or not chosen.usable:
        return "choose", 0
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        _take_over(locked)
        locked.save(update_fields=["settings", "credentials", "updated_at"])
    requeued = integration_reconnected(integration=integration, actor=actor)
    company_id = integration.company_id
    transaction.on_commit(lambda: _enqueue(company_id))
    return "reconnected", requeued


def _posted_elsewhere(integration: Integration, organization_id: str) -> bool:
    previous = str((integration.settings or {}).get("organization_id") or "")
    if not previous or previous == organization_id:
        return False
    return Voucher.objects.filter(company=integration.company, system=SYSTEM).exclude(remote_id="").exists()


def dinero_choose_organisation(*, integration: Integration, organization_id, actor: Actor = None,
                               accept_other_cvr: bool = False) -> Integration:
    """The wizard's organisation step (and ``dinero_setup`` without an API key): check the choice,
    read its master data, store it. Nothing is stored when a check fails."""
    from bookkeeping.services.plans import master_data_store

    organization_id = str(organization_id or "").strip()
    choices = dinero_organisations(integration=integration)
    choice = next((c for c in choices if c.remote_id == organization_id), None)
    if choice is None:
        reachable = "; ".join(c.label for c in choices) or Msg("none")
        raise SetupError(Msg("Organisation %(org)s is not among the Dinero organisations this consent reaches: "
                           "%(orgs)s.", org=organization_id or "–", orgs=reachable),
                         field_name="organization_id")
    if not choice.usable:
        raise SetupError(choice.problem, field_name="organization_id")
    company = integration.company
    if _posted_elsewhere(integration, organization_id):
        raise SetupError(Msg("Vouchers of %(company)s are already in Dinero organisation %(old)s; they cannot move to "
                           "another organisation. Choose %(old)s.", company=company, old=integration.settings.get("organization_id")),
                         field_name="organization_id")
    if choice.cvr_matches is False and not accept_other_cvr:
        raise SetupError(Msg("%(org)s has CVR %(cvr)s, but %(company)s has %(own)s. Choose the company's own "
                           "organisation, or confirm that this one is right.", org=choice.name, cvr=choice.cvr, company=company, own=company.org_number),
                         field_name="accept_other_cvr")
    connector_class = registry.connector_class(SYSTEM)
    try:
        settings_ = connector_class.validate_settings(
            {**(integration.settings or {}), "organization_id": organization_id, "auth": AUTH_VISMA_CONNECT},
            company=company)
    except Exception as exc:  # ValidationError: plain words for the form
        raise SetupError(" ".join(getattr(exc, "messages", [str(exc)]))) from None
    transient = Integration(pk=integration.pk, company=company, system=SYSTEM, settings=settings_,
                            credentials=dict(integration.credentials or {}))
    connector = registry.connector_for(transient)
    try:
        info = connector.check_connection()
        data = connector.import_master_data()
    except ConnectorError as exc:
        raise SetupError(exc.message, field_name="organization_id") from None
    with transaction.atomic():
        # The row, not the transient copy: a refresh during the checks rotated the stored tokens.
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        _take_over(locked)
        locked.settings = {**settings_, "auth": AUTH_VISMA_CONNECT}
        if locked.status != IntegrationStatus.ACTIVE:
            locked.status = IntegrationStatus.SETTING_UP
            locked.status_message = Msg("Dinero setup started; finish the wizard to start syncing.")
        locked.save()
        summary = master_data_store(integration=locked, data=data)
        audit_record(action="dinero:organisation_chosen", outcome=AuditEvent.Outcome.OK, integration=locked,
                     actor=actor, message=Msg("Organisation %(org)s (%(name)s, CVR %(cvr)s) chosen through Visma Connect; "
                                            "%(n)s accounts and %(vat)s VAT types read.", org=organization_id, name=info.company_name or choice.name, cvr=choice.cvr or "–", n=summary.accounts, vat=summary.vat_codes))
        # Who the connection reaches, for the overview (and a confirmed mismatch, with who confirmed it).
        check = identity_check(company=company, system=SYSTEM, remote_name=info.company_name or choice.name,
                               remote_number=choice.cvr)
        identity_record(integration=locked, check=check, actor=actor,
                        note=Msg("confirmed on the organisation choice") if check.refused else "")
        if choice.cvr_matches is False:
            audit_record(action="dinero:cvr_differs", outcome=AuditEvent.Outcome.ERROR, integration=locked,
                         actor=actor, message=Msg("Connected although the organisation's CVR %(cvr)s differs from "
                                                "%(company)s's %(own)s (confirmed by staff).", cvr=choice.cvr, company=company, own=company.org_number))
    return locked
