from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from ..models import Company, Country
from .audit import Actor, audit_record

CURRENCY_BY_COUNTRY = {Country.SE: "SEK", Country.DK: "DKK"}


def company_create(*, slug: str, name: str, country: str, org_number: str = "", members=(), actor: Actor = None) -> Company:
    if country not in Country.values:
        raise ValueError(f"Country must be one of {', '.join(Country.values)}")
    users = list(get_user_model().objects.filter(username__in=members))
    missing = set(members) - {u.get_username() for u in users}
    if missing:
        raise ValueError(f"Unknown users: {', '.join(sorted(missing))}")
    with transaction.atomic():
        company = Company.objects.create(slug=slug, name=name, country=country, org_number=org_number,
                                         base_currency=CURRENCY_BY_COUNTRY[country])
        company.members.set(users)
        audit_record(action="company:created", actor=actor, company=company, message=f"Company {name} added.")
    return company
