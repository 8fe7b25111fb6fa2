from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookkeepingConfig(AppConfig):
    name = "bookkeeping"
    verbose_name = _("Bookkeeping")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import (
            checks,  # noqa: F401  (registers the deploy checks)
            signals,  # noqa: F401  (what a mapping change sets in motion)
        )
