"""Swedish and Danish ship with the product (compiled catalogs are committed)."""

from django.utils import translation

from bookkeeping.models import VoucherState
from integrations.models import IntegrationStatus


def test_states_in_swedish_and_danish():
    with translation.override("sv"):
        assert str(VoucherState.POSTED.label) == "Bokförd"
        assert str(IntegrationStatus.NEEDS_REAUTHORISATION.label) != "Needs re-authorisation"
    with translation.override("da"):
        assert str(VoucherState.POSTED.label) == "Bogført"
        assert str(VoucherState.OPTED_OUT.label) == "Fravalgt"


def test_admin_follows_the_browser_language(client, db):
    assert "Logga in" in client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Log ind" in client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="da").content.decode()
