# Named permissions, and the default groups that hold them (the core's and the connections' part;
# each flow's migration adds its own). `migrate` alone creates the groups; running it again changes
# nothing.

from django.db import migrations

from bookkeeping.migrations_support import ADMINISTRATOR, BOOKKEEPER, REVIEWER, default_group_grants

# What is only for superusers: who serves which company, the audit trail's rows, the technical rows.
TECHNICAL = ["-integrations.*_oauthstate", "-integrations.*_ratelimitslot"]
READ = ["bookkeeping.view_*", "integrations.view_*", *TECHNICAL]

GRANTS = {
    REVIEWER: [*READ, "bookkeeping.export_sie", "bookkeeping.export_accountmapping",
               "bookkeeping.export_paymentmethod"],
    BOOKKEEPER: [
        *READ,
        "bookkeeping.*_voucher", "bookkeeping.*_voucherrow", "bookkeeping.*_accountmapping",
        "bookkeeping.*_paymentmethodlist", "bookkeeping.*_paymentmethod",
        "bookkeeping.import_journals", "bookkeeping.export_sie", "integrations.import_master_data",
    ],
    ADMINISTRATOR: [
        "bookkeeping.*", "integrations.*", *TECHNICAL,
        "-bookkeeping.add_auditevent", "-bookkeeping.change_auditevent", "-bookkeeping.delete_auditevent",
        "-bookkeeping.add_company", "-bookkeeping.delete_company",
    ],
}


class Migration(migrations.Migration):

    dependencies = [
        ('bookkeeping', '0007_staff_preference'),
        ('integrations', '0006_named_permissions'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='accountmapping',
            options={'ordering': ['company', 'system', 'kind', 'key'], 'permissions': [('import_accountmapping', 'Can import account mappings'), ('export_accountmapping', 'Can export account mappings')], 'verbose_name': 'account mapping', 'verbose_name_plural': 'account mappings'},
        ),
        migrations.AlterModelOptions(
            name='paymentmethod',
            options={'ordering': ['payment_list', 'name'], 'permissions': [('import_paymentmethod', 'Can import payment methods'), ('export_paymentmethod', 'Can export payment methods')], 'verbose_name': 'payment method', 'verbose_name_plural': 'payment methods'},
        ),
        migrations.AlterModelOptions(
            name='voucher',
            options={'ordering': ['-date', '-id'], 'permissions': [('send_voucher', 'Can send vouchers to the target system'), ('reset_voucher', 'Can put vouchers back to draft'), ('import_journals', 'Can import journals (SIE 4, CSV)'), ('export_sie', 'Can export posted vouchers as SIE 4'), ('handle_outside_voucher', 'Can mark vouchers as handled outside Kontera')], 'verbose_name': 'voucher', 'verbose_name_plural': 'vouchers'},
        ),
        default_group_grants(GRANTS),
    ]
