from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0002_netseasy'),
    ]

    operations = [
        # The Nets Easy models moved to the card_payments app with their tables: state only.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='netspaymentaction',
                    name='company',
                ),
                migrations.RemoveField(
                    model_name='netspaymentaction',
                    name='payout',
                ),
                migrations.RemoveField(
                    model_name='netspaymentaction',
                    name='voucher',
                ),
                migrations.RemoveField(
                    model_name='netspayout',
                    name='company',
                ),
                migrations.RemoveField(
                    model_name='netspayout',
                    name='integration',
                ),
                migrations.RemoveField(
                    model_name='netspayout',
                    name='voucher',
                ),
                migrations.RemoveField(
                    model_name='problemreport',
                    name='company',
                ),
                migrations.RemoveField(
                    model_name='problemreport',
                    name='integration',
                ),
                migrations.RemoveField(
                    model_name='problemreport',
                    name='user',
                ),
                migrations.DeleteModel(
                    name='NetsPayment',
                ),
                migrations.DeleteModel(
                    name='NetsPaymentAction',
                ),
                migrations.DeleteModel(
                    name='NetsPayout',
                ),
                migrations.DeleteModel(
                    name='ProblemReport',
                ),
            ],
        ),
    ]
