"""The books of the fault campaign (bench/fault_campaign.py): Fortnox companies with journals, Dinero
organisations with supplier invoices, a web shop with Nets Easy payouts booked into Fortnox. Set up
through the same services as the wizard and the commands, with the sandboxes' faults switched off."""

from __future__ import annotations

NETS_KEY = "live-secret-key-0123456789abcdef0123456789abcdef"
FORTNOX_CLIENT = ("campaign", "campaign-secret", "http://127.0.0.1/cb")
DINERO_CLIENT = ("kontera-campaign", "kontera-campaign-secret")


def setup_fortnox(fortnox, args, today) -> list[int]:
    from bench.books import fortnox_company, journals

    companies = []
    for n in range(args.fortnox_companies):
        company = fortnox_company(fortnox, tenant=3_000_000 + n, name=f"Kampanj {n} AB", slug=f"kampanj-{n}",
                                  org_number=f"556100-{n:04d}", client=FORTNOX_CLIENT[0], redirect=FORTNOX_CLIENT[2],
                                  actor="campaign")
        journals(company, count=args.journals, prefix=f"K{n}", day=today)
        companies.append(company.pk)
    return companies


def setup_nets(fortnox, nets, args, today) -> int:
    """A web shop with Fortnox and Nets Easy, confirmed (its test voucher posted), payouts synced and booked."""
    import datetime as dt

    from bench.books import fortnox_company
    from bookkeeping.services.sending import vouchers_dispatch
    from card_payments.services.activation import activation_check_key, netseasy_confirm, netseasy_settings_save
    from card_payments.services.sync import payouts_sync

    company = fortnox_company(fortnox, tenant=3_100_000, name="Kampanjbutiken AB", slug="kampanjbutiken",
                              org_number="556200-0001", client=FORTNOX_CLIENT[0], redirect=FORTNOX_CLIENT[2],
                              actor="campaign")
    nets.add_merchant(NETS_KEY, "Kampanjbutiken AB")
    values = {
        "start_date": (today - dt.timedelta(days=40)).isoformat(),
        "sales_account_se": 3001, "sales_account_eu": 3106, "sales_account_world": 3105,
        "receivable_account": 1580, "bank_account": 1930, "fee_account": 6040,
        "vat_accounts": {"25": 2611, "12": 2621, "6": 2631},
        "sales_series": "A", "payout_series": "A", "mode": "per_sale",
    }
    saved = netseasy_settings_save(company=company, values=values, secret_key=NETS_KEY, actor="campaign")
    vouchers_dispatch(max_seconds=60)  # the test voucher, before the campaign starts
    activation_check_key(integration=saved.integration)
    ok, message = netseasy_confirm(integration=saved.integration, actor="campaign")
    if not ok:
        raise SystemExit(f"Nets Easy setup refused: {message}")
    countries = ["SWE", "DEU", "NOR", "SWE"]
    for p in range(args.payouts):
        day = today - dt.timedelta(days=30 - p % 28)
        for s in range(args.sales):
            specs = [{"reference": "SKU-1", "name": "Vara", "unitPrice": 10000 + 100 * s + p, "taxRate": 2500,
                      "quantity": 1}]
            payment = nets.create_payment(NETS_KEY, amount_items=specs, country=countries[s % 4],
                                          reference=f"ORDER-{p}-{s}", company=False, created=day, currency="SEK")
            nets.charge(payment, at=day)
        nets.settle_payout(NETS_KEY, date=day + dt.timedelta(days=1))
    saved.integration.refresh_from_db()
    result = payouts_sync(integration=saved.integration, actor="campaign")
    if not result.ok:
        raise SystemExit(f"Nets Easy sync failed: {result.as_dict()}")
    return company.pk


def setup_dinero(dinero, args, today) -> list[int]:
    import datetime as dt
    from decimal import Decimal

    from bookkeeping.models import Company, PaymentMethod, PaymentMethodList
    from expense_documents.models import ExpenseDocument, ExpenseLine
    from expense_documents.services.dinero_setup import dinero_setup
    from expense_documents.services.sync import documents_sync

    companies = []
    suppliers = [("Kontorland A/S", "DK12345678"), ("Papirhuset ApS", "DK23456789"), ("Kaffe & Co ApS", "DK34567890")]
    for n in range(args.dinero_orgs):
        org_id, cvr, key = 700_000 + n, f"{40_000_000 + n}", f"campaign-dinero-key-{n}"
        dinero.add_organization(org_id, f"Kampagne {n} ApS", key, vat_number=cvr)
        company = Company.objects.create(name=f"Kampagne {n} ApS", slug=f"kampagne-{n}", country="DK",
                                         base_currency="DKK", org_number=f"DK{cvr}")
        methods = PaymentMethodList.objects.create(company=company, name="Kvitteringer")
        PaymentMethod.objects.create(payment_list=methods, name="Firmakort", account_number=55010)
        dinero_setup(company=company, api_key=key, organization_id=str(org_id), error_account=7480, import_chart=True,
                     invoice_payment_method="63000", receipt_payment_list="Kvitteringer", actor="campaign")
        for d in range(args.documents):
            name, vat = suppliers[d % len(suppliers)]
            document = ExpenseDocument.objects.create(
                company=company, reference=f"INV-{n}-{d}", type="invoice", supplier_name=name, supplier_vat=vat,
                document_date=today, due_date=today + dt.timedelta(days=30), currency="DKK")
            ExpenseLine.objects.create(document=document, position=0, amount=Decimal(100 + d), vat_code="I25",
                                       category=7200, text=f"Kontorartikler {d}")
        documents_sync(company=company, actor="campaign", only_pending=True)
        companies.append(company.pk)
    return companies
