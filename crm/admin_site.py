"""The staff door: the Django admin, reachable only by active staff with an enrolled second factor."""

from __future__ import annotations

from allauth.account.views import LoginView
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme


class BackOfficeAdminSite(admin.AdminSite):
    site_header = f"{settings.BROKER_NAME} back-office"
    site_title = f"{settings.BROKER_NAME} back-office"
    index_title = "Back-office"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and is_mfa_enabled(user))

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """Staff sign in through the same allauth flow as clients, so the second factor is always asked for."""
        if request.user.is_authenticated:
            if not request.user.is_staff:
                raise PermissionDenied("The back-office is for staff only.")
            if self.has_permission(request):
                target = request.GET.get("next", "")
                allowed = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
                return redirect(target if allowed and target else "admin:index")
        return LoginView.as_view(template_name="admin/staff_login.html")(request)
