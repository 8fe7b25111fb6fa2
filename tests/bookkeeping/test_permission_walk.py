"""Every door of Kontera, walked (issue 11): each URL pattern and each admin action of every
registered admin, as users with and without the permission it needs.

Without the permission (a staff member holding every other permission and serving the company):
403 — never a 200, never a redirect to a result, never a 500. With only the permission it needs:
the page works. A staff member with every permission who does not serve the company gets a 403
that says so and links back. Anonymous visitors are sent to the login.

A new URL pattern or admin action that is not classified here fails the walk: no door is forgotten.
Standard admin pages of a newly registered model are classified by their model permissions; a model
whose admin grants or withholds more must be listed below.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from bookkeeping.models import AuditEvent
from card_payments.models import NetsPayout, ProblemReport
from expense_documents.models import ExpenseDocument, ExpenseLine, WorkflowRule
from integrations.models import OAuthState, RateLimitSlot
from tests import factories
from tests.netseasy_fixtures import nets_values

CONNECT = "integrations.connect_integration"

# --- the classification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Door:
    """A custom page: the permissions it needs, and how to reach it for one company of the world."""

    perms: tuple[str, ...]
    company: str | None = None  # "se" or "dk": the URL names that company (checked for outsiders)
    kwargs: object = None  # (world, company) -> reverse() kwargs
    query: object = None  # (world, company) -> "?…"
    methods: tuple[str, ...] = ("get", "post")  # refused without the permission
    ok_method: str = "get"
    ok: tuple[int, ...] = (200,)  # what "works" answers with the permission
    without: tuple[str, ...] = ()  # also taken away for "without" (e.g. change, which includes seeing)


def _journal_import_job(world, which) -> int:
    from ledger_journals.models import JournalImportJob

    return JournalImportJob.objects.get_or_create(company=world.company("se", which), filename="walk.csv")[0].pk


def _company(key):
    return lambda world, which: {"company_id": world.company(key, which).pk}


CUSTOM_DOORS: dict[str, list[Door]] = {
    # the Fortnox OAuth round trip
    "integrations:fortnox_connect": [Door((CONNECT,), "se", lambda w, c: {"pk": w.integration("fortnox", c).pk},
                                          methods=("get",), ok=(302,))],
    "integrations:fortnox_callback": [Door((CONNECT,), methods=("get",), ok=(302,))],
    # Dinero through Visma Connect: the same pair of views
    "integrations:dinero_connect": [Door((CONNECT,), "dk", lambda w, c: {"pk": w.integration("dinero", c).pk},
                                         methods=("get",), ok=(302,))],
    "integrations:dinero_callback": [Door((CONNECT,), methods=("get",), ok=(302,))],
    # a consent held back because it reaches another company: only its own consenter decides (walked below
    # as far as the permission goes; the held state itself is the cockpit's tests')
    "integrations:fortnox_held": [Door((CONNECT,), kwargs=lambda w, c: {"pk": w.objects["integrations.oauthstate"].pk},
                                       methods=("get", "post"), ok=(404,))],
    # vouchers and journals
    "admin:bookkeeping_voucher_import_journals": [Door(("bookkeeping.import_journals",))],
    # a big import's page: only for who may import journals for its company
    "admin:bookkeeping_voucher_import_journals_job": [Door(("bookkeeping.import_journals",), "se",
                                                           lambda w, c: {"job_id": _journal_import_job(w, c)})],
    "admin:bookkeeping_voucher_progress": [Door(("bookkeeping.view_voucher",), methods=("get",),
                                                query=lambda w, c: f"?ids={w.objects['bookkeeping.voucher'].pk}",
                                                without=("bookkeeping.change_voucher",))],
    "admin:bookkeeping_voucher_export_sie": [Door(("bookkeeping.export_sie",))],
    "admin:bookkeeping_voucher_inbox": [Door(("bookkeeping.view_voucher",), methods=("get",),
                                             without=("bookkeeping.change_voucher",)),
                                        Door(("bookkeeping.view_voucher", "bookkeeping.send_voucher"),
                                             methods=("post",), ok_method="post", ok=(302,),
                                             without=("bookkeeping.change_voucher",))],
    # django-import-export
    "admin:bookkeeping_accountmapping_import": [Door(("bookkeeping.import_accountmapping",))],
    "admin:bookkeeping_accountmapping_process_import": [Door(("bookkeeping.import_accountmapping",),
                                                             methods=("post",), ok_method="post")],
    "admin:bookkeeping_accountmapping_export": [Door(("bookkeeping.export_accountmapping",))],
    # account mappings: the values waiting for one (mapping them changes mappings), the import's template
    "admin:bookkeeping_accountmapping_unmapped": [
        Door(("bookkeeping.view_accountmapping",), methods=("get",),
             query=lambda w, c: f"?company={w.company('se', c).pk}&flow=ledger_journals",
             without=("bookkeeping.change_accountmapping",)),
        Door(("bookkeeping.change_accountmapping", "bookkeeping.add_accountmapping"), methods=("post",),
             query=lambda w, c: f"?company={w.company('se', c).pk}&flow=ledger_journals", ok_method="post",
             ok=(200, 302))],
    "admin:bookkeeping_accountmapping_template": [Door(("bookkeeping.import_accountmapping",), methods=("get",))],
    "admin:bookkeeping_paymentmethod_import": [Door(("bookkeeping.import_paymentmethod",))],
    "admin:bookkeeping_paymentmethod_process_import": [Door(("bookkeeping.import_paymentmethod",),
                                                            methods=("post",), ok_method="post")],
    "admin:bookkeeping_paymentmethod_export": [Door(("bookkeeping.export_paymentmethod",))],
    # expense documents and the Dinero wizard
    "admin:expense_documents_expensedocument_import": [Door(("expense_documents.import_expensedocument",))],
    "admin:dinero_setup": [Door((CONNECT,))],
    "admin:dinero_setup_connect": [Door((CONNECT,), "dk", _company("dk"))],
    "admin:dinero_setup_organisation": [Door((CONNECT,), "dk", lambda w, c: {
        "integration_id": w.integration("dinero", c).pk})],
    "admin:dinero_setup_step": [Door((CONNECT,), "dk", lambda w, c: {"integration_id": w.integration("dinero", c).pk,
                                                                      "step": "accounts"})],
    # Django's own: a user's password needs the permission to change users
    "admin:auth_user_password_change": [Door(("auth.change_user",), kwargs=lambda w, c: {
        "id": w.objects["auth.user"].pk})],
    # Nets Easy
    "admin:card_payments_netspayout_settings": [Door(("integrations.view_integration",), "se", _company("se"),
                                                     methods=("get",)),
                                                Door(("card_payments.configure_netseasy",), "se", _company("se"),
                                                     methods=("post",), ok_method="post")],
    "admin:card_payments_netspayout_confirm": [Door(("card_payments.confirm_netseasy",), "se", _company("se"))],
    "admin:card_payments_netspayout_sync": [Door(("card_payments.sync_netseasy",), "se", _company("se"))],
    "admin:card_payments_netspayout_progress": [Door(("card_payments.view_netspayout",), "se", _company("se"),
                                                     methods=("get",))],
    "admin:card_payments_netspayout_report": [Door(("card_payments.report_problem",), "se", _company("se"))],
}

# Pages of the admin site itself: open to every active staff member (they show nothing of a company).
STAFF_PAGES = {"admin:index", "admin:password_change", "admin:password_change_done", "admin:jsi18n"}
PUBLIC_PAGES = {"admin:login"}
# Public by design, outside the admin: /health/ is for load balancers and monitoring, which have no login.
# It answers 200 or 503 with the state of the database, cache, broker and workers, and a count; never a
# company, a node's host or a secret to an anonymous caller (operations/health.py, tests/operations/test_health.py).
PUBLIC_STATUS = {"health"}
# Closed unless an admin declares autocomplete fields or a model has its own address: 403 / 404 for all.
CLOSED = {"admin:autocomplete": (403,), "admin:view_on_site": (404,)}

# Every admin action and the permissions it needs (besides seeing the list).
ACTIONS = {
    ("bookkeeping.voucher", "send_selected"): ("bookkeeping.send_voucher",),
    ("bookkeeping.voucher", "retry_selected"): ("bookkeeping.send_voucher",),
    ("bookkeeping.voucher", "back_to_draft"): ("bookkeeping.reset_voucher",),
    ("bookkeeping.voucher", "mark_handled_outside"): ("bookkeeping.handle_outside_voucher",),
    ("integrations.integration", "import_master_data"): ("integrations.import_master_data",),
    # the audit trail as CSV for an auditor: whoever may see the trail may take it along
    ("bookkeeping.auditevent", "export_csv"): ("bookkeeping.view_auditevent",),
    ("expense_documents.expensedocument", "sync_to_dinero"): ("expense_documents.sync_expensedocument",),
    ("expense_documents.expensedocument", "sync_again"): ("expense_documents.sync_expensedocument",),
    ("card_payments.netspayout", "mark_handled_by_hand"): ("card_payments.mark_payout_handled",),
    ("card_payments.netspayout", "sync_companies"): ("card_payments.sync_netseasy",),
}
# delete_selected needs the model's delete permission; actions of superuser-only admins need a superuser.
SUPERUSER = "superuser"

# Admins that grant or withhold more than their model permissions.
SUPERUSER_ONLY = {"django_q.schedule", "django_q.success", "django_q.failure", "django_q.ormq",
                  "integrations.ratelimitslot", "integrations.oauthstate", "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog"}
READ_ONLY = {"bookkeeping.auditevent", "card_payments.netspayout",
             "card_payments.problemreport"}
ADD_SUPERUSER_ONLY = {"bookkeeping.company"}
# Pages that need more than their one model permission (Django's user admin adds users only for those
# who may also change them).
ALSO_NEEDED = {("auth.user", "add"): {"auth.change_user"}}


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    companies: dict = field(default_factory=dict)  # ("se"|"dk", "mine"|"other") -> Company
    integrations: dict = field(default_factory=dict)  # (system, "mine"|"other") -> Integration
    objects: dict = field(default_factory=dict)  # "app.model" -> one instance (a company we serve)

    def company(self, key, which="mine"):
        return self.companies[(key, which)]

    def integration(self, system, which="mine"):
        return self.integrations[(system, which)]


def _build_world(superuser) -> World:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_q.models import Failure, OrmQ, Schedule, Success

    world = World()
    for which in ("mine", "other"):
        se = factories.CompanyFactory(name=f"Walk SE {which}", slug=f"walk-se-{which}", country="SE")
        dk = factories.CompanyFactory(name=f"Walk DK {which}", slug=f"walk-dk-{which}", country="DK",
                                      base_currency="DKK")
        world.companies[("se", which)], world.companies[("dk", which)] = se, dk
        world.integrations[("fortnox", which)] = factories.IntegrationFactory(company=se, system="fortnox",
                                                                              status="active")
        world.integrations[("netseasy", which)] = factories.IntegrationFactory(
            company=se, system="netseasy", status="awaiting_confirmation", settings=nets_values(),
            credentials={"secret_key": "live-secret-key-" + "7" * 32})
        world.integrations[("dinero", which)] = factories.IntegrationFactory(
            company=dk, system="dinero", status="setting_up", settings={"organization_id": "123"})
    se, dk = world.company("se"), world.company("dk")
    plan = factories.fortnox_plan(se)
    voucher = factories.balanced_voucher(se)
    payment_list = factories.PaymentMethodListFactory(company=dk)
    document = ExpenseDocument.objects.create(company=dk, reference="WALK-1", supplier_name="Leverandør A/S",
                                              document_date=dt.date.today())
    ExpenseLine.objects.create(document=document, amount=Decimal("125.00"), vat_code="I25", category=2200)
    payout = NetsPayout.objects.create(integration=world.integration("netseasy"), company=se, nets_id="w" * 32,
                                       date=dt.date.today(), currency="SEK", amount=Decimal("10.00"))
    task = {"id": "a" * 32, "name": "walk", "func": "bookkeeping.tasks.sweep", "started": dt.datetime.now(dt.UTC),
            "stopped": dt.datetime.now(dt.UTC)}
    objects = {
        "auth.user": superuser,
        "auth.group": Group.objects.get(name="Bookkeeper"),
        "bookkeeping.company": se,
        "bookkeeping.accountplan": plan,
        "bookkeeping.account": plan.accounts.first(),
        "bookkeeping.costcentre": plan.cost_centres.first(),
        "bookkeeping.voucherseries": plan.series.first(),
        "bookkeeping.financialyear": plan.financial_years.first(),
        "bookkeeping.vatcode": factories.VatCodeFactory(plan=plan),
        "bookkeeping.voucher": voucher,
        "bookkeeping.accountmapping": factories.AccountMappingFactory(company=se),
        "bookkeeping.paymentmethodlist": payment_list,
        "bookkeeping.paymentmethod": factories.PaymentMethodFactory(payment_list=payment_list),
        "bookkeeping.auditevent": AuditEvent.objects.create(company=se, voucher=voucher, action="walk"),
        "integrations.integration": world.integration("fortnox"),
        "integrations.oauthstate": OAuthState.objects.create(state="walk-state", integration=world.integration("fortnox"),
                                                             user=superuser),
        "integrations.ratelimitslot": RateLimitSlot.objects.create(key="walk"),
        "expense_documents.expensedocument": document,
        "expense_documents.workflowrule": WorkflowRule.objects.create(company=dk, name="Walk rule"),
        "card_payments.netspayout": payout,
        "card_payments.problemreport": ProblemReport.objects.create(integration=world.integration("netseasy"),
                                                                    company=se, text="walk"),
        "django_q.schedule": Schedule.objects.create(name="walk", func="bookkeeping.tasks.sweep"),
        "django_q.success": Success.objects.create(**task, success=True),
        "django_q.failure": Failure.objects.create(**{**task, "id": "b" * 32}, success=False),
        "django_q.ormq": OrmQ.objects.create(key="walk", payload="x", lock=None),
        "axes.accessattempt": AccessAttempt.objects.create(username="walk", ip_address="10.0.0.1", user_agent="t",
                                                          failures_since_start=1),
        "axes.accesslog": AccessLog.objects.create(username="walk", ip_address="10.0.0.1", user_agent="t"),
        "axes.accessfailurelog": AccessFailureLog.objects.create(username="walk", ip_address="10.0.0.1",
                                                                 user_agent="t"),
    }
    world.objects = objects
    return world


class Staff:
    """Staff members made on demand: serving the world's own companies, with chosen permissions."""

    def __init__(self, world):
        self.world = world
        self.all_perms = list(Permission.objects.select_related("content_type"))
        self.made = {}
        self.count = 0

    def _make(self, perms, *, serve=True):
        self.count += 1
        # No password: hashing one per walker would cost most of the walk's time (they log in by force_login).
        user = get_user_model().objects.create(username=f"walker{self.count}", is_staff=True)
        user.user_permissions.set(perms)
        if serve:
            for key in ("se", "dk"):
                self.world.company(key).members.add(user)
        return user

    def only(self, names):
        key = ("only", frozenset(names))
        if key not in self.made:
            self.made[key] = self._make([p for p in self.all_perms if _name(p) in names])
        return self.made[key]

    def all_but(self, names):
        key = ("but", frozenset(names))
        if key not in self.made:
            self.made[key] = self._make([p for p in self.all_perms if _name(p) not in names])
        return self.made[key]

    def outsider(self):
        if "outsider" not in self.made:
            self.made["outsider"] = self._make(self.all_perms, serve=False)
        return self.made["outsider"]


