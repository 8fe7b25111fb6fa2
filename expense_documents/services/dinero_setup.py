"""Setup: the guide's wizard (requirements, the connection, accounts, payment methods); ``dinero_setup``
is the command's one-call twin. Validates what staff typed at once, never inside a transaction.

The connection is Visma Connect for a bureau's client companies (``dinero_connection``), or the API
key of Dinero's personal integration for a company's own Dinero (``dinero_connect`` here)."""

from __future__ import annotations

from django.db import transaction

from bookkeeping import rules
from bookkeeping.models import (
    AccountKind,
    AccountPlan,
    AuditEvent,
    PaymentMethod,
    PaymentMethodList,
)
from bookkeeping.models.plans import Origin
from bookkeeping.selectors.plans import plan_snapshot
from bookkeeping.services.audit import Actor, audit_record
from bookkeeping.services.connection_identity import identity_check, identity_record
from integrations import registry
from integrations.base import ConnectionInfo, ConnectorError, MasterData
from integrations.crypto import mask_secret
from integrations.models import Integration, IntegrationStatus
from wording import Msg

from ..models import ExpenseDocument
from .common import (
    AUTH_API_KEY,
    SYSTEM,
    SetupError,
    dinero_integration,
    rules_text,
)
from .dinero_connection import dinero_choose_organisation, has_visma_consent
from .sync import _enqueue


def dinero_requirements(*, company) -> list[str]:
    """What must exist before the integration can be finished (the guide's requirements tab)."""
    problems = []
    lists = PaymentMethodList.objects.filter(company=company, methods__isnull=False).distinct()
    if not lists.exists():
        problems.append(Msg("%(company)s has no payment-method list for receipts (with at least one payment method). "
                          "Create one first: receipts are cash purchases paid from one of its methods.", company=company))
    return problems


def _transient(company, api_key: str, organization_id: str, settings_: dict | None = None) -> Integration:
    connector = registry.connector_class(SYSTEM)
    merged = connector.validate_settings({**(settings_ or {}), "organization_id": str(organization_id).strip(),
                                          "auth": AUTH_API_KEY}, company=company)
    return Integration(company=company, system=SYSTEM, settings=merged, credentials={"api_key": api_key.strip()})


def dinero_probe(*, company, api_key: str, organization_id: str, settings_: dict | None = None
                 ) -> tuple[Integration, ConnectionInfo, MasterData]:
    """Validate the key and organisation at once, then read the master data. Nothing is stored."""
    if not (api_key or "").strip():
        raise SetupError(Msg("Enter the organisation's Dinero API key."), field_name="api_key")
    if not str(organization_id or "").strip().isdigit():
        raise SetupError(Msg("The organisation id (firma-ID) is a number, e.g. 123456."), field_name="organization_id")
    transient = _transient(company, api_key, organization_id, settings_)
    connector = registry.connector_for(transient)
    try:
        info = connector.check_connection()
        data = connector.import_master_data()
    except ConnectorError as exc:
        field_name = "organization_id" if exc.code == "41" else "api_key"
        raise SetupError(exc.message, field_name=field_name) from None
    return transient, info, data


