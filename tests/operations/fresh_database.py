"""Run by test_fresh_database.py in its own process, on a database that only `manage.py migrate` prepared.

Starts the Fortnox and Dinero sandboxes in this process, points Kontera at them, then goes through
the Fortnox OAuth callback (as the admin does) and `dinero_setup` — with the production cache (the
database cache table), nothing created by hand. Prints one JSON line with what happened.
"""

import json
import os
import sys
from urllib.parse import parse_qs, urlparse

from integrations.sandboxes.base import ServerThread, mount
from integrations.sandboxes.dinero import DineroSandbox
from integrations.sandboxes.fortnox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FortnoxSandbox

REDIRECT = "http://testserver/integrations/fortnox/callback"
TENANT = 1046823

fortnox, dinero = FortnoxSandbox(), DineroSandbox()
fortnox.seed_demo(redirect_uri=REDIRECT)
dinero.seed_demo()
server = ServerThread(mount({"/fortnox": fortnox, "/dinero": dinero})).start()
os.environ.update({
    "FORTNOX_API_URL": f"{server.url}/fortnox/3", "FORTNOX_OAUTH_URL": f"{server.url}/fortnox/oauth-v1",
    "FORTNOX_CLIENT_ID": DEMO_CLIENT_ID, "FORTNOX_CLIENT_SECRET": DEMO_CLIENT_SECRET, "FORTNOX_REDIRECT_URI": REDIRECT,
    "DINERO_API_URL": f"{server.url}/dinero", "DINERO_AUTH_URL": f"{server.url}/dinero/dineroapi/oauth/token",
    "DINERO_CLIENT_ID": "kontera-demo", "DINERO_CLIENT_SECRET": "kontera-demo-secret",
    "ALLOWED_HOSTS": "testserver", "DJANGO_SETTINGS_MODULE": "config.settings",
})

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from bookkeeping.models import Company, PaymentMethod, PaymentMethodList  # noqa: E402
from integrations.models import Integration  # noqa: E402
from integrations.tokens import FORTNOX_SCOPES  # noqa: E402
from tests.factories import UserFactory  # noqa: E402

result = {"cache_backend": settings.CACHES["default"]["BACKEND"]}
admin = UserFactory(username="operator", is_superuser=True)
# The organisation numbers of the sandboxes' demo companies: a connection is kept only when they match.
brf = Company.objects.create(name="Brf Exempelgården", slug="brf", country="SE", org_number="769600-1234")
integration = Integration.objects.create(company=brf, system="fortnox", status="active")
client = Client(raise_request_exception=False)
client.force_login(admin)
start = client.get(f"/integrations/fortnox/{integration.pk}/connect/")
state = parse_qs(urlparse(start["Location"]).query)["state"][0]
code = fortnox.authorize(DEMO_CLIENT_ID, TENANT, FORTNOX_SCOPES, REDIRECT, state=state)
callback = client.get("/integrations/fortnox/callback", {"code": code, "state": state})
integration.refresh_from_db()
result["callback"] = {"status": callback.status_code, "location": callback.get("Location", ""),
                      "connected": bool(integration.credentials.get("access_token"))}

aps = Company.objects.create(name="Demo ApS", slug="demo-aps", country="DK", base_currency="DKK",
                             org_number="12345678")
receipts = PaymentMethodList.objects.create(company=aps, name="Kvitteringer")
PaymentMethod.objects.create(payment_list=receipts, name="Firmakort", account_number=55010)
try:
    call_command("dinero_setup", "demo-aps", "--api-key", "demo-dinero-api-key", "--organization-id", "123456",
                 "--error-account", "7480", "--invoice-payment-method", "63000",
                 "--receipt-payment-methods", "Kvitteringer", "--json")
    result["dinero_setup"] = "ok"
except BaseException as exc:  # noqa: BLE001 - the test wants to see what went wrong
    result["dinero_setup"] = f"{type(exc).__name__}: {exc}"
result["dinero_status"] = Integration.objects.get(company=aps, system="dinero").status
server.stop()
sys.stdout.write("\nRESULT " + json.dumps(result) + "\n")
