"""The back office lives in the Django admin. One module per topic."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from . import audit, companies, integrations, mappings, plans, sie_export, technical, vouchers  # noqa: F401

admin.site.site_header = _("Kontera back office")
admin.site.site_title = _("Kontera")
admin.site.index_title = _("Bookkeeping to Fortnox and Dinero")