def dinero_connect(*, company, api_key: str, organization_id: str, actor: Actor = None,
                   connect_anyway: str = "") -> Integration:
    """Wizard step for the company's own personal integration: key and organisation validated; stored
    (the key encrypted) with the master data. Replaces a Visma Connect consent's tokens.

    An empty key keeps the stored one. The organisation's CVR must be the company's; otherwise it is
    refused with both names and numbers — unless ``connect_anyway`` gives staff's reason (audited).
    """
    from bookkeeping.services.plans import master_data_store

    existing = dinero_integration(company)
    keep = dict(existing.settings or {}) if existing else {}
    if not (api_key or "").strip() and existing is not None:
        api_key = (existing.credentials or {}).get("api_key") or ""
    transient, info, data = dinero_probe(company=company, api_key=api_key, organization_id=organization_id,
                                         settings_=keep)
    check = identity_check(company=company, system=SYSTEM, remote_name=info.company_name,
                           remote_number=info.organisation_number)
    note = (connect_anyway or "").strip()
    if check.refused and not note:
        audit_record(action="dinero:other_organisation", outcome=AuditEvent.Outcome.ERROR, company=company,
                     actor=actor, message=check.message, data=check.as_dict())
        raise SetupError(check.message, field_name="organization_id", identity=check)
    with transaction.atomic():
        integration, created = Integration.objects.select_for_update().get_or_create(
            company=company, system=SYSTEM, defaults={"status": IntegrationStatus.SETTING_UP})
        integration.settings = transient.settings
        integration.credentials = dict(transient.credentials)
        if integration.status != IntegrationStatus.ACTIVE:
            integration.status = IntegrationStatus.SETTING_UP
            integration.status_message = Msg("Dinero setup started; finish the wizard to start syncing.")
        integration.save()
        summary = master_data_store(integration=integration, data=data)
        identity_record(integration=integration, check=check, actor=actor, note=note if check.refused else "")
        audit_record(action="dinero:connected", outcome=AuditEvent.Outcome.OK, integration=integration, actor=actor,
                     message=Msg("Personal integration: API key %(key)s and organisation %(org)s (%(name)s) accepted by "
                                 "Dinero; %(n)s accounts and %(vat)s VAT types read.", key=mask_secret(api_key.strip()),
                                 org=organization_id, name=info.company_name, n=summary.accounts, vat=summary.vat_codes))
    return integration


def _plan(company) -> AccountPlan:
    plan, _created = AccountPlan.objects.get_or_create(company=company, system=SYSTEM)
    return plan


def resolve_counter_account(company, value) -> int:
    """``--invoice-payment-method``: an account number, or the name or id of one of the company's payment methods."""
    text = str(value or "").strip()
    if not text:
        raise SetupError(Msg("Choose the default payment method / counter account for invoices."),
                         field_name="invoice_counter_account")
    methods = PaymentMethod.objects.filter(payment_list__company=company)
    by_name = list(methods.filter(name__iexact=text))
    if len(by_name) == 1:
        return by_name[0].account_number
    if text.isdigit():
        if len(text) <= 3 and methods.filter(pk=int(text)).exists():
            return methods.get(pk=int(text)).account_number
        return int(text)
    raise SetupError(Msg("“%(value)s” is neither an account number nor one of %(company)s's payment methods.", value=text, company=company), field_name="invoice_counter_account")


def resolve_payment_list(company, value) -> PaymentMethodList:
    text = str(value or "").strip()
    lists = PaymentMethodList.objects.filter(company=company)
    found = lists.filter(pk=int(text)).first() if text.isdigit() else None
    found = found or lists.filter(name__iexact=text).first()
    if found is None:
        raise SetupError(Msg("%(company)s has no payment-method list “%(value)s”. Create the list for receipts first.", company=company, value=text), field_name="receipt_payment_list")
    return found


def _check_choices(integration: Integration, choices: dict) -> None:
    company = integration.company
    plan = plan_snapshot(company, SYSTEM)
    info = _plan(company).company_info or {}
    purchase = set(info.get("purchase_accounts") or [])
    deposit = set(info.get("deposit_accounts") or [])
    if "error_account" in choices:
        number = choices["error_account"]
        problems = rules.check_account_number(plan, number) + rules.check_profit_and_loss(plan, number)
        if not problems and purchase and number not in purchase:
            problems = [rules.Problem("not_purchase_account", Msg("Account %(account)s is not a purchase account in "
                                                                "Dinero.", account=number))]
        if problems:
            raise SetupError(Msg("Error account: %(problems)s", problems=rules_text(problems)),
                             field_name="error_account")
    if "invoice_counter_account" in choices:
        problems = rules.check_account_number(plan, choices["invoice_counter_account"])
        if problems:
            raise SetupError(Msg("Counter account for invoices: %(problems)s", problems=rules_text(problems)),
                             field_name="invoice_counter_account")
    if "receipt_payment_list" in choices:
        payment_list = PaymentMethodList.objects.filter(company=company, pk=choices["receipt_payment_list"]).first()
        if payment_list is None or not payment_list.methods.exists():
            raise SetupError(Msg("Choose a payment-method list of %(company)s with at least one payment method.", company=company), field_name="receipt_payment_list")
        wrong = [f"{m.name} ({m.account_number})" for m in payment_list.methods.all()
                 if (deposit and m.account_number not in deposit)
                 or (not deposit and m.account_number not in plan.accounts)]
        if wrong:
            raise SetupError(Msg("These payment methods do not point at a deposit account (beholdning) in Dinero: "
                               "%(methods)s. Dinero pays cash purchases from deposit accounts only.", methods=", ".join(wrong)), field_name="receipt_payment_list")


