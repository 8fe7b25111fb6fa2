"""What keeps the big lists (vouchers, the audit trail) fast at millions of rows: counts that stop at
10,000 and then estimate, a company filter read from the companies table, and the membership restriction
as a list of company ids (an index lookup, not a join per row)."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from ..selectors.companies import companies_for_user
from ..selectors.counts import count_or_estimate


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to 10,000; beyond that the page says "about N" (``estimated``)."""

    estimated = False

    @cached_property
    def count(self) -> int:
        count, self.estimated = count_or_estimate(self.object_list)
        return count


class CompanyFilter(admin.SimpleListFilter):
    """The companies the user serves, from the companies table (not DISTINCT over millions of rows)."""

    title = _("company")
    parameter_name = "company__id__exact"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in companies_for_user(request.user).order_by("name", "pk")
                .values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(company_id=int(value))


class LargeListMixin:
    """For a CompanyScopedAdmin whose table grows to millions of rows."""

    paginator = EstimatedCountPaginator
    # Django would count the whole (unfiltered) table again beside a filtered count.
    show_full_result_count = False

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        # The ids themselves, so PostgreSQL reads the (company, …) indexes for exactly those companies.
        ids = list(companies_for_user(request.user).values_list("pk", flat=True))
        return queryset.filter(**{f"{self.company_field}__in": ids})
