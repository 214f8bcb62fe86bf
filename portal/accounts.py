"""Client pages for MT5 trading accounts. Reads through selectors, writes through mt5bridge services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from core.errors import ApplicationError
from mt5bridge import selectors
from mt5bridge.manager_api import MT5Error
from mt5bridge.models import TradingAccount
from mt5bridge.services import (
    account_snapshot_refresh,
    trading_account_change_leverage,
    trading_account_open,
    trading_account_reset_password,
    trading_account_reveal_password,
)
from portal.forms import LeverageForm, OpenAccountForm

UNAVAILABLE = "The trading server is not answering right now. Nothing was changed; please try again in a minute."


def _account(request: HttpRequest, account_id: int) -> TradingAccount:
    try:
        return selectors.client_trading_account(user=request.user, account_id=account_id)
    except TradingAccount.DoesNotExist:
        raise Http404("No such account.") from None


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = list(selectors.client_trading_accounts(user=request.user))
    return render(request, "portal/accounts/list.html", {"accounts": accounts})


@login_required
def account_open(request: HttpRequest) -> HttpResponse:
    groups = selectors.open_account_offer()
    form = OpenAccountForm(request.POST or None, groups=groups)
    if request.method == "POST" and form.is_valid():
        try:
            account = trading_account_open(user=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Account {account.login} is being opened. This takes a few seconds.")
            return redirect("portal:account_detail", account_id=account.pk)
    return render(request, "portal/accounts/open.html", {"form": form, "offer": bool(groups)})


@login_required
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account(request, account_id)
    return render(
        request, "portal/accounts/detail.html", {"account": account, "leverage_form": LeverageForm(account=account)}
    )


@login_required
@require_POST
def account_refresh(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account(request, account_id)
    try:
        account_snapshot_refresh(account=account)
    except MT5Error:
        messages.error(request, "The trading server is not answering; the figures shown are the last we read.")
    return redirect("portal:account_detail", account_id=account.pk)


@login_required
@require_POST
def account_leverage(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account(request, account_id)
    form = LeverageForm(request.POST, account=account)
    if form.is_valid():
        try:
            trading_account_change_leverage(account=account, user=request.user, leverage=form.cleaned_data["leverage"])
        except ApplicationError as exc:
            messages.error(request, exc.message)
        except MT5Error:
            messages.error(request, UNAVAILABLE)
        else:
            messages.success(request, f"Leverage is now 1:{account.leverage}.")
    else:
        messages.error(request, "Choose one of the leverage values offered.")
    return redirect("portal:account_detail", account_id=account.pk)


@never_cache
@login_required
@require_POST
def account_password(request: HttpRequest, account_id: int) -> HttpResponse:
    """Show the first password once, or set and show a new one. The page is never cached."""
    account = _account(request, account_id)
    reset = request.POST.get("action") == "reset"
    try:
        if reset:
            password = trading_account_reset_password(account=account, user=request.user)
        else:
            password = trading_account_reveal_password(account=account, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("portal:account_detail", account_id=account.pk)
    except MT5Error:
        messages.error(request, UNAVAILABLE)
        return redirect("portal:account_detail", account_id=account.pk)
    return render(request, "portal/accounts/password.html", {"account": account, "password": password, "reset": reset})