def dinero_configure(*, integration: Integration, actor: Actor = None, **choices) -> Integration:
    """Wizard steps after the key: error account and chart choice, invoice counter account, receipt list."""
    choices = {k: v for k, v in choices.items() if v is not None}
    for key in ("error_account", "invoice_counter_account", "receipt_payment_list", "rate_limit_per_minute"):
        if key in choices:
            try:
                choices[key] = int(choices[key])
            except (TypeError, ValueError):
                raise SetupError(Msg("%(name)s must be a number.", name=key), field_name=key) from None
    _check_choices(integration, choices)
    connector = registry.connector_class(SYSTEM)
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        try:
            locked.settings = connector.validate_settings({**(locked.settings or {}), **choices},
                                                          company=locked.company)
        except Exception as exc:  # ValidationError: plain words for the form
            raise SetupError(" ".join(getattr(exc, "messages", [str(exc)]))) from None
        locked.save(update_fields=["settings", "updated_at"])
        if "import_chart" in choices:
            _apply_chart_choice(locked)
        audit_record(action="dinero:configured", integration=locked, actor=actor,
                     message=Msg("Dinero settings chosen: %(choices)s", choices=", ".join(f"{k}={v}" for k, v in sorted(choices.items()))))
    integration.settings = locked.settings
    return integration


def _apply_chart_choice(integration: Integration) -> None:
    """Manual categories: the imported P&L accounts stop being categories (except the error account)."""
    plan = _plan(integration.company)
    keep = {integration.settings.get("error_account"), integration.settings.get("invoice_counter_account")}
    imported_pl = plan.accounts.filter(origin=Origin.IMPORTED, kind=AccountKind.PROFIT_AND_LOSS)
    if integration.settings.get("import_chart", True):
        imported_pl.update(active=True)
        info = {**(plan.company_info or {}), "chart": "full"}
    else:
        imported_pl.exclude(number__in=[k for k in keep if k]).update(active=False)
        info = {**(plan.company_info or {}), "chart": "manual"}
    AccountPlan.objects.filter(pk=plan.pk).update(company_info=info)


def dinero_finish(*, integration: Integration, actor: Actor = None) -> Integration:
    """Every requirement and choice in place: the integration becomes active and documents sync."""
    from bookkeeping.services.reconnection import integration_reconnected

    problems = dinero_requirements(company=integration.company)
    if problems:
        raise SetupError(" ".join(problems), field_name="receipt_payment_list")
    conf = integration.settings or {}
    missing = [label for key, label in (
        ("error_account", Msg("the error account")),
        ("invoice_counter_account", Msg("the counter account for invoices")),
        ("receipt_payment_list", Msg("the payment-method list for receipts")),
    ) if not conf.get(key)]
    credentials = integration.credentials or {}
    connected = credentials.get("api_key") or credentials.get("refresh_token") or credentials.get("access_token")
    if missing or not connected or not conf.get("organization_id"):
        raise SetupError(Msg("Not finished yet: choose %(missing)s.",
                             missing=Msg.join(", ", missing) if missing else Msg("the Dinero connection and organisation")))
    _check_choices(integration, {k: conf[k] for k in ("error_account", "invoice_counter_account",
                                                      "receipt_payment_list")})
    integration_reconnected(integration=integration, actor=actor)
    audit_record(action="dinero:finished", outcome=AuditEvent.Outcome.OK, integration=integration, actor=actor,
                 message=Msg("Dinero setup finished; documents are synced from now on."))
    ExpenseDocument.objects.filter(company=integration.company, voucher__isnull=True).update(needs_sync=True)
    company_id = integration.company_id
    transaction.on_commit(lambda: _enqueue(company_id))
    integration.refresh_from_db()
    return integration


def _connected(integration: Integration | None) -> bool:
    credentials = (integration.credentials or {}) if integration else {}
    return bool((credentials.get("api_key") or has_visma_consent(integration))
                and (integration.settings or {}).get("organization_id"))


