"""What staff see when a door is closed, a page is missing or something breaks: the admin's look, the
reason and a way back — never a traceback or settings; and `manage.py run` keeps DEBUG off (issue 14)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings
from django.urls import path, reverse

from config import urls as site_urls
from tests.factories import CompanyFactory, IntegrationFactory, UserFactory
from tests.netseasy_fixtures import nets_values


def _crash(request):
    raise RuntimeError("SECRET_KEY=do-not-show-this")


# This module doubles as a URLconf: the site's pages and handlers, plus one page that breaks.
urlpatterns = [path("crash/", _crash), *site_urls.urlpatterns]
handler403, handler404, handler500 = site_urls.handler403, site_urls.handler404, site_urls.handler500


@pytest.fixture
def administrator(db, client):
    """An administrator of one client who looks at another client's pages."""
    mine = CompanyFactory(name="Mitt Bolag AB", slug="mitt")
    user = UserFactory(username="admin-anna")
    user.groups.add(Group.objects.get(name="Administrator"))
    mine.members.add(user)
    client.force_login(user)
    return user


@pytest.mark.parametrize("page", ["nets", "fortnox", "dinero"])
def test_another_companys_setup_pages_say_why_and_link_back(client, administrator, page):
    theirs = CompanyFactory(name="Annat Bolag AB", slug="annat", country="DK" if page == "dinero" else "SE")
    if page == "nets":
        IntegrationFactory(company=theirs, system="netseasy", settings=nets_values())
        url = reverse("admin:card_payments_netspayout_settings", args=[theirs.pk])
    elif page == "fortnox":
        url = reverse("integrations:fortnox_connect", args=[IntegrationFactory(company=theirs, system="fortnox").pk])
    else:
        url = reverse("admin:dinero_setup_connect", args=[theirs.pk])
    response = client.get(url, HTTP_REFERER="http://testserver/admin/integrations/integration/")
    page_text = response.content.decode()
    assert response.status_code == 403
    assert "You do not serve Annat Bolag AB" in page_text and "Nothing was changed." in page_text
    assert 'href="http://testserver/admin/integrations/integration/" id="back"' in page_text
    assert 'id="site-name"' in page_text  # the admin's own header, not a bare "403 Forbidden"


def test_a_missing_permission_is_named_with_the_groups_that_hold_it(client, db):
    user = UserFactory(username="utan-rattigheter")
    client.force_login(user)
    page = client.get(reverse("admin:bookkeeping_voucher_import_journals")).content.decode()
    assert "lacks the permission “Can import journals (SIE 4, CSV)”" in page
    assert "through one of the groups “Administrator”, “Bookkeeper”" in page


def test_the_refusal_speaks_swedish(client, db):
    user = UserFactory(username="sven")
    client.force_login(user)
    page = client.get(reverse("admin:bookkeeping_voucher_import_journals"), HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Ditt konto saknar behörigheten" in page


def test_a_missing_page_is_friendly(client, administrator):
    response = client.get("/admin/bookkeeping/voucher/999999/change/")
    assert response.status_code in (302, 404)
    response = client.get("/admin/finns/inte/")
    assert response.status_code == 404 and "There is no such page" in response.content.decode()


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_crash_shows_a_friendly_page_without_traceback_or_settings(client, administrator):
    client.raise_request_exception = False
    response = client.get("/crash/")
    page = response.content.decode()
    assert response.status_code == 500 and "Something went wrong" in page
    assert "Traceback" not in page and "SECRET_KEY" not in page and "do-not-show-this" not in page


def test_index_alerts_need_the_permission_to_view_integrations(client, db):
    company = CompanyFactory(slug="larm")
    IntegrationFactory(company=company, system="fortnox", status="needs_reauthorisation", status_message="hemligt")
    user = UserFactory(username="utan-integrationer")
    company.members.add(user)
    client.force_login(user)
    assert "hemligt" not in client.get("/admin/").content.decode()
