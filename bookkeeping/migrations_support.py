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