def dinero_setup_steps(*, company, api_key: str | None = None, organization_id: str | None = None,
                       accept_other_cvr: bool = False, error_account=None, import_chart: bool = False,
                       invoice_payment_method=None, receipt_payment_list=None, book_vouchers: bool | None = None,
                       rate_limit_per_minute: int | None = None, actor: Actor = None,
                       connect_anyway: str = "") -> dict:
    """The wizard's order from the command line, one step or all of them per call (``manage.py dinero_setup``):

    1. the connection: the organisation (firma-ID) among those the Visma Connect consent reaches
       (``dinero_connect`` first; the CVR is checked), or with an API key the personal integration of
       a company's own Dinero — checked at once; the chart of accounts, VAT codes and accounting years
       are imported (so the payment methods and mappings can be imported against it next);
    2. the error account and whether the whole chart serves as categories;
    3. the invoices' counter account, 4. the receipts' payment-method list;
    5. finish — as soon as every choice is made and the requirements hold.

    Each call does the steps it is given, in this order, and says what comes next. What was typed is
    checked before anything is sent to Dinero (a named payment-method list must exist).
    """
    if receipt_payment_list:
        problems = dinero_requirements(company=company)
        if problems:
            raise SetupError(" ".join(problems), field_name="receipt_payment_list")
    payment_list = resolve_payment_list(company, receipt_payment_list) if receipt_payment_list else None
    counter = resolve_counter_account(company, invoice_payment_method) if invoice_payment_method else None
    done = []
    integration = dinero_integration(company)
    if api_key:
        if not organization_id:
            raise SetupError(Msg("Give both the API key and the organisation id (firma-ID)."), field_name="api_key")
        integration = dinero_connect(company=company, api_key=api_key, organization_id=organization_id, actor=actor,
                                     connect_anyway=connect_anyway)
        done.append("connect")
    elif organization_id:
        if not has_visma_consent(integration):
            raise SetupError(Msg("%(company)s has no Visma Connect consent yet: run dinero_connect %(slug)s, open the "
                               "URL and approve in Visma Connect, then run this again. (--api-key is only for a "
                               "company's own Dinero: the personal integration.)", company=company, slug=company.slug), field_name="api_key")
        integration = dinero_choose_organisation(integration=integration, organization_id=organization_id,
                                                 actor=actor, accept_other_cvr=accept_other_cvr or bool(connect_anyway))
        done.append("connect")
    elif not _connected(integration):
        raise SetupError(Msg("Connect Dinero first: dinero_connect %(slug)s and then --organization-id ID (Visma "
                           "Connect), or --api-key KEY --organization-id ID for the company's own Dinero; either "
                           "imports the chart of accounts.", slug=company.slug), field_name="api_key")
    choices: dict = {}
    if error_account is not None:
        choices.update(error_account=error_account, import_chart=bool(import_chart))
    if counter is not None:
        choices["invoice_counter_account"] = counter
    if payment_list is not None:
        choices["receipt_payment_list"] = payment_list.pk
    if choices and book_vouchers is not None:
        choices["book_vouchers"] = bool(book_vouchers)
    if choices and rate_limit_per_minute:
        choices["rate_limit_per_minute"] = rate_limit_per_minute
    if choices:
        integration = dinero_configure(integration=integration, actor=actor, **choices)
        done.append("choices")
    conf = integration.settings or {}
    missing = [name for name in ("error_account", "invoice_counter_account", "receipt_payment_list")
               if not conf.get(name)]
    if not missing and not dinero_requirements(company=company) and integration.status != IntegrationStatus.ACTIVE:
        integration = dinero_finish(integration=integration, actor=actor)
        done.append("finish")
    integration.refresh_from_db()
    plan = _plan(company)
    chosen_list = PaymentMethodList.objects.filter(company=company, pk=conf.get("receipt_payment_list") or 0).first()
    result = {
        "company": company.slug,
        "integration": integration.pk,
        "status": integration.status,
        "finished": integration.status == IntegrationStatus.ACTIVE,
        "steps_done": done,
        "organization_id": conf.get("organization_id"),
        "organisation": (plan.company_info or {}).get("name", ""),
        "connection": "personal integration (API key)" if (integration.credentials or {}).get("api_key")
        else "Visma Connect",
        "api_key": mask_secret((integration.credentials or {}).get("api_key", "")),
        "error_account": conf.get("error_account"),
        "import_chart": conf.get("import_chart"),
        "invoice_counter_account": conf.get("invoice_counter_account"),
        "receipt_payment_list": chosen_list.name if chosen_list else "",
        "accounts": plan.accounts.filter(active=True).count(),
        "vat_codes": plan.vat_codes.count(),
        "next": [] if integration.status == IntegrationStatus.ACTIVE else _next_steps(company, missing),
    }
    return result


