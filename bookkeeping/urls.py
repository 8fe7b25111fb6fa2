from django.urls import path

from . import views

# The connection pages keep their old addresses and names (/integrations/…, "integrations:…"): the
# redirect URIs registered with Fortnox and in the Visma Developer Portal point here.
app_name = "integrations"

urlpatterns = [
    path("fortnox/<int:pk>/connect/", views.connect, {"system": "fortnox"}, name="fortnox_connect"),
    path("fortnox/callback", views.callback, {"system": "fortnox"}, name="fortnox_callback"),
    path("dinero/<int:pk>/connect/", views.connect, {"system": "dinero"}, name="dinero_connect"),
    path("dinero/callback", views.callback, {"system": "dinero"}, name="dinero_callback"),
    # a consent held back because it reaches another company (organisation numbers differ)
    path("held/<int:pk>/", views.held_connection, name="fortnox_held"),
]
