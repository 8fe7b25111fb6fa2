from django.urls import path

from . import views

# The connection pages keep their old addresses and names (/integrations/…, "integrations:…"):
# the redirect URI registered with Fortnox points here.
app_name = "integrations"

urlpatterns = [
    path("fortnox/<int:pk>/connect/", views.fortnox_connect, name="fortnox_connect"),
    path("fortnox/callback", views.fortnox_callback, name="fortnox_callback"),
    path("fortnox/held/<int:pk>/", views.fortnox_held, name="fortnox_held"),
]
