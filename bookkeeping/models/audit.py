from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wording import text_of


class AuditEvent(models.Model):
    """Append-only: every state change and every remote call, in words. Never a secret."""

    class Outcome(models.TextChoices):
        OK = "ok", _("OK")
        ERROR = "error", _("Error")
        INFO = "info", _("Info")

    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("user"))
    actor_label = models.CharField(_("who"), max_length=100, blank=True)
    company = models.ForeignKey("bookkeeping.Company", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", verbose_name=_("company"))
    voucher = models.ForeignKey("bookkeeping.Voucher", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="audit_events", verbose_name=_("voucher"))
    integration = models.ForeignKey("integrations.Integration", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="audit_events", verbose_name=_("integration"))
    action = models.CharField(_("action"), max_length=60)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.INFO)
    http_status = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    coded_texts = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit trail")
        indexes = [
            models.Index(fields=["company", "created_at"], name="audit_company_created_idx"),
            # The audit-trail list at millions of events: each filter with its newest-first ordering, and
            # "who" searched exactly (the message's trigram index is PostgreSQL's own: migration 0010).
            models.Index(fields=["outcome", "created_at"], name="audit_outcome_created_idx"),
            models.Index(fields=["action", "created_at"], name="audit_action_created_idx"),
            # the same for a staff member's few companies
            models.Index(fields=["company", "outcome", "created_at"], name="audit_company_outcome_idx"),
            models.Index(fields=["company", "action", "created_at"], name="audit_company_action_idx"),
            models.Index(Upper("actor_label"), name="audit_actor_label_idx"),
        ]

    coded_text_fields = ("message",)

    def __str__(self) -> str:
        # Local time and the words, never UTC and an internal code (this is what the admin shows as its title).
        when = timezone.localtime(self.created_at).strftime("%Y-%m-%d %H:%M") if self.created_at else ""
        return f"{when} {text_of(self, 'message')[:60]}".strip()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only.")
