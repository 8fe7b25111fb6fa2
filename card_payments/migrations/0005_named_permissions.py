from django.db import migrations

from bookkeeping.migrations_support import ADMINISTRATOR, BOOKKEEPER, REVIEWER, default_group_grants

# The card-payment flow's part of the default groups (see bookkeeping/migrations_support.py):
# bookkeepers sync and settle payouts; only administrators change the settings or start booking.
GRANTS = {
    REVIEWER: ["card_payments.view_*"],
    BOOKKEEPER: ["card_payments.view_*", "card_payments.sync_netseasy", "card_payments.mark_payout_handled",
                 "card_payments.report_problem"],
    ADMINISTRATOR: ["card_payments.*"],
}


class Migration(migrations.Migration):

    dependencies = [
        ('card_payments', '0004_cockpit'),
        ('bookkeeping', '0008_named_permissions'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='netspayout',
            options={'ordering': ['-date', '-id'], 'permissions': [('configure_netseasy', 'Can change the Nets Easy settings and secret key'), ('confirm_netseasy', 'Can start automatic booking of Nets Easy payouts (OK)'), ('sync_netseasy', 'Can sync Nets Easy payouts'), ('mark_payout_handled', 'Can mark payouts as booked by hand')], 'verbose_name': 'Nets Easy payout', 'verbose_name_plural': 'Nets Easy payouts'},
        ),
        migrations.AlterModelOptions(
            name='problemreport',
            options={'ordering': ['-created_at', '-id'], 'permissions': [('report_problem', 'Can report a problem to support')], 'verbose_name': 'problem report', 'verbose_name_plural': 'problem reports'},
        ),
        default_group_grants(GRANTS),
    ]
