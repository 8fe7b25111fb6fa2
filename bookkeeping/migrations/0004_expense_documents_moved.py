from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('bookkeeping', '0003_expense_documents'),
    ]

    operations = [
        # The expense-document models moved to the expense_documents app with their tables: state only.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='expenseline',
                    name='document',
                ),
                migrations.RemoveField(
                    model_name='workflowrule',
                    name='company',
                ),
                migrations.RemoveField(
                    model_name='workflowrule',
                    name='payment_method',
                ),
                migrations.DeleteModel(
                    name='ExpenseDocument',
                ),
                migrations.DeleteModel(
                    name='ExpenseLine',
                ),
                migrations.DeleteModel(
                    name='WorkflowRule',
                ),
            ],
        ),
    ]
