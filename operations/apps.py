from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    """Running Kontera in production: the shared cache table, retention, key checks, error reporting,
    the workers' heartbeat and their supervisor."""

    name = "operations"
    verbose_name = _("Operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django_q.signals import pre_execute

        from . import (
            checks,  # noqa: F401  (registers the system checks)
            qcluster,
        )
        from .errors import install_task_error_reporter
        from .heartbeat import heartbeat_progress

        install_task_error_reporter()
        qcluster.install()
        # Every task a worker starts moves its node's progress counter (the liveness check reads it).
        pre_execute.connect(lambda **kwargs: heartbeat_progress(), dispatch_uid="kontera-heartbeat",
                            weak=False)
