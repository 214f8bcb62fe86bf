"""The IB-facing pages (`/ib/`): thin views over `ib`'s services and selectors."""

from django.urls import path

from portal import ib_views

app_name = "ib"

urlpatterns = [
    path("", ib_views.dashboard, name="dashboard"),
    path("apply/", ib_views.apply, name="apply"),
    path("links/", ib_views.link_create, name="link_create"),
    path("links/<int:link_id>/qr.svg", ib_views.link_qr, name="link_qr"),
    path("statement/", ib_views.statement, name="statement"),
    path("statement.csv", ib_views.statement_csv, name="statement_csv"),
    path("sub-ibs/<int:sub_ib_id>/", ib_views.sub_ib, name="sub_ib"),
    path("payouts/", ib_views.payouts, name="payouts"),
]
