"""The default groups come from `migrate` alone, and come back after `flush` (which empties every table:
the transactional tests do it after each test)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from bookkeeping.migrations_support import DEFAULT_GROUPS


def holdings() -> dict[str, set[str]]:
    return {group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
            for group in Group.objects.filter(name__in=DEFAULT_GROUPS).prefetch_related("permissions__content_type")}


@pytest.mark.django_db(transaction=True)
def test_flush_brings_the_groups_back_as_the_migrations_made_them():
    before = holdings()
    assert set(before) == set(DEFAULT_GROUPS) and all(before.values())
    call_command("flush", interactive=False, verbosity=0)
    assert holdings() == before


@pytest.mark.django_db(transaction=True)
def test_migrating_again_changes_nothing():
    before = holdings()
    call_command("migrate", "bookkeeping", "0004", verbosity=0)  # the grants' migrations are undone …
    call_command("migrate", verbosity=0)  # … and done again: the same groups, the same permissions
    assert holdings() == before
