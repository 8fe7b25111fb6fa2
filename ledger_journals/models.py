"""A journal is a core ``bookkeeping.Voucher`` of kind ``journal``, its id from the property system (e.g.
``A25``) the voucher's source reference. This flow's own table: big imports that a worker carries out."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class JournalImportJob(models.Model):
    """A confirmed journal file imported by a worker, and how it went (shown to staff on its own page)."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Waiting for a worker")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Imported")
        REFUSED = "refused", _("Refused")

    company = models.ForeignKey("bookkeeping.Company", on_delete=models.CASCADE, related_name="journal_import_jobs",
                                verbose_name=_("company"))
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", verbose_name=_("requested by"))
    filename = models.CharField(_("file"), max_length=255, blank=True)
    series = models.CharField(_("voucher series"), max_length=10, blank=True)
    # The file itself, so that a worker on any machine can read it (uploads wait on the web node's disk);
    # emptied once the import has finished.
    data = models.BinaryField(editable=False, default=b"")
    size = models.PositiveIntegerField(_("size (bytes)"), default=0)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)  # created, updated, unchanged, waiting
    errors = models.JSONField(_("errors"), default=list, blank=True)  # [line, stored text] as the file was refused
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)

    class Meta:
        verbose_name = _("journal import")
        verbose_name_plural = _("journal imports")
        default_permissions = ()  # seen on its page by who may import journals for the company

    def __str__(self) -> str:
        return f"{self.filename} · {self.company_id} · {self.state}"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.REFUSED)
