"""CSV import/export of account mappings and payment methods (django-import-export).

Used by the admin (dry-run preview, row-level errors, nothing written when a row is bad) and by
django-import-export's own command, e.g.
``python manage.py import bookkeeping.resources.AccountMappingResource mappings.csv``.
No side effects in hooks: the dry run really writes and rolls back.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets

from integrations.registry import TARGET_SYSTEMS

from . import rules
from .models import AccountMapping, Company, MappingKind, PaymentMethod, PaymentMethodList
from .selectors.companies import companies_for_user
from .selectors.plans import plan_snapshot
from .spreadsheets import neutralise_dataset, restore_neutralised


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


class PlanCheckingResource(resources.ModelResource):
    """Shared: resolve the importing user's companies, check accounts against the account plan, and
    import all or nothing (django-import-export's own command would otherwise keep the good rows)."""

    def export(self, *args, **kwargs):
        # Every export (admin or `manage.py export`) is safe to open in a spreadsheet.
        return neutralise_dataset(super().export(*args, **kwargs))

    def before_import_row(self, row, **kwargs):
        # A file we exported comes back without the quotes that kept its formulas text.
        for key in list(row.keys()):
            row[key] = restore_neutralised(row[key])
        super().before_import_row(row, **kwargs)

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


class AccountMappingResource(PlanCheckingResource):
    company = fields.Field(attribute="company", column_name="company", widget=CompanyWidget())
    system = fields.Field(attribute="system", column_name="system",
                          widget=ChoiceWidget([(s, s) for s in TARGET_SYSTEMS]))
    kind = fields.Field(attribute="kind", column_name="kind", widget=ChoiceWidget(MappingKind.choices))
    key = fields.Field(attribute="key", column_name="key")
    account = fields.Field(attribute="account_number", column_name="account", widget=widgets.IntegerWidget())
    cost_centre = fields.Field(attribute="cost_centre", column_name="cost_centre", default="")
    vat_code = fields.Field(attribute="vat_code", column_name="vat_code", default="")
    note = fields.Field(attribute="note", column_name="note", default="")

    class Meta:
        model = AccountMapping
        fields = ("company", "system", "kind", "key", "account", "cost_centre", "vat_code", "note")
        import_id_fields = ("company", "system", "kind", "key")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def get_instance(self, instance_loader, row):
        try:
            return super().get_instance(instance_loader, row)
        except ValueError:
            return None  # an unknown company: import_instance reports it as this row's error

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        company = getattr(instance, "company", None) if instance.company_id else None
        if "account_number" not in errors and instance.system:
            errors.update(self.account_errors(company, instance.system, instance.account_number))
        if company and instance.cost_centre and "cost_centre" not in errors:
            plan = self.plan_for(company, instance.system)
            if instance.cost_centre not in plan.cost_centres:
                errors["cost_centre"] = _("Cost centre %(code)s does not exist.") % {"code": instance.cost_centre}
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
