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
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
        app_config.models_module = None


def grant_to_default_groups(apps, schema_editor, grants: dict[str, list[str]]) -> None:
    """Create the default groups (idempotent) and give each the permissions named in ``grants``.

    ``grants`` maps a group to ``"app_label.codename"`` entries; a codename may be a pattern
    (``"bookkeeping.view_*"``) and an entry starting with ``-`` takes matching ones away again.
    Permissions a group already holds are kept (an administrator may have added some).
    """
    from fnmatch import fnmatchcase

    using = schema_editor.connection.alias
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
        grant_to_default_groups(apps, schema_editor, grants)

    return migrations.RunPython(forwards, migrations.RunPython.noop)
