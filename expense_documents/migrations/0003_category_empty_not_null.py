"""Step 2 of 3 (see 0002): a line without a category has an empty text, not NULL."""

from django.db import migrations


def empty_for_none(apps, schema_editor):
    ExpenseLine = apps.get_model("expense_documents", "ExpenseLine")
    ExpenseLine.objects.filter(category__isnull=True).update(category="")


def none_for_empty(apps, schema_editor):
    ExpenseLine = apps.get_model("expense_documents", "ExpenseLine")
    ExpenseLine.objects.filter(category="").update(category=None)
    for line in ExpenseLine.objects.exclude(category__isnull=True).only("pk", "category"):
        if not str(line.category).isdigit():
            line.category = None  # a name has no account number to go back to
            line.save(update_fields=["category"])


class Migration(migrations.Migration):

    dependencies = [
        ("expense_documents", "0002_category_is_the_sources"),
    ]

    operations = [
        migrations.RunPython(empty_for_none, none_for_empty),
    ]
