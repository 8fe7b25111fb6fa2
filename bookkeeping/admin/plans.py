from django.contrib import admin

from ..models import Account, AccountPlan, CostCentre, FinancialYear, VatCode, VoucherSeries
from .base import CompanyScopedAdmin


@admin.register(AccountPlan)
class AccountPlanAdmin(CompanyScopedAdmin):
    list_display = ("company", "system", "locked_until", "imported_at", "account_count")
    list_filter = ("system", ("company", admin.RelatedOnlyFieldListFilter))
    readonly_fields = ("imported_at", "company_info")

    @admin.display(description="accounts")
    def account_count(self, plan):
        return plan.accounts.count()


class PlanPartAdmin(CompanyScopedAdmin):
    company_field = "plan__company"
    list_select_related = ("plan__company",)

    def get_list_filter(self, request):
        return ("plan__system", ("plan__company", admin.RelatedOnlyFieldListFilter), *self.extra_filters)

    extra_filters = ()


@admin.register(Account)
class AccountAdmin(PlanPartAdmin):
    list_display = ("number", "name", "kind", "vat_code", "cost_centre_setting", "active", "is_deposit", "origin", "plan")
    extra_filters = ("kind", "active", "cost_centre_setting", "is_deposit", "origin")
    search_fields = ("number", "name")
    readonly_fields = ("imported_at",)


@admin.register(CostCentre)
class CostCentreAdmin(PlanPartAdmin):
    list_display = ("code", "name", "active", "plan")
    extra_filters = ("active",)
    search_fields = ("code", "name")


@admin.register(VoucherSeries)
class VoucherSeriesAdmin(PlanPartAdmin):
    list_display = ("code", "description", "manual", "plan")
    extra_filters = ("manual",)


@admin.register(FinancialYear)
class FinancialYearAdmin(PlanPartAdmin):
    list_display = ("start", "end", "remote_id", "plan")


@admin.register(VatCode)
class VatCodeAdmin(PlanPartAdmin):
    list_display = ("code", "name", "rate", "plan")
    search_fields = ("code", "name")