def _name(permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


@pytest.fixture
def walk(db, client, superuser, monkeypatch, settings):
    from django.core.cache import cache
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # actions queue their work; nothing runs in the request
    settings.FORTNOX_OAUTH_URL = "https://fortnox.invalid/oauth-v1"
    world = _build_world(superuser)
    yield world, Staff(world)
    cache.clear()  # the queued work left "already running" tickets; later tests reuse the same ids


# --- the patterns -----------------------------------------------------------------------------


def url_patterns():
    """(full pattern, name, pattern object) for every URL pattern, resolvers walked recursively."""

    def walk(resolver, prefix, namespace):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else (
                    pattern.namespace or namespace)
                yield from walk(pattern, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}:{pattern.name}" if namespace and pattern.name else (pattern.name or "")
                yield prefix + str(pattern.pattern), name, pattern

    return list(walk(get_resolver(), "", ""))


def registered_models() -> dict[str, object]:
    return {model._meta.label_lower: model_admin for model, model_admin in admin.site._registry.items()}


STANDARD = ("changelist", "add", "history", "delete", "change")


def classify(full, name):
    """("standard", label, suffix) | ("object-redirect", label) | ("custom", name) | ("site", name) | …"""
    models = registered_models()
    if name.startswith("admin:"):
        for label in models:
            app, model = label.split(".")
            for suffix in STANDARD:
                if name == f"admin:{app}_{model}_{suffix}":
                    return ("standard", label, suffix)
    if not name and full.endswith("<path:object_id>/"):
        for label in models:
            app, model = label.split(".")
            if full == f"admin/{app}/{model}/<path:object_id>/":
                return ("object-redirect", label)
    if name in CUSTOM_DOORS:
        return ("custom", name)
    if name in STAFF_PAGES or name in PUBLIC_PAGES or name in CLOSED or name == "admin:logout":
        return ("site", name)
    if name in PUBLIC_STATUS:
        return ("public-status", name)
    if name == "admin:app_list":
        return ("app-list",)
    if not name and full == "admin/(?P<url>.*)$":
        return ("catch-all",)
    if not name and full.startswith("^admin/") and "(?P<rest>" in full:
        return ("moved",)
    return ("unclassified", full, name)


def test_every_url_pattern_and_action_is_classified(walk):
    patterns = url_patterns()
    unclassified = [f"{full} ({name or 'unnamed'})" for full, name, _p in patterns
                    if classify(full, name)[0] == "unclassified"]
    assert not unclassified, ("URL patterns nobody classified (add them to CUSTOM_DOORS, with the permission "
                              f"they check): {unclassified}")
    names = {name for _full, name, _p in patterns}
    assert not set(CUSTOM_DOORS) - names, f"classified but gone: {set(CUSTOM_DOORS) - names}"

    request = _request(walk[0].objects["auth.user"])
    found = {(label, action) for label, model_admin in registered_models().items()
             for action in model_admin.get_actions(request)}
    known = set(ACTIONS) | {(label, "delete_selected") for label in registered_models()} | {
        (label, action) for label, action in found if label in SUPERUSER_ONLY}
    assert not found - known, f"admin actions nobody classified (add them to ACTIONS): {sorted(found - known)}"
    assert not set(ACTIONS) - found, f"classified but gone: {sorted(set(ACTIONS) - found)}"
    # The walk itself covers every pattern: a registered model without an object cannot be walked.
    assert not set(registered_models()) - set(walk[0].objects), "add an object of the new model to the world"


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


# --- walking ----------------------------------------------------------------------------------


def _fetch(client, user, method, url, data=None):
    if getattr(client, "walker", "nobody yet") != user:  # log in again only when the user changes
        client.logout()
        if user is not None:
            client.force_login(user)
        client.walker = user
    return getattr(client, method)(url, data or {})


def _refused(response) -> bool:
    return response.status_code == 403


def _to_login(response) -> bool:
    return response.status_code == 302 and "/admin/login/" in response["Location"]


def test_custom_pages_need_their_permission_and_the_company(walk, client):
    world, staff = walk
    failures = []
    for name, doors in CUSTOM_DOORS.items():
        for door in doors:
            kwargs = door.kwargs(world, "mine") if door.kwargs else {}
            url = reverse(name, kwargs=kwargs) + (door.query(world, "mine") if door.query else "")
            for method in door.methods:
                for who, user in (("no permission at all", staff.only(set())),
                                  ("every permission but the one needed",
                                   staff.all_but(set(door.perms) | set(door.without)))):
                    response = _fetch(client, user, method, url)
                    if not _refused(response):
                        failures.append(f"{method.upper()} {url} as {who}: {response.status_code}, expected 403")
                response = _fetch(client, None, method, url)
                if not _to_login(response):
                    failures.append(f"{method.upper()} {url} anonymous: {response.status_code}, expected the login")
            response = _fetch(client, staff.only(set(door.perms)), door.ok_method, url)
            if response.status_code not in door.ok or _to_login(response):
                failures.append(f"{door.ok_method.upper()} {url} with {door.perms}: {response.status_code}, "
                                f"expected {door.ok}")
            if door.company:
                other = reverse(name, kwargs=door.kwargs(world, "other"))
                response = _fetch(client, staff.outsider(), door.ok_method, other)
                page = response.content.decode()
                if not (_refused(response) and "You do not serve" in page and world.company(door.company, "other").name
                        in page and 'id="back"' in page):
                    failures.append(f"{other} (a company the user does not serve): {response.status_code}, "
                                    "expected a 403 saying why, with a way back")
    assert not failures, "\n".join(failures)


def _standard_url(world, label, suffix):
    app, model = label.split(".")
    if suffix in ("changelist", "add"):
        return reverse(f"admin:{app}_{model}_{suffix}")
    return reverse(f"admin:{app}_{model}_{suffix}", args=[world.objects[label].pk])


def _needed(label, suffix) -> set[str]:
    app, model = label.split(".")
    action = {"changelist": "view", "history": "view", "change": "view", "add": "add", "delete": "delete"}[suffix]
    return {f"{app}.{action}_{model}"} | ALSO_NEEDED.get((label, suffix), set())


def _without(label, suffix) -> set[str]:
    app, model = label.split(".")
    if suffix in ("changelist", "history", "change"):
        return {f"{app}.view_{model}", f"{app}.change_{model}"}  # change includes seeing
    return _needed(label, suffix)


def test_standard_admin_pages_need_their_model_permission(walk, client, superuser):
    world, staff = walk
    failures = []
    for full, name, _pattern in url_patterns():
        kind = classify(full, name)
        if kind[0] != "standard":
            continue
        _kind, label, suffix = kind
        url = _standard_url(world, label, suffix)
        for who, user, methods in (("no permission at all", staff.only(set()), ("get",)),
                                   ("every permission but this model's", staff.all_but(_without(label, suffix)),
                                    ("get", "post"))):
            for method in methods:
                response = _fetch(client, user, method, url)
                if not _refused(response):
                    failures.append(f"{method.upper()} {url} as {who}: {response.status_code}, expected 403")
        if not _to_login(_fetch(client, None, "get", url)):
            failures.append(f"GET {url} anonymous: expected the login")
        response = _fetch(client, staff.only(_needed(label, suffix)), "get", url)
        withheld = (label in SUPERUSER_ONLY or (label in READ_ONLY and suffix in ("add", "delete"))
                    or (label in ADD_SUPERUSER_ONLY and suffix == "add"))
        expected = 403 if withheld else 200
        if response.status_code != expected:
            failures.append(f"GET {url} with {_needed(label, suffix)}: {response.status_code}, expected {expected}")
        if label in SUPERUSER_ONLY and suffix in ("changelist", "change") \
                and _fetch(client, superuser, "get", url).status_code != 200:
            failures.append(f"GET {url} as superuser: expected 200")
    assert not failures, "\n".join(failures)


def test_other_pages_of_the_site(walk, client):
    world, staff = walk
    nobody = staff.only(set())
    failures = []
    for full, name, _pattern in url_patterns():
        kind = classify(full, name)
        if kind[0] == "site":
            if name == "admin:logout":
                continue  # POST only; logging out is open to whoever is logged in
            url = reverse(name) if name != "admin:view_on_site" else reverse(name, args=[1, 1])
            response = _fetch(client, nobody, "get", url)
            if name in STAFF_PAGES and response.status_code != 200:
                failures.append(f"{url}: {response.status_code}, expected 200 for any staff member")
            if name in PUBLIC_PAGES and _fetch(client, None, "get", url).status_code != 200:
                failures.append(f"{url}: expected 200 for anyone")
            if name in CLOSED and response.status_code not in CLOSED[name]:
                failures.append(f"{url}: {response.status_code}, expected {CLOSED[name]}")
            if name not in PUBLIC_PAGES and not _to_login(_fetch(client, None, "get", url)):
                failures.append(f"{url} anonymous: expected the login")
        elif kind[0] == "public-status":
            response = _fetch(client, None, "get", reverse(name))
            if response.status_code not in (200, 503) or "company" in response.content.decode().lower():
                failures.append(f"{name} anonymous: {response.status_code}, expected 200/503 naming no company")
        elif kind[0] == "object-redirect":
            label = kind[1]
            app, model = label.split(".")
            url = f"/admin/{app}/{model}/{world.objects[label].pk}/"
            response = _fetch(client, nobody, "get", url)
            if response.status_code != 302 or not response["Location"].endswith("/change/"):
                failures.append(f"{url}: {response.status_code}, expected a redirect to its change page")
            elif _fetch(client, nobody, "get", response["Location"]).status_code != 403:
                failures.append(f"{url}: its change page did not refuse")
        elif kind[0] == "app-list":
            for app in {label.split(".")[0] for label in registered_models()}:
                response = _fetch(client, nobody, "get", reverse("admin:app_list", args=[app]))
                if response.status_code != 404:
                    failures.append(f"app list {app} without permissions: {response.status_code}, expected 404")
            if _fetch(client, staff.only({"bookkeeping.view_voucher"}), "get",
                      reverse("admin:app_list", args=["bookkeeping"])).status_code != 200:
                failures.append("app list bookkeeping with view_voucher: expected 200")
        elif kind[0] == "catch-all":
            if _fetch(client, nobody, "get", "/admin/no-such-page/").status_code != 404:
                failures.append("/admin/no-such-page/: expected 404")
        elif kind[0] == "moved":
            response = _fetch(client, nobody, "get", f"/admin/bookkeeping/expensedocument/{world.objects['expense_documents.expensedocument'].pk}/change/")
            if response.status_code != 301 or _fetch(client, nobody, "get", response["Location"]).status_code != 403:
                failures.append("a moved admin address must redirect, and the new page refuse")
    assert not failures, "\n".join(failures)


@pytest.fixture
def actions_run(monkeypatch):
    """The names of the admin actions that actually ran (Django calls an action only if offered)."""
    import functools

    ran: list[str] = []
    original = admin.ModelAdmin.get_actions

    def recording(func, name):
        @functools.wraps(func)
        def recorded(*args, **kwargs):
            ran.append(name)
            return func(*args, **kwargs)

        return recorded

    def spying(self, request):
        return {name: (recording(func, name), name, description)
                for name, (func, _name, description) in original(self, request).items()}

    monkeypatch.setattr(admin.ModelAdmin, "get_actions", spying)
    return ran


def test_every_admin_action_needs_its_permission(walk, client, superuser, actions_run):
    world, staff = walk
    failures = []
    for label, model_admin in registered_models().items():
        app, model = label.split(".")
        changelist = reverse(f"admin:{app}_{model}_changelist")
        for action in model_admin.get_actions(_request(superuser)):
            if label in SUPERUSER_ONLY:
                needed = {SUPERUSER}
            elif action == "delete_selected":
                needed = {f"{app}.delete_{model}"}
            else:
                needed = set(ACTIONS[(label, action)])
            seeing = {f"{app}.view_{model}"}
            data = {"action": action, "_selected_action": [world.objects[label].pk], "index": 0}
            without = staff.all_but(needed) if needed != {SUPERUSER} else staff.all_but(set())
            if action in model_admin.get_actions(_request(without)):
                failures.append(f"{label} {action}: offered to a user without {needed}")
            actions_run.clear()
            response = _fetch(client, without, "post", changelist, data)
            if action in actions_run or response.status_code not in (200, 302, 403):
                failures.append(f"{label} {action} ran without {needed}: {response.status_code}")
            user = superuser if needed == {SUPERUSER} else staff.only(needed | seeing)
            actions_run.clear()
            response = _fetch(client, user, "post", changelist, data)
            shown = [str(m) for m in get_messages(response.wsgi_request)]
            if action not in actions_run or response.status_code not in (200, 302):
                failures.append(f"{label} {action} did not run with {needed}: {response.status_code} {shown}")
    assert not failures, "\n".join(failures)


def test_a_staff_member_without_view_permission_cannot_send(walk, client):
    """The issue's own finding: 'view' alone ran "Send selected vouchers" (draft → queued)."""
    world, staff = walk
    voucher = world.objects["bookkeeping.voucher"]
    viewer = staff.only({"bookkeeping.view_voucher"})
    response = _fetch(client, viewer, "post", reverse("admin:bookkeeping_voucher_changelist"),
                      {"action": "send_selected", "_selected_action": [voucher.pk], "confirm": "yes", "index": 0})
    assert response.status_code in (200, 302)
    voucher.refresh_from_db()
    assert voucher.state == "draft"


def test_default_groups_hold_what_their_names_say(db):
    """Made by `migrate` alone; Administrator holds every permission of Kontera's apps except the technical
    rows and the audit trail's mutations; Reviewer only sees and exports; Bookkeeper cannot connect."""
    kontera = ("bookkeeping", "integrations", "expense_documents", "card_payments")
    every = {_name(p) for p in Permission.objects.select_related("content_type")
             .filter(content_type__app_label__in=kontera)}
    technical = {p for p in every if re.search(r"_(oauthstate|ratelimitslot)$", p)}
    superuser_only = {"bookkeeping.add_auditevent", "bookkeeping.change_auditevent", "bookkeeping.delete_auditevent",
                      "bookkeeping.add_company", "bookkeeping.delete_company"}

    def held(name):
        return {_name(p) for p in Group.objects.get(name=name).permissions.select_related("content_type")}

    assert held("Administrator") == every - technical - superuser_only
    reviewer = held("Reviewer (read only)")
    assert reviewer and all(".view_" in p or ".export_" in p for p in reviewer)
    assert {p for p in every - technical if ".view_" in p} <= reviewer
    bookkeeper = held("Bookkeeper")
    assert {"bookkeeping.send_voucher", "bookkeeping.import_journals", "expense_documents.sync_expensedocument",
            "card_payments.sync_netseasy"} <= bookkeeper
    assert not {CONNECT, "integrations.change_integration", "card_payments.configure_netseasy",
                "card_payments.confirm_netseasy"} & bookkeeper
