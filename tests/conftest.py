"""Shared fixtures. External systems are reached only over HTTP, through the sandboxes."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.utils import translation

from tests import factories

ON_POSTGRES = "postgres" in settings.DATABASES["default"]["ENGINE"]


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (run with DATABASE_URL=postgres://…)")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path, monkeypatch):
    from django_q.conf import Conf

    from bookkeeping.selectors.plans import forget_plan_snapshots
    from bookkeeping.services.sending import forget_last_success_marks

    # Tasks run inline in tests (django-q2 reads its settings once, at import).
    monkeypatch.setattr(Conf, "SYNC", True)
    forget_plan_snapshots()
    forget_last_success_marks()
    # A request with Accept-Language leaves its language active in the thread; start each test in English.
    translation.activate("en")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.KONTERA_UPLOAD_DIR = str(tmp_path / "uploads")
    settings.KONTERA_ENCRYPTION_KEYS = [os.environ.get("KONTERA_TEST_KEY", "w2HA2esPzdVlPn983o8eiJTHTAwq3zr6EA66Yz4nkV4=")]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # A dispatcher's batches run in its own thread here (the test's transaction and virtual clock are that
    # thread's); tests/operations/test_send_lanes.py runs them in threads, on committed data.
    settings.KONTERA_SEND_THREADS = 0
    # locmem keeps its entries across tests in one process: each test starts with nothing remembered (a
    # dispatcher ticket of an earlier test whose kick ran no task would keep this test's kick from queueing
    # a dispatcher for 20 s; a Dinero contact of an earlier test's sandbox).
    from django.core.cache import cache

    cache.clear()
    # Pages render without `collectstatic` (production's manifest storage needs it; tests/operations prove that).
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture(autouse=True)
def _voucher_totals_hold(request):
    """After every test that used the database: each voucher's stored totals equal its rows' sums. So every
    write path the suite exercises (imports, expense documents, payouts, the admin's row editing, …) is
    checked to keep them, not only the ones tests/bookkeeping/test_large_lists.py names."""
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db", "live_server"} & set(
        request.fixturenames)
    if uses_db:
        # The database set up from here is torn down after this fixture: the check below still reads it.
        request.getfixturevalue("_django_db_helper")
    yield
    if not uses_db:
        return
    from django.db import DatabaseError, connection

    if connection.needs_rollback:
        return  # the test ended inside a broken transaction on purpose: nothing can be read
    try:
        wrong = factories.vouchers_with_wrong_totals()
    except DatabaseError:
        return
    assert not wrong, f"stored totals differ from the rows' sums (voucher id, stored, summed): {wrong}"


@pytest.fixture
def company(db):
    # The same organisation number as the Fortnox sandbox's seeded tenant: connecting checks it.
    return factories.CompanyFactory(name="Brf Exempelgården", slug="brf-exempel", org_number="769600-1234")


@pytest.fixture
def staff_user(db):
    return factories.UserFactory(username="anna")


@pytest.fixture
def superuser(db):
    return factories.UserFactory(username="root", is_superuser=True)


# --- sandboxes, served over real HTTP -----------------------------------------------------------


class Switchboard:
    """One WSGI app on one port that forwards to whichever sandbox the current test uses."""

    def __init__(self):
        self.apps = {}

    def __call__(self, environ, start_response):
        from werkzeug.wrappers import Response

        path = environ.get("PATH_INFO", "")
        for prefix, app in self.apps.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ = dict(environ)
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):]
                return app(environ, start_response)
        return Response("no sandbox mounted", status=404)(environ, start_response)


@pytest.fixture(scope="session")
def sandbox_server():
    from integrations.sandboxes.base import ServerThread

    board = Switchboard()
    server = ServerThread(board).start()
    server.board = board
    yield server
    server.stop()


@pytest.fixture
def sandbox_clock():
    """One clock for every sandbox of a test (wall time plus what the test and the pacing advanced)."""
    from integrations.sandboxes.base import SandboxClock

    return SandboxClock()


@pytest.fixture
def virtual_time(sandbox_clock, monkeypatch):
    """Kontera's pacing reads the sandboxes' clock, and its sleeps advance that clock instead of waiting.

    The sandboxes enforce their rate limits on the same clock, so a pacing mistake still shows as a 429;
    only the waiting is skipped. Token expiry stays on the real clock (a test advances the sandbox's to
    make Fortnox consider a token expired before Kontera knows).
    """
    import integrations.http as http
    import integrations.ratelimit as ratelimit
    from tests.dinero_fixtures import VirtualTime

    virtual = VirtualTime(sandbox_clock)
    monkeypatch.setattr(ratelimit, "time", virtual)
    monkeypatch.setattr(http, "time", virtual)
    return virtual


FORTNOX_CLIENT = ("kontera-test", "kontera-test-secret")
FORTNOX_REDIRECT = "http://testserver/integrations/fortnox/callback"


@pytest.fixture
def fortnox_sandbox(sandbox_server, settings, sandbox_clock, virtual_time):
    """A fresh Fortnox sandbox with one seeded tenant; Kontera's settings point at it (paced on virtual time)."""
    from integrations.sandboxes.fortnox import FortnoxSandbox

    sandbox = FortnoxSandbox()
    sandbox.clock = sandbox_clock  # before any tenant is added: tenants keep the clock they were given
    sandbox.register_client(*FORTNOX_CLIENT, [FORTNOX_REDIRECT])
    sandbox.add_tenant(1046823, "Brf Exempelgården", "769600-1234")
    sandbox_server.board.apps["/fortnox"] = sandbox
    settings.FORTNOX_API_URL = f"{sandbox_server.url}/fortnox/3"
    settings.FORTNOX_OAUTH_URL = f"{sandbox_server.url}/fortnox/oauth-v1"
    settings.FORTNOX_CLIENT_ID, settings.FORTNOX_CLIENT_SECRET = FORTNOX_CLIENT
    settings.FORTNOX_REDIRECT_URI = FORTNOX_REDIRECT
    settings.KONTERA_HTTP_TIMEOUT = (2.0, 3.0)
    sandbox.tenant_id = 1046823
    yield sandbox
    sandbox_server.board.apps.pop("/fortnox", None)


@pytest.fixture
def connected_fortnox(db, fortnox_sandbox, company):
    """A company whose Fortnox integration went through the OAuth code flow and imported its plan."""
    from bookkeeping.services.plans import chart_import
    from integrations import tokens
    from integrations.tokens import FORTNOX_SCOPES
    from tests.factories import IntegrationFactory

    integration = IntegrationFactory(company=company, system="fortnox", status="active")
    code = fortnox_sandbox.authorize(FORTNOX_CLIENT[0], fortnox_sandbox.tenant_id, FORTNOX_SCOPES, FORTNOX_REDIRECT)
    tokens.fortnox_exchange_code(integration=integration, code=code)
    integration.refresh_from_db()
    chart_import(integration=integration, actor="test")
    integration.refresh_from_db()
    return integration
from tests.netseasy_fixtures import *  # noqa
from tests.dinero_fixtures import *  # noqa
