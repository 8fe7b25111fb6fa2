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
from import_export.results import RowResult

from integrations.registry import TARGET_SYSTEMS

from . import rules
from .models import AccountMapping, Company, MappingKind, PaymentMethod, PaymentMethodList
from .selectors.companies import companies_for_user
from .selectors.mappings import mapping_problems, normalise_key, plan_vat_codes
from .selectors.plans import plan_snapshot
from .services.mappings import IMPORTED_FIELDS, account_mappings_import
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
    All or nothing. 100,000 rows at a time (issue 15): the file's companies, their stored rows, plans and
    VAT codes are read once before the first row and every row is checked against them in memory; the
    rows are written in bulk once the whole file is good, with one audit event per new or changed row
    (in bulk as well) and one re-evaluation per company once committed
    (``services.mappings.account_mappings_import``). A dry run (the admin's preview, ``--dry-run``)
    checks everything and writes nothing; the preview shows the first rows' values."""

    PREVIEW_ROWS = 100  # rows the preview page shows value by value (the totals count them all)

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
        # No savepoint per row (import_row writes nothing; after_import writes the whole file at once).
        use_bulk = True

    def __init__(self, user=None, **kwargs):
        super().__init__(user=user, **kwargs)
        self._vat_codes: dict[tuple[int, str], set[str]] = {}
        self._seen: set[tuple] = set()
        self._companies: dict[str, Company] = {}
        # (company id, system, kind) → normalised key → the stored rows' values (pk first), by key order
        self._stored: dict[tuple, dict[str, list[tuple]]] = {}
        self._stored_keys: dict[tuple, dict[str, list[tuple[int, str]]]] = {}
        self._created: list[dict] = []
        self._changed: list[dict] = []
        self._columns = [(self.fields[name], AccountMapping._meta.get_field(self.fields[name].attribute))
                         for name in MAPPING_COLUMNS if name != "company"]

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        # Optional columns may be left out of a file; a missing one means empty.
        for column in MAPPING_COLUMNS:
            if column not in (dataset.headers or []) and column not in ("company", "system", "kind", "key"):
                dataset.append_col([""] * dataset.height, header=column)
        if "company" not in (dataset.headers or []):
            return  # import-export reports the missing column
        # The snapshot the rows are checked against: the file's companies (those the user serves) and
        # what they have stored, each read once.
        slugs = {str(restore_neutralised(slug) or "").strip() for slug in dataset["company"]}
        pool = companies_for_user(self.user) if self.user is not None else Company.objects.all()
        self._companies = {company.slug: company for company in pool.filter(slug__in=slugs)}
        stored = AccountMapping.objects.filter(company__in=self._companies.values()).order_by("key", "pk")
        for company_id, system, kind, *values in stored.values_list(
                "company_id", "system", "kind", "pk", *IMPORTED_FIELDS).iterator(chunk_size=5000):
            nkey = normalise_key(values[1])
            self._stored.setdefault((company_id, system, kind), {}).setdefault(nkey, []).append(tuple(values))
            self._stored_keys.setdefault((company_id, system, kind), {}).setdefault(nkey, []).append(
                (values[0], values[1]))

    def import_row(self, row, instance_loader, **kwargs):
        """One row checked in memory: its values, what is wrong (per column, as staff read the file), and
        whether it is new, changed or unchanged; nothing is written here."""
        row_result = self.get_row_result_class()()
        try:
            self.before_import_row(row, **kwargs)
            company, values, errors = self._row_values(row)
            stored = None
            if company is not None and values.get("system") and values.get("kind") and "key" not in errors:
                group = (company.pk, values["system"], values["kind"])
                nkey = normalise_key(values["key"])
                stored = next(iter(self._stored.get(group, {}).get(nkey, ())), None)
                if nkey and (*group, nkey) in self._seen:
                    errors["key"] = _("The file maps “%(key)s” twice.") % {"key": values["key"]}
                self._seen.add((*group, nkey))
                found = mapping_problems(
                    company=company, system=values["system"], kind=values["kind"], key=values["key"],
                    account_number=values.get("account_number"), cost_centre=values.get("cost_centre", ""),
                    project=values.get("project", ""), vat_code=values.get("vat_code", ""),
                    series=values.get("series", ""), plan=self.plan_for(company, values["system"]),
                    vat_codes=self._vat_codes_of(company, values["system"]),
                    exclude_pk=stored[0] if stored else None, stored_keys=self._stored_keys.get(group, {}))
                for name, message in found.items():
                    errors.setdefault("account" if name == "account_number" else name, message)
            if errors:
                raise ValidationError(errors)
            imported = tuple(values[name] for name in IMPORTED_FIELDS)
            if stored is not None and stored[1:] == imported:
                row_result.import_type = RowResult.IMPORT_TYPE_SKIP
            elif stored is not None:
                row_result.import_type = RowResult.IMPORT_TYPE_UPDATE
                self._changed.append({"pk": stored[0], "company_id": company.pk, **values})
            else:
                row_result.import_type = RowResult.IMPORT_TYPE_NEW
                self._created.append({"company_id": company.pk, **values})
            if kwargs.get("row_number", 0) <= self.PREVIEW_ROWS:
                self._preview(row_result, company, values, stored)
        except ValidationError as exc:
            row_result.import_type = RowResult.IMPORT_TYPE_INVALID
            row_result.validation_error = exc
        except Exception as exc:  # as import-export reports it: the row and what went wrong
            row_result.import_type = RowResult.IMPORT_TYPE_ERROR
            row_result.errors.append(self.get_error_result_class()(exc, row=row, number=kwargs.get("row_number")))
        return row_result

    def _row_values(self, row) -> tuple[Company | None, dict, dict]:
        """The row's cleaned values (model field names) and its errors by column name."""
        errors: dict[str, str] = {}
        values: dict = {}
        slug = str(row.get("company") or "").strip()
        company = self._companies.get(slug)
        if company is None:
            errors["company"] = (_("Unknown company %(slug)s (or not one you serve).") % {"slug": slug} if slug
                                 else _("The company is missing (its slug)."))
        for field, model_field in self._columns:
            try:
                value = field.clean(row)
            except ValueError as exc:
                errors[field.column_name] = str(exc)
                continue
            if value is None and model_field.get_internal_type() == "CharField":
                value = ""
            # What full_clean would refuse (too long, out of range), told in Django's own words.
            max_length = getattr(model_field, "max_length", None)
            if (max_length and len(value) > max_length) or (isinstance(value, int) and not 0 <= value < 2**31):
                try:
                    model_field.clean(value, None)
                except ValidationError as exc:
                    errors[field.column_name] = " ".join(exc.messages)
                    continue
            values[model_field.attname] = value
        return company, values, errors

    def _vat_codes_of(self, company, system: str) -> set[str]:
        if (company.pk, system) not in self._vat_codes:
            self._vat_codes[(company.pk, system)] = plan_vat_codes(company, system)
        return self._vat_codes[(company.pk, system)]

    def _preview(self, row_result, company, values: dict, stored) -> None:
        """The preview page's cells for this row, as import-export shows them (what changes, marked)."""
        instance = AccountMapping(company=company, **values)
        original = AccountMapping()
        if stored is not None:
            original = AccountMapping(pk=stored[0], company=company, system=values["system"], kind=values["kind"],
                                      **dict(zip(IMPORTED_FIELDS, stored[1:], strict=True)))
        diff = self.get_diff_class()(self, original, stored is None)
        diff.compare_with(self, instance)
        row_result.diff = diff.as_html()
        row_result.object_repr = str(instance)

    def after_import(self, dataset, result, **kwargs):
        if not kwargs.get("dry_run") and not result.has_validation_errors() and not result.has_errors():
            account_mappings_import(created=self._created, changed=self._changed)
        self._created, self._changed = [], []
        super().after_import(dataset, result, **kwargs)


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
