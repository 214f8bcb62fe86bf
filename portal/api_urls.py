from django.urls import path

from portal import api

app_name = "api"

urlpatterns = [
    path("me/", api.MeView.as_view(), name="me"),
]
