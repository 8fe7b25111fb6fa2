from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from bookkeeping.admin.base import CompanyScopedAdmin, ReadOnlyAdminMixin
from integrations import registry
from integrations.crypto import mask_secret, secrets_unreadable
from integrations.models import Integration, IntegrationStatus, OAuthState, RateLimitSlot
from wording import text_of

from .integration_settings import SECRET_LABELS, SETTINGS_FIELDS, SETTINGS_SUMMARIES, credentials_words
from .technical import SuperusersOnly

# What a flow adds to an integration's page, per system: a settings check that needs the flow's
# knowledge (e.g. the company's chart) and buttons to the flow's own pages. Flows register in their
# admin module, so the core and the connectors need not know them.
SETTINGS_CHECKS: dict[str, object] = {}
PAGE_TOOLS: dict[str, object] = {}


def register_integration_page(system: str, *, settings_check=None, tools=None, settings_fields=None,
                              settings_summary=None) -> None:
    """``settings_check(settings, *, company)`` returns the cleaned settings or raises ValidationError;
    ``tools(integration, request)`` returns ``[(label, url), …]``; ``settings_fields(integration)`` returns
    ``{setting name: form field}`` edited on the integration page; ``settings_summary(integration)``
    returns ``[(label, value), …]`` for settings that are changed on the flow's own page."""
    if settings_check is not None:
        SETTINGS_CHECKS[system] = settings_check
    if tools is not None:
        PAGE_TOOLS[system] = tools
    if settings_fields is not None:
        SETTINGS_FIELDS[system] = settings_fields
    if settings_summary is not None:
        SETTINGS_SUMMARIES[system] = settings_summary


def connector_meta(system: str):
    try:
        return registry.connector_class(system)
    except (LookupError, ImportError):
        return None


def secret_fields_for(system: str | None) -> tuple[str, ...]:
    connector = connector_meta(system) if system else None
    return tuple(getattr(connector, "secret_fields", ()))


class IntegrationForm(forms.ModelForm):
    """Settings are form fields per system (``setting_<name>``), validated by the system's check or
    connector; secrets are write-only fields. No raw JSON."""

    class Meta:
        model = Integration
        fields = ("company", "system")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.credentials if self.instance.pk else {}
        for name in self.fields:
            if name.startswith("secret_"):
                shown = mask_secret(current.get(name.removeprefix("secret_")))
                self.fields[name].help_text = (
                    _("Stored: %(masked)s. Leave empty to keep it.") % {"masked": shown} if shown else _("Not set yet.")
                )

    def clean(self):
        cleaned = super().clean()
        system = cleaned.get("system") or self.instance.system
        current = dict(self.instance.settings or {}) if self.instance.pk else {}
        chosen = {name.removeprefix("setting_"): value for name, value in cleaned.items()
                  if name.startswith("setting_")}
        try:
            self.instance.settings = self._checked({**current, **chosen}, system, cleaned)
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned

    def _checked(self, value: dict, system: str, cleaned: dict) -> dict:
        validate = SETTINGS_CHECKS.get(system) or getattr(connector_meta(system), "validate_settings", None)
        if validate is None:
            return value
        company = cleaned.get("company") or (self.instance.company if self.instance.company_id else None)
        try:
            return validate(value, company=company)
        except ValidationError:
            raise
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def save(self, commit=True):
        integration = super().save(commit=False)
        entered = {name.removeprefix("secret_"): value.strip() for name, value in self.cleaned_data.items()
                   if name.startswith("secret_") and (value or "").strip()}
        # Unreadable credentials (a lost key) stay as they are unless new ones are entered: restoring
        # the key must still be enough.
        if entered or not secrets_unreadable(integration.credentials):
            integration.credentials = {**dict(integration.credentials or {}), **entered}
        if commit:
            integration.save()
        return integration


