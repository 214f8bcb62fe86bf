"""The IB-facing pages (`/ib/`): thin views over `ib`'s services and selectors."""

from django.urls import path

app_name = "ib"

urlpatterns: list = []