def _next_steps(company, missing: list[str]) -> list[str]:
    steps = []
    if dinero_requirements(company=company):
        steps.append(Msg("Create the payment-method list for receipts: manage.py import "
                       "bookkeeping.resources.PaymentMethodResource FILE (columns company,list,name,account; the "
                       "accounts are Dinero deposit accounts, e.g. 55010)."))
    if missing:
        options = {"error_account": "--error-account N [--import-chart]",
                   "invoice_counter_account": "--invoice-payment-method ACCOUNT|NAME",
                   "receipt_payment_list": "--receipt-payment-methods LIST"}
        steps.append(Msg("Then: manage.py dinero_setup %(company)s %(options)s", company=company.slug, options=" ".join(options[name] for name in missing)))
    return steps


def dinero_setup(*, company, api_key: str | None, organization_id: str, error_account, import_chart: bool,
                 invoice_payment_method, receipt_payment_list, book_vouchers: bool = True,
                 rate_limit_per_minute: int | None = None, accept_other_cvr: bool = False,
                 actor: Actor = None, connect_anyway: str = "") -> dict:
    """The whole wizard in one call (``manage.py dinero_setup``). Without ``api_key`` the organisation
    is chosen from those a Visma Connect consent reaches (``dinero_connect`` prints its URL); with
    it, the company's own personal integration is used. ``connect_anyway`` (a note) accepts an
    organisation whose CVR is not the company's."""
    problems = dinero_requirements(company=company)
    if problems:
        raise SetupError(" ".join(problems), field_name="receipt_payment_list")
    payment_list = resolve_payment_list(company, receipt_payment_list)
    counter = resolve_counter_account(company, invoice_payment_method)
    if api_key:
        integration = dinero_connect(company=company, api_key=api_key, organization_id=organization_id, actor=actor,
                                     connect_anyway=connect_anyway)
    else:
        integration = dinero_integration(company)
        if not has_visma_consent(integration):
            raise SetupError(Msg("%(company)s has no Visma Connect consent yet: run dinero_connect %(slug)s, open the "
                                 "URL and approve in Visma Connect, then run this again. (--api-key is only for a "
                                 "company's own Dinero: the personal integration.)", company=company, slug=company.slug),
                             field_name="api_key")
        integration = dinero_choose_organisation(integration=integration, organization_id=organization_id,
                                                 actor=actor, accept_other_cvr=accept_other_cvr or bool(connect_anyway))
    choices = {"error_account": error_account, "import_chart": bool(import_chart),
               "invoice_counter_account": counter, "receipt_payment_list": payment_list.pk,
               "book_vouchers": bool(book_vouchers)}
    if rate_limit_per_minute:
        choices["rate_limit_per_minute"] = rate_limit_per_minute
    dinero_configure(integration=integration, actor=actor, **choices)
    integration = dinero_finish(integration=integration, actor=actor)
    plan = _plan(company)
    return {
        "company": company.slug,
        "integration": integration.pk,
        "status": integration.status,
        "organization_id": integration.settings["organization_id"],
        "organisation": (plan.company_info or {}).get("name", ""),
        "connection": "personal integration (API key)" if api_key else "Visma Connect",
        "api_key": mask_secret(api_key.strip()) if api_key else "",
        "error_account": integration.settings["error_account"],
        "import_chart": integration.settings["import_chart"],
        "invoice_counter_account": counter,
        "receipt_payment_list": payment_list.name,
        "accounts": plan.accounts.filter(active=True).count(),
        "vat_codes": plan.vat_codes.count(),
    }
