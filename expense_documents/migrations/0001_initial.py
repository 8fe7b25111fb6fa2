import django.core.validators
import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models

from bookkeeping.migrations_support import carry_over


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('django_q', '0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more'),
        ('bookkeeping', '0004_expense_documents_moved'),
    ]

    operations = [
        # The tables exist already (created by bookkeeping 0003): this app takes over their state.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='ExpenseDocument',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('type', models.CharField(choices=[('invoice', 'Supplier invoice'), ('receipt', 'Receipt')], default='invoice', max_length=10, verbose_name='type')),
                        ('reference', models.CharField(help_text='Unique per company; importing the same reference again updates this document.', max_length=100, verbose_name='reference')),
                        ('supplier_name', models.CharField(max_length=200, verbose_name='supplier')),
                        ('supplier_vat', models.CharField(blank=True, max_length=30, verbose_name='supplier VAT/CVR number')),
                        ('document_date', models.DateField(verbose_name='document date')),
                        ('due_date', models.DateField(blank=True, help_text='Invoices: becomes the payment date of the credit purchase in Dinero.', null=True, verbose_name='due date')),
                        ('description', models.CharField(blank=True, max_length=200, verbose_name='description')),
                        ('currency', models.CharField(default='DKK', max_length=3, verbose_name='currency')),
                        ('amount_dkk', models.DecimalField(blank=True, decimal_places=2, help_text='Foreign currency only: the DKK amount actually drawn from the bank. Dinero books DKK; without it the document waits instead of guessing a rate.', max_digits=14, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0.00'))], verbose_name='amount drawn in DKK')),
                        ('attachment', models.FileField(blank=True, help_text='PDF or image, at most 6 MB.', upload_to='expenses/%Y/%m/', verbose_name='attached file')),
                        ('notes', models.TextField(blank=True, verbose_name='notes')),
                        ('department', models.CharField(blank=True, help_text="Kept in Kontera only: not synced to Dinero (Dinero's API has no departments or projects).", max_length=100, verbose_name='department')),
                        ('project', models.CharField(blank=True, help_text="Kept in Kontera only: not synced to Dinero (Dinero's API has no departments or projects).", max_length=100, verbose_name='project')),
                        ('used_error_account', models.BooleanField(default=False, editable=False, help_text='A line had no category and was posted to the error account: recategorise it.', verbose_name='error account used')),
                        ('needs_sync', models.BooleanField(default=True, editable=False, help_text='New or changed since it was last handed to the sync.', verbose_name='needs sync')),
                        ('synced_at', models.DateTimeField(blank=True, editable=False, null=True, verbose_name='last synced')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                        ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='expense_documents', to='bookkeeping.company', verbose_name='company')),
                        ('payment_method', models.ForeignKey(blank=True, help_text='Receipts: how it was paid (its counter account).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='bookkeeping.paymentmethod', verbose_name='payment method')),
                        ('voucher', models.OneToOneField(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='expense_document', to='bookkeeping.voucher', verbose_name='voucher')),
                    ],
                    options={
                        'verbose_name': 'expense document',
                        'verbose_name_plural': 'expense documents',
                        'db_table': 'bookkeeping_expensedocument',
                        'ordering': ['-document_date', '-id'],
                        'permissions': [('import_expensedocument', 'Can import expense documents'), ('sync_expensedocument', 'Can sync expense documents to Dinero')],
                    },
                ),
                migrations.CreateModel(
                    name='ExpenseLine',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('position', models.PositiveIntegerField(default=0, verbose_name='position')),
                        ('amount', models.DecimalField(decimal_places=2, max_digits=14, validators=[django.core.validators.MinValueValidator(Decimal('0.01'))], verbose_name='amount incl. VAT')),
                        ('vat_code', models.CharField(blank=True, help_text='e.g. I25; empty for no VAT.', max_length=20, verbose_name='VAT code')),
                        ('category', models.PositiveIntegerField(blank=True, help_text='A profit and loss (drift) account. Empty: the error account is used and the document flagged.', null=True, verbose_name='category (account)')),
                        ('text', models.CharField(blank=True, max_length=200, verbose_name='text')),
                        ('document', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='expense_documents.expensedocument', verbose_name='document')),
                    ],
                    options={
                        'verbose_name': 'expense line',
                        'verbose_name_plural': 'expense lines',
                        'db_table': 'bookkeeping_expenseline',
                        'ordering': ['document', 'position', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='WorkflowRule',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100, verbose_name='name')),
                        ('active', models.BooleanField(default=True, verbose_name='active')),
                        ('action', models.CharField(choices=[('opt_out_invoices', 'Opt out of sync for invoices matching …'), ('opt_out_receipts', 'Opt out of sync for receipts matching …'), ('opt_out_documents', 'Opt out of sync for documents matching …')], default='opt_out_documents', max_length=30, verbose_name='action')),
                        ('supplier_contains', models.CharField(blank=True, help_text="Case-insensitive, in the supplier's name or VAT number.", max_length=100, verbose_name='supplier contains')),
                        ('category', models.PositiveIntegerField(blank=True, help_text='Matches when any line uses this account.', null=True, verbose_name='category (account)')),
                        ('min_amount', models.DecimalField(blank=True, decimal_places=2, max_digits=14, null=True, verbose_name='amount from')),
                        ('max_amount', models.DecimalField(blank=True, decimal_places=2, help_text='The document total incl. VAT, in DKK (the DKK bank amount for foreign currency).', max_digits=14, null=True, verbose_name='amount up to')),
                        ('position', models.PositiveIntegerField(default=0, verbose_name='order')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                        ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='workflow_rules', to='bookkeeping.company', verbose_name='company')),
                        ('payment_method', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='bookkeeping.paymentmethod', verbose_name='payment method')),
                    ],
                    options={
                        'verbose_name': 'workflow rule',
                        'verbose_name_plural': 'workflow rules',
                        'db_table': 'bookkeeping_workflowrule',
                        'ordering': ['company', 'position', 'id'],
                    },
                ),
                migrations.AddField(
                    model_name='expensedocument',
                    name='opted_out_by',
                    field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='opted_out_documents', to='expense_documents.workflowrule', verbose_name='opted out by rule'),
                ),
                migrations.AddIndex(
                    model_name='expensedocument',
                    index=models.Index(fields=['company', 'needs_sync'], name='expense_needs_sync_idx'),
                ),
                migrations.AddConstraint(
                    model_name='expensedocument',
                    constraint=models.UniqueConstraint(fields=('company', 'reference'), name='expense_reference_unique'),
                ),
            ],
        ),
        # Permissions and admin history follow the models: their content types change app label.
        carry_over(
            from_app="bookkeeping", to_app="expense_documents",
            models=("expensedocument", "expenseline", "workflowrule"),
            schedule_funcs={"bookkeeping.tasks_expenses.sync_documents": "expense_documents.tasks.sync_documents"},
        ),
    ]
