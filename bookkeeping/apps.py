from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookkeepingConfig(AppConfig):
    name = "bookkeeping"
    verbose_name = _("Bookkeeping")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import (
            checks,  # noqa: F401  (registers the deploy checks)
            signals,  # noqa: F401  (what a mapping change sets in motion)
        )
        from .migrations_support import restore_default_groups

        # `flush` empties every table and then sends post_migrate: the default groups come back.
        post_migrate.connect(restore_default_groups, sender=self, dispatch_uid="kontera-default-groups")
