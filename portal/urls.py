from django.urls import path

from portal import accounts, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("portal/", views.dashboard, name="dashboard"),
    path("portal/accounts/", accounts.account_list, name="account_list"),
    path("portal/accounts/open/", accounts.account_open, name="account_open"),
    path("portal/accounts/<int:account_id>/", accounts.account_detail, name="account_detail"),
    path("portal/accounts/<int:account_id>/refresh/", accounts.account_refresh, name="account_refresh"),
    path("portal/accounts/<int:account_id>/leverage/", accounts.account_leverage, name="account_leverage"),
    path("portal/accounts/<int:account_id>/password/", accounts.account_password, name="account_password"),
]
