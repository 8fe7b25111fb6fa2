"""The Nets Easy settings' accounts become the company's account mappings (nothing lost).

Before, each Nets Easy integration kept its accounts in its own settings; now "which account" lives
in one table for all three flows. Every account of every existing integration becomes the mapping
row the settings page edits from now on (kind, key), and leaves the settings. A mapping row that
existed already for the same (kind, key) was read by no flow before; the account that was in use —
the one from the settings — is kept, and the earlier row's account is named in the row's note.
Reversible: the rows are written back into the settings (the rows stay).
"""

from django.db import migrations

ROWS = {
    "sales_account_se": ("sales_region", "se"),
    "sales_account_eu": ("sales_region", "eu"),
    "sales_account_world": ("sales_region", "world"),
    "sales_account_eu_b2b": ("sales_region", "eu_b2b"),
    "receivable_account": ("receivable", "*"),
    "bank_account": ("bank", "*"),
    "fee_account": ("fee", "*"),
}


def _number(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def settings_to_rows(apps, schema_editor):
    Integration = apps.get_model("integrations", "Integration")
    AccountMapping = apps.get_model("bookkeeping", "AccountMapping")
    for integration in Integration.objects.filter(system="netseasy"):
        settings = dict(integration.settings or {})
        wanted = {}
        for name, row in ROWS.items():
            number = _number(settings.pop(name, None))
            if number:
                wanted[row] = number
        vat = settings.pop("vat_accounts", None) or {}
        if isinstance(vat, dict):
            for rate, account in vat.items():
                number = _number(account)
                if number:
                    wanted[("output_vat", str(rate))] = number
        for (kind, key), number in wanted.items():
            mapping = AccountMapping.objects.filter(company_id=integration.company_id, system="fortnox", kind=kind,
                                                    key=key).first()
            if mapping is None:
                AccountMapping.objects.create(company_id=integration.company_id, system="fortnox", kind=kind, key=key,
                                              account_number=number, note="Nets Easy")
            elif mapping.account_number != number:
                mapping.note = f"Nets Easy (before: {mapping.account_number})"[:200]
                mapping.account_number = number
                mapping.save(update_fields=["account_number", "note"])
        if settings != (integration.settings or {}):
            integration.settings = settings
            integration.save(update_fields=["settings"])


def rows_to_settings(apps, schema_editor):
    Integration = apps.get_model("integrations", "Integration")
    AccountMapping = apps.get_model("bookkeeping", "AccountMapping")
    for integration in Integration.objects.filter(system="netseasy"):
        rows = {(m.kind, m.key): m.account_number for m in AccountMapping.objects.filter(
            company_id=integration.company_id, system="fortnox",
            kind__in=["sales_region", "receivable", "bank", "fee", "output_vat"])}
        settings = dict(integration.settings or {})
        for name, row in ROWS.items():
            if rows.get(row):
                settings[name] = rows[row]
        vat = {key: number for (kind, key), number in rows.items() if kind == "output_vat" and number}
        if vat:
            settings["vat_accounts"] = vat
        integration.settings = settings
        integration.save(update_fields=["settings"])


class Migration(migrations.Migration):

    dependencies = [
        ("card_payments", "0002_action_waits_for_mappings"),
        ("bookkeeping", "0005_mappings_drive_the_flows"),
        ("integrations", "0003_card_payments_moved"),
    ]

    operations = [
        migrations.RunPython(settings_to_rows, rows_to_settings),
    ]
