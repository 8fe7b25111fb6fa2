"""An expense line's category becomes the expense tool's own value (a name or an id, as text); the
account numbers stored so far stay valid as their text (a Dinero account passes as itself).

Three steps, each its own migration: PostgreSQL cannot alter a table in the transaction that
updated its rows (pending deferred-constraint events), whichever way the migrations run.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("expense_documents", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="expenseline",
            name="category",
            field=models.CharField(blank=True, max_length=100, null=True, verbose_name="category"),
        ),
    ]
