from django.db import models
from django.utils.translation import gettext_lazy as _


class WorkerNode(models.Model):
    """One background-worker node (a supervised django-q2 cluster) and its heartbeat.

    The supervisor beats every few seconds (``beat_at``); the cluster's workers count what they do
    (``progress``, ``progressed_at``). A node whose beat is old is dead; a cluster whose counter does
    not move while work is due is frozen (``operations.heartbeat``)."""

    name = models.CharField(_("node"), max_length=120, unique=True)
    host = models.CharField(_("host"), max_length=120, blank=True)
    pid = models.IntegerField(_("process id"), null=True, blank=True)
    workers = models.PositiveIntegerField(_("workers"), default=0)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    beat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True, db_index=True)
    progress = models.BigIntegerField(_("tasks and vouchers handled"), default=0)
    progressed_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    restarts = models.PositiveIntegerField(_("restarts"), default=0)
    note = models.CharField(_("note"), max_length=200, blank=True, help_text=_("Why the supervisor last restarted it."))

    class Meta:
        verbose_name = _("worker node")
        verbose_name_plural = _("worker nodes")
        ordering = ["name"]
        default_permissions = ()  # written by the workers, shown on the overview and /health/

    def __str__(self) -> str:
        return self.name
