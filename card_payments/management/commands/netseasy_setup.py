"""``manage.py netseasy_setup COMPANY --secret-key … --start-date …``: the settings page, from the shell."""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from bookkeeping.management.base import KonteraCommand
from integrations.crypto import mask_secret

from ...services.activation import activation_check_key, activation_status, netseasy_settings_save
from ...services.settings import FIELD_LABELS, nets_accounts


class Command(KonteraCommand):
    help = ("Set up Nets Easy → Fortnox for a company: secret key, start date, accounts. Saving sends a test "
            "voucher to Fortnox; nothing is booked until `netseasy_confirm`.")

    def add_command_arguments(self, parser):
        parser.add_argument("company", help="The company's slug.")
        parser.add_argument("--secret-key", help="Nets Easy live secret key (kept if omitted on a re-run).")
        parser.add_argument("--start-date", required=True, help="Book payouts from this date (YYYY-MM-DD).")
        parser.add_argument("--sales-account-se", type=int, required=True)
        parser.add_argument("--sales-account-eu", type=int, required=True)
        parser.add_argument("--sales-account-world", type=int, required=True)
        parser.add_argument("--sales-account-eu-b2b", type=int, help="EU companies charged no VAT (BAS 3108).")
        parser.add_argument("--receivable-account", type=int, default=1580)
        parser.add_argument("--bank-account", type=int, default=1930)
        parser.add_argument("--fee-account", type=int, default=6040)
        parser.add_argument("--vat-account-25", type=int, default=2611)
        parser.add_argument("--vat-account-12", type=int, default=2621)
        parser.add_argument("--vat-account-6", type=int, default=2631)
        parser.add_argument("--sales-series", default="A")
        parser.add_argument("--payout-series", default="A")
        parser.add_argument("--mode", choices=["per_sale", "per_day"], default="per_sale")

    def run(self, **options):
        company = self.company(options["company"])
        values = {
            "start_date": options["start_date"],
            "sales_account_se": options["sales_account_se"],
            "sales_account_eu": options["sales_account_eu"],
            "sales_account_world": options["sales_account_world"],
            "sales_account_eu_b2b": options["sales_account_eu_b2b"],
            "receivable_account": options["receivable_account"],
            "bank_account": options["bank_account"],
            "fee_account": options["fee_account"],
            "vat_accounts": {"25": options["vat_account_25"], "12": options["vat_account_12"],
                             "6": options["vat_account_6"]},
            "sales_series": options["sales_series"],
            "payout_series": options["payout_series"],
            "mode": options["mode"],
        }
        try:
            saved = netseasy_settings_save(company=company, values=values, secret_key=options["secret_key"],
                                           actor="manage.py netseasy_setup")
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            raise CommandError("; ".join(
                f"{FIELD_LABELS.get(name, name) if name != '__all__' else 'settings'}: {' '.join(messages)}"
                for name, messages in errors.items())) from None
        integration = saved.integration
        activation_check_key(integration=integration)  # a command may call Nets; an admin request may not
        integration.refresh_from_db()
        status = activation_status(integration)
        # The settings as the page shows them: the stored ones and the accounts (the company's mapping rows).
        settings = {**{k: v for k, v in integration.settings.items() if k not in ("activation", "last_sync")},
                    **nets_accounts(company)}
        return {
            "ok": status.key_ok is True,
            "company": company.slug,
            "status": integration.status,
            "secret_key": mask_secret(integration.credentials.get("secret_key")),
            "settings": settings,
            "warnings": saved.warnings,
            "key_check": status.key_message,
            "test_voucher": {"id": status.voucher.pk if status.voucher else None, "state": status.state,
                             "message": status.message},
            "next": f"Check the test voucher in Fortnox, then: manage.py netseasy_confirm {company.slug}",
        }
