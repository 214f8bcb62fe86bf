"""Staff analytics dashboards and exports (`/staff/analytics/`)."""

from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("payments/", views.payments, name="payments"),
    path("clients/", views.clients, name="clients"),
    path("ibs/", views.ibs, name="ibs"),
    path("exposure/", views.exposure, name="exposure"),
    path("builds/", views.builds, name="builds"),
    path("export/<slug:table>.<slug:fmt>", views.export, name="export"),
]
