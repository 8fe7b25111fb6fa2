# The expense-document flow's part of the default groups (see bookkeeping/migrations_support.py).

from django.db import migrations

from bookkeeping.migrations_support import ADMINISTRATOR, BOOKKEEPER, REVIEWER, default_group_grants

GRANTS = {
    REVIEWER: ["expense_documents.view_*"],
    BOOKKEEPER: ["expense_documents.*"],
    ADMINISTRATOR: ["expense_documents.*"],
}


class Migration(migrations.Migration):

    dependencies = [
        ('expense_documents', '0004_category_text'),
        ('bookkeeping', '0008_named_permissions'),
    ]

    operations = [default_group_grants(GRANTS)]
