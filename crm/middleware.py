"""Staff must enrol a second factor before they see anything in the back-office."""

from __future__ import annotations

from collections.abc import Callable

from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse


class StaffSecondFactorMiddleware:
    """A signed-in staff user without TOTP who opens the admin is sent to enrol first.

    Login and logout pages stay reachable so nobody is locked out of the enrolment itself.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.is_staff
            and request.path.startswith("/admin/")
            and not request.path.startswith(("/admin/login/", "/admin/logout/"))
            and not is_mfa_enabled(user)
        ):
            messages.warning(request, "Staff accounts need two-factor authentication. Enrol an authenticator app.")
            return redirect(reverse("mfa_activate_totp"))
        return self.get_response(request)
