"""An expense line's category becomes the expense tool's own value (a name or an id, as text); the
account numbers stored so far stay valid as their text (a Dinero account passes as itself)."""

from django.db import migrations, models


def empty_for_none(apps, schema_editor):
    ExpenseLine = apps.get_model("expense_documents", "ExpenseLine")
    ExpenseLine.objects.filter(category__isnull=True).update(category="")


def none_for_empty(apps, schema_editor):
    ExpenseLine = apps.get_model("expense_documents", "ExpenseLine")
    ExpenseLine.objects.filter(category="").update(category=None)
    for line in ExpenseLine.objects.exclude(category__isnull=True):
        if not str(line.category).isdigit():
            line.category = None  # a name has no number to go back to
            line.save(update_fields=["category"])


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
        migrations.RunPython(empty_for_none, none_for_empty),
        migrations.AlterField(
            model_name="expenseline",
            name="category",
            field=models.CharField(
                blank=True, default="", max_length=100, verbose_name="category",
                help_text="The expense tool's category, by name or id (a Dinero account number passes as itself). "
                          "The account mappings translate it into a Dinero purchase account (drift) and VAT code. "
                          "Empty: the error account is used and the document flagged."),
        ),
    ]
