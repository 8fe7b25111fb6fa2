"""One factory per model (factory_boy)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from bookkeeping.models import (
    Account,
    AccountMapping,
    AccountPlan,
    Company,
    CostCentre,
    FinancialYear,
    PaymentMethod,
    PaymentMethodList,
    VatCode,
    Voucher,
    VoucherRow,
    VoucherSeries,
)
from integrations.models import Integration


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.se")
    is_staff = True
    password = factory.django.Password("pw-for-tests-123")


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Bolag {n} AB")
    slug = factory.Sequence(lambda n: f"bolag-{n}")
    country = "SE"
    org_number = factory.Sequence(lambda n: f"556{n:03d}-{n:04d}")
    base_currency = "SEK"


class AccountPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountPlan
        django_get_or_create = ("company", "system")

    company = factory.SubFactory(CompanyFactory)
    system = "fortnox"


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    plan = factory.SubFactory(AccountPlanFactory)
    number = factory.Sequence(lambda n: 4000 + n)
    name = factory.LazyAttribute(lambda a: f"Konto {a.number}")


class CostCentreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CostCentre

    plan = factory.SubFactory(AccountPlanFactory)
    code = factory.Sequence(lambda n: f"{100 + n}")
    name = factory.LazyAttribute(lambda c: f"Fastighet {c.code}")


class VoucherSeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VoucherSeries

    plan = factory.SubFactory(AccountPlanFactory)
    code = "A"
    description = "Redovisning"
    manual = True


class FinancialYearFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FinancialYear

    plan = factory.SubFactory(AccountPlanFactory)
    start = factory.LazyFunction(lambda: dt.date(dt.date.today().year, 1, 1))
    end = factory.LazyFunction(lambda: dt.date(dt.date.today().year, 12, 31))
    remote_id = "1"


class VatCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VatCode

    plan = factory.SubFactory(AccountPlanFactory)
    code = "I25"
    name = "Købsmoms 25 %"
    rate = Decimal("25.00")


class VoucherFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Voucher

    company = factory.SubFactory(CompanyFactory)
    system = "fortnox"
    kind = "journal"
    source_system = "ledger"
    source_reference = factory.Sequence(lambda n: f"A{n}")
    date = factory.LazyFunction(dt.date.today)
    description = factory.LazyAttribute(lambda v: f"Journal {v.source_reference}")
    series = "A"


class VoucherRowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VoucherRow

    voucher = factory.SubFactory(VoucherFactory)
    account = 1930
    debit = Decimal("0.00")
    credit = Decimal("0.00")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # As the services do when they write rows: the voucher's stored totals follow.
        from bookkeeping.services.voucher_totals import voucher_totals_refresh

        row = super()._create(model_class, *args, **kwargs)
        voucher_totals_refresh(voucher=row.voucher)
        return row


class AccountMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountMapping

    company = factory.SubFactory(CompanyFactory)
    system = "fortnox"
    kind = "ledger_category"
    key = factory.Sequence(lambda n: f"cat-{n}")
    account_number = 3011


class PaymentMethodListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethodList

    company = factory.SubFactory(CompanyFactory)
    name = "Kvitteringer"


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethod

    payment_list = factory.SubFactory(PaymentMethodListFactory)
    name = factory.Sequence(lambda n: f"Firmakort {n}")
    account_number = 55010


class IntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Integration
        django_get_or_create = ("company", "system")

    company = factory.SubFactory(CompanyFactory)
    system = "fortnox"
    status = "active"


def balanced_voucher(company=None, *, rows=((1930, "100.00", "0"), (3011, "0", "100.00")), **kwargs) -> Voucher:
    """A voucher with the given (account, debit, credit[, cost centre]) rows."""
    voucher = VoucherFactory(company=company or CompanyFactory(), **kwargs)
    for position, row in enumerate(rows):
        account, debit, credit, *rest = row
        VoucherRowFactory(voucher=voucher, position=position, account=account, debit=Decimal(debit),
                          credit=Decimal(credit), cost_centre=rest[0] if rest else "")
    return voucher


def fortnox_plan(company, *, accounts=(1930, 3011, 1510, 2610), cost_centres=("100",), year=None, locked_until=None):
    """A small imported Fortnox account plan for rule tests."""
    import django.utils.timezone as tz

    plan = AccountPlanFactory(company=company, system="fortnox")
    plan.imported_at = tz.now()
    plan.locked_until = locked_until
    plan.save()
    for number in accounts:
        AccountFactory(plan=plan, number=number, kind="balance" if number < 3000 else "pl")
    for code in cost_centres:
        CostCentreFactory(plan=plan, code=code)
    VoucherSeriesFactory(plan=plan)
    year = year or dt.date.today().year
    FinancialYearFactory(plan=plan, start=dt.date(year, 1, 1), end=dt.date(year, 12, 31), remote_id="1")
    return plan


def vouchers_with_wrong_totals() -> list[tuple]:
    """Vouchers whose stored debit/credit totals are not their rows' sums: (id, stored, summed)."""
    summed: dict[int, list[Decimal]] = {}
    for voucher_id, debit, credit in VoucherRow.objects.values_list("voucher_id", "debit", "credit"):
        totals = summed.setdefault(voucher_id, [Decimal("0.00"), Decimal("0.00")])
        totals[0] += debit
        totals[1] += credit
    wrong = []
    for pk, debit, credit in Voucher.objects.values_list("pk", "debit_total", "credit_total"):
        rows = tuple(summed.get(pk, (Decimal("0.00"), Decimal("0.00"))))
        if (debit, credit) != rows:
            wrong.append((pk, (debit, credit), rows))
    return wrong
