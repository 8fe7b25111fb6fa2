"""CSV import/export of account mappings and payment methods (django-import-export).

Used by the admin (dry-run preview, row-level errors, nothing written when a row is bad) and by
django-import-export's own command, e.g.
``python manage.py import bookkeeping.resources.AccountMappingResource mappings.csv``.
No side effects in hooks: the dry run really writes and rolls back.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets

from integrations.registry import TARGET_SYSTEMS

from . import rules
from .models import AccountMapping, Company, MappingKind, PaymentMethod, PaymentMethodList
from .selectors.companies import companies_for_user
from .selectors.mappings import mapping_problems, normalise_key, plan_vat_codes
from .selectors.plans import plan_snapshot


class CompanyWidget(widgets.ForeignKeyWidget):
    """A company by slug, among those the importing user serves (all, from the command line)."""

    def __init__(self, user=None):
        super().__init__(Company, field="slug")
        self.user = user

    def get_queryset(self, value, row, *args, **kwargs):
        return companies_for_user(self.user) if self.user is not None else Company.objects.all()

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except Company.DoesNotExist:
            raise ValueError(_("Unknown company %(slug)s (or not one you serve).") % {"slug": value}) from None


class ChoiceWidget(widgets.CharWidget):
    def __init__(self, choices):
        super().__init__()
        self.choices = dict(choices)

    def clean(self, value, row=None, **kwargs):
        value = (super().clean(value, row, **kwargs) or "").strip()
        if value not in self.choices:
            raise ValueError(_("'%(value)s' is not one of: %(choices)s")
                             % {"value": value, "choices": ", ".join(self.choices)})
        return value


class AccountNumberWidget(widgets.IntegerWidget):
    """An account number as spreadsheets give it: 3011, "3011", 3011.0, "'3011" or "3011 Hyresintäkter"."""

    PATTERN = re.compile(r"^'?\s*(\d{1,9})(?:[.,]0+)?(?:\s+\D.*)?$")

    def clean(self, value, row=None, **kwargs):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            raise ValueError(_("“%(value)s” is not an account number.") % {"value": value})
        if isinstance(value, int):
            return value
        if isinstance(value, float | Decimal):
            if value != int(value):
                raise ValueError(_("“%(value)s” is not an account number.") % {"value": value})
            return int(value)
        match = self.PATTERN.match(str(value).strip())
        if match is None:
            raise ValueError(_("“%(value)s” is not an account number.") % {"value": value})
        return int(match.group(1))


class PlanCheckingResource(resources.ModelResource):
    """Shared: resolve the importing user's companies, check accounts against the account plan, and
    import all or nothing (django-import-export's own command would otherwise keep the good rows)."""

    def import_data(self, dataset, **kwargs):
        kwargs["use_transactions"] = True
        kwargs["rollback_on_validation_errors"] = True
        return super().import_data(dataset, **kwargs)

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        if not kwargs.get("dry_run") and result.has_validation_errors():
            # A base error makes the command exit non-zero with the reasons, and rolls everything back.
            lines = [
                _("line %(n)s: %(errors)s") % {
                    "n": row.number,
                    "errors": "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in row.error_dict.items())}
                for row in result.invalid_rows
            ]
            raise ValueError(_("Nothing was imported. Fix these rows: %(rows)s") % {"rows": " | ".join(lines)})

    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user
        self._plans = {}
        self.fields["company"].widget = CompanyWidget(user)

    def plan_for(self, company, system):
        key = (company.pk, system)
        if key not in self._plans:
            self._plans[key] = plan_snapshot(company, system)
        return self._plans[key]

    def account_errors(self, company, system, number, *, field_name="account_number") -> dict:
        if company is None or number in (None, ""):
            return {}
        plan = self.plan_for(company, system)
        if not plan.imported:
            return {field_name: _("The %(system)s account plan of %(company)s is empty; import it first.")
                    % {"system": system, "company": company}}
        problems = rules.check_account_number(plan, int(number))
        return {field_name: "; ".join(str(p.message) for p in problems)} if problems else {}


class TextWidget(widgets.CharWidget):
    """Text with surrounding and repeated spaces taken out (a number typed as 100 stays "100")."""

    def clean(self, value, row=None, **kwargs):
        if value is None:
            return ""
        if isinstance(value, float) and value == int(value):
            value = int(value)
        return " ".join(str(value).split())


class SeriesWidget(TextWidget):
    """A voucher series code, as Fortnox writes it (upper case)."""

    def clean(self, value, row=None, **kwargs):
        return super().clean(value, row, **kwargs).upper()


# The columns of the mapping CSV, in order (also the template's header).
MAPPING_COLUMNS = ("company", "system", "kind", "key", "account", "cost_centre", "project", "vat_code", "series",
                   "note")


class AccountMappingResource(PlanCheckingResource):
    """Columns ``company,system,kind,key,account,cost_centre,project,vat_code,series,note``.

    Each row is checked as the admin checks one (``mapping_problems``: the account exists, is active and
    of the right kind — P&L only for a Dinero category —, the cost centre, series and VAT code exist).
    All or nothing. What a saved row sets in motion (audit, one re-evaluation per company once the
    import is committed; a dry run rolls back and sets nothing in motion) follows from the save
    itself (``bookkeeping.signals``), so the admin and ``manage.py import`` behave alike."""

    company = fields.Field(attribute="company", column_name="company", widget=CompanyWidget())
    system = fields.Field(attribute="system", column_name="system",
                          widget=ChoiceWidget([(s, s) for s in TARGET_SYSTEMS]))
    kind = fields.Field(attribute="kind", column_name="kind", widget=ChoiceWidget(MappingKind.choices))
    key = fields.Field(attribute="key", column_name="key", widget=TextWidget())
    account = fields.Field(attribute="account_number", column_name="account", widget=AccountNumberWidget())
    cost_centre = fields.Field(attribute="cost_centre", column_name="cost_centre", default="", widget=TextWidget())
    project = fields.Field(attribute="project", column_name="project", default="", widget=TextWidget())
    vat_code = fields.Field(attribute="vat_code", column_name="vat_code", default="", widget=TextWidget())
    series = fields.Field(attribute="series", column_name="series", default="", widget=SeriesWidget())
    note = fields.Field(attribute="note", column_name="note", default="")

    class Meta:
        model = AccountMapping
        fields = MAPPING_COLUMNS
        import_id_fields = ("company", "system", "kind", "key")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def __init__(self, user=None, **kwargs):
        super().__init__(user=user, **kwargs)
        self._vat_codes = {}
        self._seen: dict[tuple, int] = {}

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        # Optional columns may be left out of a file; a missing one means empty.
        for column in MAPPING_COLUMNS:
            if column not in (dataset.headers or []) and column not in ("company", "system", "kind", "key"):
                dataset.append_col([""] * dataset.height, header=column)

    def get_instance(self, instance_loader, row):
        try:
            company = self.fields["company"].clean(row)
        except (ValueError, KeyError):
            return None  # an unknown company: import_instance reports it as this row's error
        system, kind = (row.get("system") or "").strip(), (row.get("kind") or "").strip()
        wanted = normalise_key(row.get("key"))
        candidates = AccountMapping.objects.filter(company=company, system=system, kind=kind)
        return next((m for m in candidates if normalise_key(m.key) == wanted), None)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        company = getattr(instance, "company", None) if instance.company_id else None
        if company is not None and instance.system and instance.kind and "key" not in errors:
            seen = (company.pk, instance.system, instance.kind, normalise_key(instance.key))
            if seen in self._seen and self._seen[seen] != id(instance):
                errors["key"] = _("The file maps “%(key)s” twice.") % {"key": instance.key}
            self._seen[seen] = id(instance)
            if instance.system not in self._vat_codes.setdefault(company.pk, {}):
                self._vat_codes[company.pk][instance.system] = plan_vat_codes(company, instance.system)
            found = mapping_problems(
                company=company, system=instance.system, kind=instance.kind, key=instance.key,
                account_number=instance.account_number, cost_centre=instance.cost_centre,
                project=instance.project, vat_code=instance.vat_code, series=instance.series,
                plan=self.plan_for(company, instance.system),
                vat_codes=self._vat_codes[company.pk][instance.system], exclude_pk=instance.pk)
            for name, message in found.items():
                errors.setdefault(name, message)
        if errors:
            # Named by the file's columns, as staff read them on the page.
            raise ValidationError({"account" if name == "account_number" else name: message
                                   for name, message in errors.items()})
        super().validate_instance(instance, errors, validate_unique)


class PaymentMethodResource(PlanCheckingResource):
    """Columns ``list,name,account`` (plus ``company`` — a slug — when more than one company could be meant)."""

    company = fields.Field(attribute="payment_list__company", column_name="company", widget=CompanyWidget())
    list = fields.Field(attribute="payment_list__name", column_name="list")
    name = fields.Field(attribute="name", column_name="name")
    account = fields.Field(attribute="account_number", column_name="account", widget=widgets.IntegerWidget())

    class Meta:
        model = PaymentMethod
        fields = ("company", "list", "name", "account")
        import_id_fields = ()
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def _company_for(self, row):
        slug = (row.get("company") or "").strip()
        pool = companies_for_user(self.user) if self.user is not None else Company.objects.all()
        if slug:
            return pool.filter(slug=slug).first(), slug
        only = list(pool[:2])
        return (only[0], "") if len(only) == 1 else (None, "")

    def get_instance(self, instance_loader, row):
        company, _slug = self._company_for(row)
        if company is None:
            return None
        return PaymentMethod.objects.filter(
            payment_list__company=company, payment_list__name=(row.get("list") or "").strip(),
            name=(row.get("name") or "").strip(),
        ).first()

    def import_instance(self, instance, row, **kwargs):
        errors = {}
        company, slug = self._company_for(row)
        if company is None:
            errors["company"] = (
                _("Unknown company %(slug)s (or not one you serve).") % {"slug": slug} if slug
                else _("Add a 'company' column (the company's slug): more than one company could be meant.")
            )
        list_name = (row.get("list") or "").strip()
        if not list_name:
            errors["payment_list"] = _("The list name is missing.")
        try:
            instance.name = (row.get("name") or "").strip()
            instance.account_number = widgets.IntegerWidget().clean(row.get("account"))
        except ValueError as exc:
            errors["account_number"] = str(exc)
        if errors:
            raise ValidationError(errors)
        # Resolve (not create) the list here; it is created in save_instance, inside the transaction.
        instance._company = company
        instance._list_name = list_name
        existing = PaymentMethodList.objects.filter(company=company, name=list_name).first()
        if existing is not None:
            instance.payment_list = existing

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        company = getattr(instance, "_company", None)
        if company is not None and "account_number" not in errors:
            system = "dinero" if company.country == "DK" else "fortnox"
            errors.update(self.account_errors(company, system, instance.account_number))
        if errors:
            raise ValidationError(errors)
        if instance.payment_list_id is None:
            return  # the list is new: nothing else to check until it exists
        super().validate_instance(instance, errors, validate_unique)

    def save_instance(self, instance, is_create, row, **kwargs):
        if instance.payment_list_id is None:
            instance.payment_list, _created = PaymentMethodList.objects.get_or_create(
                company=instance._company, name=instance._list_name
            )
        super().save_instance(instance, is_create, row, **kwargs)

    def dehydrate_company(self, method):
        return method.payment_list.company.slug

    def dehydrate_list(self, method):
        return method.payment_list.name
