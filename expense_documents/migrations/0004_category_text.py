"""Step 3 of 3 (see 0002): the category is text, empty when the line has none."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("expense_documents", "0003_category_empty_not_null"),
    ]

    operations = [
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
