from django.urls import path

from . import views

app_name = "integrations"

urlpatterns = [
    path("fortnox/<int:pk>/connect/", views.fortnox_connect, name="fortnox_connect"),
    path("fortnox/callback", views.fortnox_callback, name="fortnox_callback"),
]
