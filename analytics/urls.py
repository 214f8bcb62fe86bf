"""Staff analytics dashboards and exports (`/staff/analytics/`)."""

from django.urls import path

app_name = "analytics"

urlpatterns: list = []
