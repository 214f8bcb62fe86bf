"""Client-facing pages. Thin: they read through selectors and write through services of the apps below."""

from __future__ import annotations

from allauth.mfa.utils import is_mfa_enabled
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crm.models import ClientProfile
from mt5bridge.selectors import client_trading_accounts
from payments.selectors import client_wallet_balances, client_wallet_history


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("portal:dashboard")
    return render(request, "home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    profile = ClientProfile.objects.filter(user=request.user).first()
    return render(
        request,
        "portal/dashboard.html",
        {
            "profile": profile,
            "mfa_enabled": is_mfa_enabled(request.user),
            "accounts": list(client_trading_accounts(user=request.user)[:5]),
            "wallets": client_wallet_balances(user=request.user),
        },
    )


@login_required
def wallet(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/wallet.html",
        {"wallets": client_wallet_balances(user=request.user), "entries": client_wallet_history(user=request.user)},
    )


def _error(request: HttpRequest, status: int, exception: Exception | None = None) -> HttpResponse:
    # Only messages we raised on purpose (PermissionDenied("...")) are shown; anything else stays generic.
    message = str(exception) if status == 403 and exception and str(exception) else ""
    return render(request, f"errors/{status}.html", {"message": message}, status=status)


def error_400(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 400)


def error_403(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 403, exception)


def error_404(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 404)


def error_500(request: HttpRequest) -> HttpResponse:
    return render(request, "errors/500.html", status=500)
