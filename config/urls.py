from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from operations.health import HealthView

# Admin pages whose models moved to a flow's app keep working at their old addresses (bookmarks,
# e-mails): /admin/bookkeeping/expensedocument/… → /admin/expense_documents/expensedocument/… and
# /admin/integrations/netspayout/… → /admin/card_payments/netspayout/….
MOVED_ADMIN_PAGES = [
    ("bookkeeping", "expense_documents", "expensedocument|expenseline|workflowrule"),
    ("integrations", "card_payments", "netspayout|netspaymentaction|netspayment|problemreport"),
]

urlpatterns = [
    # Public by design, for load balancers and monitoring: no company, secret or host in it for anonymous
    # callers (operations/health.py).
    path("health/", HealthView.as_view(), name="health"),
    path("integrations/", include("bookkeeping.urls")),
    *(re_path(rf"^admin/{old}/(?P<rest>(?:{models})/.*)$",
              RedirectView.as_view(url=f"/admin/{new}/%(rest)s", permanent=True, query_string=True))
      for old, new, models in MOVED_ADMIN_PAGES),
    path("admin/", admin.site.urls),
]

# Refused, missing and broken pages in the admin's look, saying why (config/error_pages.py).
handler403 = "config.error_pages.permission_denied"
handler404 = "config.error_pages.page_not_found"
handler500 = "config.error_pages.server_error"
