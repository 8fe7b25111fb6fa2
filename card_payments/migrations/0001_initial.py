import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models

from bookkeeping.migrations_support import carry_over


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('django_q', '0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more'),
        ('bookkeeping', '0004_expense_documents_moved'),
        ('integrations', '0003_card_payments_moved'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables exist already (created by integrations 0002): this app takes over their state.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='NetsPayout',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('nets_id', models.CharField(max_length=64, verbose_name='Nets payout id')),
                        ('reference', models.CharField(blank=True, help_text='The reference on the bank statement.', max_length=64, verbose_name='bank reference')),
                        ('date', models.DateField(verbose_name='payout date')),
                        ('currency', models.CharField(max_length=3, verbose_name='currency')),
                        ('amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='payout amount')),
                        ('charged_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='charged')),
                        ('refunded_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='refunded')),
                        ('deposited_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='deposited')),
                        ('fees', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='fees')),
                        ('number_of_actions', models.PositiveIntegerField(default=0, verbose_name='payment actions')),
                        ('tax_details', models.JSONField(blank=True, default=dict, verbose_name='VAT per rate (Nets)')),
                        ('state', models.CharField(choices=[('new', 'New – not booked yet'), ('booked', 'Booked'), ('waiting_currency', 'Waiting – not in SEK, book by hand'), ('needs_attention', 'Needs attention – not booked'), ('residual_error', 'Reconciliation error – residual not zero'), ('handled_manually', 'Handled by hand')], default='new', max_length=20, verbose_name='state')),
                        ('state_message', models.TextField(blank=True, verbose_name='why')),
                        ('booked_accounts', models.JSONField(blank=True, default=dict, help_text='Reconciliation, bank and fee accounts when it was booked.', verbose_name='accounts used')),
                        ('residual', models.DecimalField(blank=True, decimal_places=2, help_text='Expected payout minus what is booked; must be 0.00.', max_digits=14, null=True, verbose_name='residual')),
                        ('booked_at', models.DateTimeField(blank=True, null=True, verbose_name='booked at')),
                        ('fetched_at', models.DateTimeField(auto_now_add=True, verbose_name='fetched at')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                        ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='nets_payouts', to='bookkeeping.company', verbose_name='company')),
                        ('integration', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='nets_payouts', to='integrations.integration', verbose_name='integration')),
                        ('voucher', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='bookkeeping.voucher', verbose_name='payout voucher')),
                    ],
                    options={
                        'verbose_name': 'Nets Easy payout',
                        'verbose_name_plural': 'Nets Easy payouts',
                        'db_table': 'integrations_netspayout',
                        'ordering': ['-date', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='NetsPaymentAction',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('nets_id', models.CharField(max_length=64, verbose_name='Nets id')),
                        ('payment_id', models.CharField(blank=True, max_length=64, verbose_name='payment id')),
                        ('action', models.CharField(choices=[('CHARGE', 'Charge'), ('REFUND', 'Refund'), ('DEPOSIT', 'Deposit')], max_length=10, verbose_name='action')),
                        ('amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='amount')),
                        ('vat_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='VAT')),
                        ('fee', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='fee')),
                        ('currency', models.CharField(max_length=3, verbose_name='currency')),
                        ('timestamp', models.DateTimeField(blank=True, null=True, verbose_name='time')),
                        ('booking_date', models.DateField(verbose_name='booking date')),
                        ('reference', models.CharField(blank=True, max_length=128, verbose_name='order reference')),
                        ('payment_method', models.CharField(blank=True, max_length=40, verbose_name='payment method')),
                        ('tax_details', models.JSONField(blank=True, default=dict, verbose_name='VAT per rate (Nets)')),
                        ('country', models.CharField(blank=True, max_length=3, verbose_name='customer country')),
                        ('region', models.CharField(blank=True, max_length=10, verbose_name='sales region')),
                        ('flag', models.TextField(blank=True, help_text="Booked as Nets reported it, but worth a look (e.g. VAT that does not match the customer's region).", verbose_name='check')),
                        ('problem', models.TextField(blank=True, verbose_name='why not booked')),
                        ('booked_at', models.DateTimeField(blank=True, null=True, verbose_name='booked at')),
                        ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='bookkeeping.company', verbose_name='company')),
                        ('voucher', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='bookkeeping.voucher', verbose_name='voucher')),
                        ('payout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='actions', to='card_payments.netspayout', verbose_name='payout')),
                    ],
                    options={
                        'verbose_name': 'Nets Easy payment action',
                        'verbose_name_plural': 'Nets Easy payment actions',
                        'db_table': 'integrations_netspaymentaction',
                        'ordering': ['payout', 'timestamp', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='ProblemReport',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('text', models.TextField(verbose_name='what happened')),
                        ('diagnostics', models.JSONField(blank=True, default=dict, verbose_name='diagnostics')),
                        ('emailed_to', models.CharField(blank=True, max_length=200, verbose_name='e-mailed to')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='reported at')),
                        ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='bookkeeping.company', verbose_name='company')),
                        ('integration', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='problem_reports', to='integrations.integration', verbose_name='integration')),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='reported by')),
                    ],
                    options={
                        'verbose_name': 'problem report',
                        'verbose_name_plural': 'problem reports',
                        'db_table': 'integrations_problemreport',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='NetsPayment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('payment_id', models.CharField(max_length=64, verbose_name='payment id')),
                        ('country', models.CharField(blank=True, max_length=3, verbose_name='customer country')),
                        ('is_company', models.BooleanField(default=False, verbose_name='company customer')),
                        ('currency', models.CharField(blank=True, max_length=3, verbose_name='currency')),
                        ('reference', models.CharField(blank=True, max_length=128, verbose_name='order reference')),
                        ('charges', models.JSONField(blank=True, default=dict, verbose_name='order lines per charge')),
                        ('refunds', models.JSONField(blank=True, default=dict, verbose_name='order lines per refund')),
                        ('fetched_at', models.DateTimeField(auto_now=True, verbose_name='fetched at')),
                        ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='bookkeeping.company', verbose_name='company')),
                    ],
                    options={
                        'verbose_name': 'Nets Easy payment',
                        'verbose_name_plural': 'Nets Easy payments',
                        'db_table': 'integrations_netspayment',
                        'constraints': [models.UniqueConstraint(fields=('company', 'payment_id'), name='nets_payment_cached_once')],
                    },
                ),
                migrations.AddConstraint(
                    model_name='netspayout',
                    constraint=models.UniqueConstraint(fields=('company', 'nets_id'), name='nets_payout_once'),
                ),
                migrations.AddConstraint(
                    model_name='netspaymentaction',
                    constraint=models.UniqueConstraint(fields=('company', 'nets_id'), name='nets_action_once'),
                ),
            ],
        ),
        # Permissions and admin history follow the models: their content types change app label.
        carry_over(
            from_app="integrations", to_app="card_payments",
            models=("netspayout", "netspaymentaction", "netspayment", "problemreport"),
            schedule_funcs={
                "bookkeeping.tasks_payouts.sync_all": "card_payments.tasks.sync_all",
                "bookkeeping.tasks_payouts.test_voucher_followups": "card_payments.tasks.test_voucher_followups",
            },
        ),
    ]