@admin.register(Integration)
class IntegrationAdmin(CompanyScopedAdmin):
    form = IntegrationForm
    list_display = ("company", "system", "status_display", "status_message_short", "last_success_at", "updated_at")
    list_filter = ("system", "status", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("company__name", "company__slug")
    readonly_fields = ("status_display", "status_message_shown", "remote_display", "settings_summary",
                       "credentials_display", "last_success_at")
    list_select_related = ("company",)
    actions = ["import_master_data"]

    def has_import_master_data_permission(self, request):
        return request.user.has_perm("integrations.import_master_data")

    @admin.action(description=_("Import master data (chart of accounts, cost centres, series, years)"),
                  permissions=["import_master_data"])
    def import_master_data(self, request, queryset):
        from ..tasks import enqueue_master_data_import

        targets = [i for i in queryset if i.system in registry.TARGET_SYSTEMS]
        for integration in targets:
            enqueue_master_data_import(integration.pk, actor=request.user.get_username())
        self.message_user(request, ngettext(
            "Master data import started for %(n)s integration; the result appears in the audit trail.",
            "Master data import started for %(n)s integrations; the result appears in the audit trail.",
            len(targets)) % {"n": len(targets)})

    def _system(self, request, obj) -> str:
        return obj.system if obj else (request.POST.get("system") or request.GET.get("system") or "")

    def _settings_fields(self, obj, system: str) -> dict:
        make = SETTINGS_FIELDS.get(system)
        fields = make(obj) if make else {}
        for name, field in fields.items():
            if obj is not None and name in (obj.settings or {}):
                field.initial = obj.settings[name]
        return {f"setting_{name}": field for name, field in fields.items()}

    def get_fieldsets(self, request, obj=None):
        system = self._system(request, obj)
        secrets = [f"secret_{name}" for name in secret_fields_for(system)]
        settings = [*self._settings_fields(obj, system), *(["settings_summary"] if system in SETTINGS_SUMMARIES else [])]
        return (
            (None, {"fields": ("company", "system", "status_display", "status_message_shown", "remote_display")}),
            (_("Settings"), {"fields": settings}),
            (_("Credentials"), {"fields": ("credentials_display", *secrets)}),
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The setting and secret inputs depend on the system, so the form class is made per system.
        system = self._system(request, obj)
        extra = {
            f"secret_{name}": forms.CharField(
                label=SECRET_LABELS.get(name, name), required=False,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
            )
            for name in secret_fields_for(system)
        }
        extra.update(self._settings_fields(obj, system))
        kwargs["form"] = type("IntegrationSystemForm", (self.form,), extra)
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and obj.system in registry.TARGET_SYSTEMS and form.changed_data:
            # e.g. posting on the first open date now: vouchers the locked period held back may pass
            from ..services.preflight import vouchers_preflight_refresh

            vouchers_preflight_refresh(company=obj.company, system=obj.system, actor=request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A flow (or a connector) may offer buttons on its integration page: admin_tools(integration,
        # request) returns [(label, url), …].
        integration = self.get_object(request, object_id)
        tools = []
        admin_tools = (PAGE_TOOLS.get(integration.system) or getattr(connector_meta(integration.system), "admin_tools",
                                                                      None)) if integration else None
        if admin_tools:
            tools = [{"label": label, "url": url} for label, url in admin_tools(integration, request)]
        extra_context = {**(extra_context or {}), "integration_tools": tools}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields += ["company", "system"]
        return fields

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, integration):
        if integration.credentials_unreadable:
            return format_html('<strong style="color:#c62828">{}</strong>', integration.credentials_unreadable_message)
        colour = {IntegrationStatus.ACTIVE: "#2e7d32", IntegrationStatus.NEEDS_REAUTHORISATION: "#c62828",
                  IntegrationStatus.AWAITING_CONFIRMATION: "#ef6c00"}.get(integration.status, "#555")
        return format_html('<strong style="color:{}">{}</strong>', colour, integration.get_status_display())

    @admin.display(description=_("why"))
    def status_message_short(self, integration):
        message = text_of(integration, "status_message")
        if integration.credentials_unreadable:
            message = integration.credentials_unreadable_message
        return message[:90] + ("…" if len(message) > 90 else "")

    @admin.display(description=_("why"))
    def status_message_shown(self, integration):
        return text_of(integration, "status_message") or "–"

    @admin.display(description=_("connected to"))
    def remote_display(self, integration):
        remote = integration.remote_company or {}
        if not remote:
            return "–"
        text = f"{remote.get('name') or '–'} ({remote.get('organisation_number') or '–'})"
        override = remote.get("override")
        if override:
            return format_html('{}<br><span style="color:#8a4b00">⚠ {}</span>', text,
                               _("connected anyway by %(who)s: %(note)s") % {"who": override.get("by", ""),
                                                                             "note": override.get("note", "")})
        return text

    @admin.display(description=_("settings"))
    def settings_summary(self, integration):
        summary = SETTINGS_SUMMARIES.get(integration.system) if integration else None
        lines = summary(integration) if summary else []
        if not lines:
            return "–"
        return format_html("<table class='settings-summary'>{}</table>",
                           format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", lines))

    @admin.display(description=_("stored credentials"))
    def credentials_display(self, integration):
        if integration.credentials_unreadable:
            return format_html('<strong style="color:#c62828">{}</strong>', integration.credentials_unreadable_message)
        lines = credentials_words(integration.credentials or {}) if integration else []
        if not lines:
            return "–"
        return format_html("<ul style='margin:0;padding-left:1.2em'>{}</ul>",
                           format_html_join("", "<li>{}</li>", ((line,) for line in lines)))


@admin.register(OAuthState)
class OAuthStateAdmin(SuperusersOnly, ReadOnlyAdminMixin, CompanyScopedAdmin):
    """Authorisation requests: who started which, and whether it was used (read-only)."""

    company_field = "integration__company"
    list_display = ("integration", "user", "created_at", "used_at")
    list_filter = ("integration__system",)
    exclude = ("state", "secret_params")  # short-lived secrets


@admin.register(RateLimitSlot)
class RateLimitSlotAdmin(SuperusersOnly, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The shared pacing rows per remote tenant (read-only; superusers only)."""

    list_display = ("key", "next_at", "paused_until")

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser


