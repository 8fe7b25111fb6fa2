"""Helpers for the migrations that moved models from one app to another with their tables.

Django keys content types (and so permissions, group permissions and admin history) by app label.
Renaming the existing content-type rows, instead of letting ``migrate`` create new ones, keeps every
permission a group or user was given. Queued schedules name their task by import path, so those
follow too. Both are no-ops on an empty database.
"""

from __future__ import annotations

from django.db import migrations


def move_content_types(apps, from_app: str, to_app: str, models) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in models:
        if ContentType.objects.filter(app_label=to_app, model=model).exists():
            continue  # already there (e.g. migrated before): nothing to carry over
        ContentType.objects.filter(app_label=from_app, model=model).update(app_label=to_app)


def rename_schedule_funcs(apps, renames: dict[str, str]) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    for old, new in renames.items():
        Schedule.objects.filter(func=old).update(func=new)


def carry_over(*, from_app: str, to_app: str, models, schedule_funcs: dict[str, str]) -> migrations.RunPython:
    """The RunPython that moves the content types and schedules of ``models`` (and back)."""

    def forwards(apps, schema_editor):
        move_content_types(apps, from_app, to_app, models)
        rename_schedule_funcs(apps, schedule_funcs)

    def backwards(apps, schema_editor):
        move_content_types(apps, to_app, from_app, models)
        rename_schedule_funcs(apps, {new: old for old, new in schedule_funcs.items()})

    return migrations.RunPython(forwards, backwards)


# --- the default groups -------------------------------------------------------------------------
# Stable keys: code, tests and the demo find the groups by these names (shown as they are).
BOOKKEEPER = "Bookkeeper"
REVIEWER = "Reviewer (read only)"
ADMINISTRATOR = "Administrator"
DEFAULT_GROUPS = (BOOKKEEPER, REVIEWER, ADMINISTRATOR)


def _create_permissions(apps, using: str) -> None:
    # On a fresh database post_migrate (which creates permissions) has not run yet when a data
    # migration runs; create them from the historical models so groups can hold them now.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        previous = getattr(app_config, "models_module", None)  # None for a historical app (skipped by create_permissions)
        app_config.models_module = previous or True
        try:
            create_permissions(app_config, verbosity=0, using=using, apps=apps)
        finally:
            app_config.models_module = previous


def grant_to_default_groups(apps, using: str, grants: dict[str, list[str]]) -> None:
    """Create the default groups (idempotent) and give each the permissions named in ``grants``.

    ``grants`` maps a group to ``"app_label.codename"`` entries; a codename may be a pattern
    (``"bookkeeping.view_*"``) and an entry starting with ``-`` takes matching ones away again.
    Permissions a group already holds are kept (an administrator may have added some).
    """
    from fnmatch import fnmatchcase

    _create_permissions(apps, using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    available = list(Permission.objects.using(using).select_related("content_type"))
    for name, entries in grants.items():
        chosen: set[int] = set()
        for entry in entries:
            remove = entry.startswith("-")
            app_label, pattern = entry.lstrip("-").split(".", 1)
            matched = {p.pk for p in available
                       if p.content_type.app_label == app_label and fnmatchcase(p.codename, pattern)}
            if not matched:
                raise LookupError(f"No permission matches {entry!r}")
            chosen = chosen - matched if remove else chosen | matched
        group, _created = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(*chosen)


def default_group_grants(grants: dict[str, list[str]]) -> migrations.RunPython:
    """The RunPython that gives the default groups ``grants`` (backwards: nothing to undo)."""

    def forwards(apps, schema_editor):
        grant_to_default_groups(apps, schema_editor.connection.alias, grants)

    operation = migrations.RunPython(forwards, migrations.RunPython.noop)
    operation.kontera_group_grants = grants  # found again by restore_default_groups
    return operation


def restore_default_groups(sender=None, *, using: str = "default", apps=None, **kwargs) -> bool:
    """A post_migrate receiver: when the default groups are gone although their migrations ran (after
    ``flush``, which empties every table), grant again what those migrations granted, in their order.
    The migrations stay the one place that says what each group holds."""
    from django.apps import apps as global_apps
    from django.db.migrations.loader import MigrationLoader

    apps = apps or global_apps
    Group = apps.get_model("auth", "Group")
    if Group.objects.using(using).filter(name__in=DEFAULT_GROUPS).count() == len(DEFAULT_GROUPS):
        return False
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key in _in_order(loader):
        for operation in loader.disk_migrations[key].operations:
            grants = getattr(operation, "kontera_group_grants", None)
            if grants:
                grant_to_default_groups(apps, using, grants)
    return True


def _in_order(loader) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for leaf in sorted(loader.graph.leaf_nodes()):
        for key in loader.graph.forwards_plan(leaf):
            if key not in seen and key in loader.disk_migrations:
                seen.append(key)
    return seen
