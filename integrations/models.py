"""Connections to the external systems, their encrypted credentials and shared coordination rows."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .crypto import EncryptedJSONField, mask_secret, secrets_unreadable
from .registry import SYSTEM_CHOICES


class IntegrationStatus(models.TextChoices):
    SETTING_UP = "setting_up", _("Setting up")
    AWAITING_CONFIRMATION = "awaiting_confirmation", _("Awaiting confirmation")
    ACTIVE = "active", _("Active")
    NEEDS_REAUTHORISATION = "needs_reauthorisation", _("Needs re-authorisation")
    PAUSED = "paused", _("Paused")


CREDENTIALS_UNREADABLE = _("Credentials unreadable — reconnect or enter them again.")


class Integration(models.Model):
    """One company's connection to one external system."""

    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="integrations",
                                verbose_name=_("company"))
    system = models.CharField(_("system"), max_length=20, choices=SYSTEM_CHOICES)
    status = models.CharField(_("status"), max_length=30, choices=IntegrationStatus.choices,
                              default=IntegrationStatus.SETTING_UP)
    status_message = models.TextField(_("status message"), blank=True,
                                      help_text=_("Why the integration is in this state, in plain words."))
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    credentials = EncryptedJSONField(_("credentials"))
    last_success_at = models.DateTimeField(_("last successful call"), null=True, blank=True)
    # Who the connection reaches: {"name", "organisation_number", "checked_at", "override"}.
    remote_company = models.JSONField(_("remote company"), default=dict, blank=True, editable=False)
    coded_texts = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["company", "system"]
        verbose_name = _("integration")
        verbose_name_plural = _("integrations")
        permissions = [
            ("connect_integration", _("Can connect integrations (Fortnox, Visma Connect, Dinero API key)")),
            ("import_master_data", _("Can import master data (chart of accounts, cost centres, series, years)")),
            ("connect_other_organisation", _("Can connect a company to an organisation with another "
                                             "organisation number")),
        ]
        constraints = [models.UniqueConstraint(fields=["company", "system"], name="one_integration_per_system")]

    coded_text_fields = ("status_message",)

    def __str__(self) -> str:
        return f"{self.company} · {self.get_system_display()}"

    @property
    def is_usable(self) -> bool:
        return self.status == IntegrationStatus.ACTIVE

    @property
    def credentials_unreadable(self) -> bool:
        """No configured key opens the stored credentials (a lost key, a changed SECRET_KEY)."""
        return secrets_unreadable(self.credentials)

    @property
    def credentials_unreadable_message(self) -> str:
        return str(CREDENTIALS_UNREADABLE)

    def masked_credentials(self) -> dict[str, str]:
        """For display: every credential value masked (``••••3f9a``); expiry times kept."""
        shown = {}
        for key, value in (self.credentials or {}).items():
            if key.endswith("_at") or key in {"scope", "token_type"}:
                shown[key] = str(value)
            else:
                shown[key] = mask_secret(value)
        return shown


class OAuthState(models.Model):
    """The ``state`` of an authorisation request: random, single-use, short-lived, bound to one integration."""

    state = models.CharField(max_length=64, unique=True)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="oauth_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)
    # What the token request will need from this authorisation request (the PKCE code verifier):
    # short-lived, single-use, and encrypted like every other secret.
    secret_params = EncryptedJSONField(_("secret parameters"))
    # A connection held back because the remote company is not the company's (organisation numbers
    # differ): the new tokens wait here, encrypted, until staff connect anyway or cancel.
    pending_credentials = EncryptedJSONField(_("held-back credentials"))
    remote_company = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("OAuth state")
        verbose_name_plural = _("OAuth states")


class RateLimitSlot(models.Model):
    """Shared pacing per remote tenant (GCRA): the theoretical time the next request may go out."""

    key = models.CharField(max_length=120, unique=True)
    next_at = models.FloatField(default=0.0)
    paused_until = models.FloatField(default=0.0)

    class Meta:
        verbose_name = _("rate-limit slot")
        verbose_name_plural = _("rate-limit slots")
