"""The shared cache lives in the database unless REDIS_URL is set: ``migrate`` alone creates its table.

Every process (web, workers on any machine) shares it, e.g. for dispatch tickets. The table is made
whatever CACHES says today, so switching Redis off later still finds it. Same layout as
``manage.py createcachetable`` (that command's own code makes it).
"""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "kontera_cache"


def create_cache_table(apps, schema_editor):
    command = CreateCacheTable(no_color=True)
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop_cache_table(apps, schema_editor):
    if TABLE in schema_editor.connection.introspection.table_names():
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, drop_cache_table, elidable=False)]
