"""Demo data for a new user: three client companies wired to the local sandboxes. Idempotent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from bookkeeping.models import AccountMapping, Company, PaymentMethod, PaymentMethodList
from integrations.models import Integration, IntegrationStatus
from ledger_journals.services.journal_import import journals_import

DEMO_STAFF = [("anna", "Anna Andersson", ["brf-exempelgarden", "exempel-handel"]),
              ("lars", "Lars Nielsen", ["demo-aps"])]

COMPANIES = [
    # slug, name, country, org number, currency
    ("brf-exempelgarden", "Brf Exempelgården", "SE", "769600-1234", "SEK"),
    ("exempel-handel", "Exempel Handel AB", "SE", "556677-8899", "SEK"),
    ("demo-aps", "Demo ApS", "DK", "12345678", "DKK"),
]

LEDGER_MAPPINGS = [
    # the property system's categories and add-on codes, as the guide asks to check them
    ("ledger_category", "Hyra bostad", 3011, "Hyresintäkter bostäder"),
    ("ledger_category", "Hyra lokal", 3015, "Hyresintäkter lokaler"),
    ("ledger_category", "Hyra p-plats", 3016, "Hyresintäkter p-platser"),
    ("addon_code", "MOMS", 2610, "Utgående moms på lokalhyror"),
    ("ledger_account", "Hyresfordringar", 1510, "Kundfordringar"),
    ("ledger_account", "Förskottshyror", 1101, "Förutbetalda hyror"),
]


def demo_journals_csv(day: dt.date) -> str:
    """The guide's journal A25 (83 849 kronor of rents) and two more, as the property system exports them:
    its own account, and for the rents and the VAT its category and add-on code, which the demo's
    mappings translate (the voucher page shows each row's source value beside its Fortnox account)."""
    rows = [
        ("A25", day, 1101, "", "", "0", "12000", "", "Förskottshyror"),
        ("A25", day, 1510, "", "", "83849", "0", "", "Aviserade hyror"),
        ("A25", day, 2610, "", "MOMS", "0", "904", "", "Moms lokaler"),
        ("A25", day, 3011, "Hyra bostad", "", "0", "65568", "100", "Hyror bostäder"),
        ("A25", day, 3015, "Hyra lokal", "", "0", "5247", "100", "Hyror lokaler"),
        ("A25", day, 3016, "Hyra p-plats", "", "0", "130", "100", "Hyror p-platser"),
        ("A26", day + dt.timedelta(days=1), 1930, "", "", "24500", "0", "", "Inbetalningar OCR"),
        ("A26", day + dt.timedelta(days=1), 1510, "", "", "0", "24500", "", "Inbetalningar OCR"),
        ("A27", day + dt.timedelta(days=2), 5010, "", "", "3200", "0", "200", "Städning trapphus"),
        ("A27", day + dt.timedelta(days=2), 1930, "", "", "0", "3200", "", "Städning trapphus"),
    ]
    lines = ["journal,date,series,account,category,addon_code,debit,credit,cost_centre,project,text"]
    lines += [f"{j},{d.isoformat()},A,{a},{category},{addon},{debit},{credit},{cc},,{text}"
              for j, d, a, category, addon, debit, credit, cc, text in rows]
    return "\n".join(lines) + "\n"


def demo_load(*, with_sandbox_integrations: bool = True) -> dict:
    User = get_user_model()
    summary: dict = {"companies": [], "staff": []}
    with transaction.atomic():
        companies = {}
        for slug, name, country, org_number, currency in COMPANIES:
            company, _created = Company.objects.get_or_create(
                slug=slug, defaults={"name": name, "country": country, "org_number": org_number,
                                     "base_currency": currency})
            companies[slug] = company
            summary["companies"].append(slug)
        for username, full_name, slugs in DEMO_STAFF:
            first, last = full_name.split(" ", 1)
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last, "is_staff": True,
                                             "email": f"{username}@kontera.example"})
            if created:
                user.set_password(f"demo-{username}-2026")
                user.save()
            _grant_staff_permissions(user)
            for slug in slugs:
                companies[slug].members.add(user)
            summary["staff"].append({"username": username, "password": f"demo-{username}-2026", "companies": slugs})

        brf = companies["brf-exempelgarden"]
        for kind, key, account, note in LEDGER_MAPPINGS:
            AccountMapping.objects.get_or_create(company=brf, system="fortnox", kind=kind, key=key,
                                                 defaults={"account_number": account, "note": note})
        for slug in ("brf-exempelgarden", "exempel-handel"):
            Integration.objects.get_or_create(
                company=companies[slug], system="fortnox",
                defaults={"status": IntegrationStatus.SETTING_UP, "settings": {"locked_period_policy": "refuse"},
                          "status_message": "Press 'Connect Fortnox' to authorise (the sandbox shows Fortnox's "
                                            "consent page)."})

        aps = companies["demo-aps"]
        receipts, _created = PaymentMethodList.objects.get_or_create(company=aps, name="Kvitteringer")
        for name, account in (("Firmakort", 55010), ("Kontant", 55040), ("Bank", 55000)):
            PaymentMethod.objects.get_or_create(payment_list=receipts, name=name, defaults={"account_number": account})

    day = timezone.localdate().replace(day=1)
    csv_text = demo_journals_csv(day)
    result = journals_import(company=brf, data=csv_text.encode(), filename="demo.csv", actor="demo")
    summary["journals"] = {"created": result.created, "unchanged": result.unchanged}
    demo_dir = Path(settings.BASE_DIR) / "var" / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    (demo_dir / "brf-journaler.csv").write_text(csv_text, encoding="utf-8")
    summary["sample_files"] = [str(demo_dir / "brf-journaler.csv")]

    if with_sandbox_integrations:
        summary.update(_flow_demos(companies))
    return summary


def _flow_demos(companies) -> dict:
    """The Dinero and Nets Easy demos, when those flows are installed."""
    extra = {}
    try:
        from .expense_documents import demo_expenses
    except ImportError:
        demo_expenses = None
    if demo_expenses:
        extra["dinero"] = demo_expenses(companies["demo-aps"])
    try:
        from .card_payments import demo_netseasy
    except ImportError:
        demo_netseasy = None
    if demo_netseasy:
        extra["netseasy"] = demo_netseasy(companies["exempel-handel"])
    return extra


def _grant_staff_permissions(user) -> None:
    """Demo staff may do everything in the back office; company scoping limits what they see."""
    from django.contrib.auth.models import Permission

    perms = Permission.objects.filter(content_type__app_label__in=["bookkeeping", "integrations", "expense_documents", "card_payments"]).exclude(
        codename__in=["delete_auditevent", "change_auditevent", "add_auditevent", "add_company", "delete_company"])
    user.user_permissions.add(*perms)
