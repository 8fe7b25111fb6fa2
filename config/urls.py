from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

# Admin pages whose models moved to a flow's app keep working at their old addresses (bookmarks,
# e-mails): /admin/bookkeeping/expensedocument/… → /admin/expense_documents/expensedocument/… and
# /admin/integrations/netspayout/… → /admin/card_payments/netspayout/….
MOVED_ADMIN_PAGES = [
    ("bookkeeping", "expense_documents", "expensedocument|expenseline|workflowrule"),
    ("integrations", "card_payments", "netspayout|netspaymentaction|netspayment|problemreport"),
]

urlpatterns = [
    path("integrations/", include("bookkeeping.urls")),
    *(re_path(rf"^admin/{old}/(?P<rest>(?:{models})/.*)$",
              RedirectView.as_view(url=f"/admin/{new}/%(rest)s", permanent=True, query_string=True))
      for old, new, models in MOVED_ADMIN_PAGES),
    path("admin/", admin.site.urls),
]
