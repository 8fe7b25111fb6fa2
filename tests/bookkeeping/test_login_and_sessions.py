"""Admin logins are throttled (django-axes) and sessions end after a configurable idle time (issue 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


def login(client, password):
    return client.post(reverse("admin:login"), {"username": "lena", "password": password,
                                               "next": "/admin/"}, REMOTE_ADDR="10.1.2.3")


def test_too_many_wrong_passwords_lock_the_login(client, db):
    UserFactory(username="lena")  # password "pw-for-tests-123"
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "wrong").status_code == 200
    locked = login(client, "wrong")
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert "15 minutes" in locked.content.decode()
    still = login(client, "pw-for-tests-123")  # even the right password waits for the cool-off
    assert still.status_code == 429 and "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_clears_the_failures(client, db):
    UserFactory(username="lena")
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, "wrong")
    assert login(client, "pw-for-tests-123").status_code == 302
    client.logout()
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "wrong").status_code == 200  # counting starts again


def test_an_idle_session_ends(client, db):
    user = UserFactory(username="lena")
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    session = client.session
    session.set_expiry(-1)  # as if the timeout passed since the last request
    session.save()
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_timeout_comes_from_the_environment():
    env = {**os.environ, "KONTERA_SESSION_TIMEOUT_MINUTES": "25", "DJANGO_SETTINGS_MODULE": "config.settings",
           "PYTHONPATH": str(ROOT)}
    printed = subprocess.run([sys.executable, "-c", "from django.conf import settings; "
                              "print(settings.SESSION_COOKIE_AGE, settings.SESSION_SAVE_EVERY_REQUEST)"],
                             env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert printed == ["1500", "True"]
