from __future__ import annotations

from django.db.models import QuerySet

from ..models import Company


def companies_for_user(user) -> QuerySet[Company]:
    """The companies a user may see and act on: all for superusers, their own for staff."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Company.objects.none()
    if user.is_superuser:
        return Company.objects.all()
    return Company.objects.filter(members=user)


def user_can_act_on(user, company) -> bool:
    if company is None:
        return False
    return companies_for_user(user).filter(pk=company.pk).exists()


# Connecting (and reconnecting) a company's integrations: the Fortnox and Visma Connect consents,
# choosing the Dinero organisation, the Dinero setup.
CONNECT_PERMISSION = "integrations.change_integration"


def user_can_connect(user, company) -> bool:
    """Serves the company and holds the permission to connect its integrations."""
    if not user_can_act_on(user, company):
        return False
    return bool(user.is_superuser or user.has_perm(CONNECT_PERMISSION))


def scope_to_user(queryset: QuerySet, user, *, company_field: str = "company") -> QuerySet:
    """Restrict any queryset with a company relation to the user's companies."""
    if user is not None and user.is_authenticated and user.is_superuser:
        return queryset
    return queryset.filter(**{f"{company_field}__in": companies_for_user(user)})
