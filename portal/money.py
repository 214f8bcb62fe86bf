"""Client pages for deposits. Thin: forms and rendering; `payments.services` does the work."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import ApplicationError
from mt5bridge.models import TradingAccount
from payments.models import Deposit, Transfer, Withdrawal
from payments.routing import payment_methods
from payments.services import (
    deposit_create,
    deposits_settle_transfers,
    transfer_create,
    transfers_settle,
    withdrawal_cancel,
    withdrawal_request,
)


class DepositForm(forms.Form):
    method = forms.ChoiceField(label="Pay by", choices=[], widget=forms.RadioSelect)
    amount = forms.DecimalField(label="Amount", min_value=0, decimal_places=2, max_digits=12)
    currency = forms.ChoiceField(label="Currency", choices=[("USD", "USD"), ("EUR", "EUR")])
    trading_account = forms.ModelChoiceField(
        label="Send to", queryset=TradingAccount.objects.none(), required=False, empty_label="My wallet"
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trading_account"].queryset = TradingAccount.objects.filter(
            user=user, state=TradingAccount.State.PROVISIONED, server__kind="live"
        ).select_related("server")
        self.fields["trading_account"].label_from_instance = lambda a: f"Live account {a.login} ({a.currency})"
        methods = payment_methods(user=user)
        self.fields["method"].choices = methods
        self.fields["method"].initial = methods[0][0] if methods else None


@login_required
def deposit(request: HttpRequest) -> HttpResponse:
    form = DepositForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            created = deposit_create(
                user=request.user,
                amount=form.cleaned_data["amount"],
                currency=form.cleaned_data["currency"],
                trading_account=form.cleaned_data["trading_account"],
                method=form.cleaned_data["method"],
                base_url=request.build_absolute_uri("/").rstrip("/"),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect(created.checkout_url)
    return render(request, "portal/deposit.html", {"form": form})


@login_required
def deposit_detail(request: HttpRequest, deposit_id: int) -> HttpResponse:
    try:
        item = Deposit.objects.select_related("trading_account", "balance_operation").get(
            pk=deposit_id, user=request.user
        )
    except Deposit.DoesNotExist:
        raise Http404("No such deposit.") from None
    if item.state == Deposit.State.CREDITED and item.balance_operation_id:
        deposits_settle_transfers()  # show the latest truth rather than wait for the periodic job
        item = Deposit.objects.select_related("trading_account", "balance_operation").get(pk=item.pk)
    return render(request, "portal/deposit_detail.html", {"deposit": item, "bank": settings.BROKER_BANK})


class WithdrawalForm(forms.Form):
    amount = forms.DecimalField(label="Amount", min_value=0, decimal_places=2, max_digits=12)
    currency = forms.ChoiceField(label="Currency", choices=[("USD", "USD"), ("EUR", "EUR")])
    method = forms.ChoiceField(
        label="Send it to",
        choices=Withdrawal.Method.choices,
        widget=forms.RadioSelect,
        initial=Withdrawal.Method.CARD_REFUND,
    )
    destination = forms.CharField(label="IBAN (bank transfers only)", required=False, max_length=60)


@login_required
def withdraw(request: HttpRequest) -> HttpResponse:
    form = WithdrawalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = withdrawal_request(user=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Withdrawal #{created.pk}: {created.get_state_display().lower()}.")
            return redirect("portal:history")
    return render(request, "portal/withdraw.html", {"form": form})


@login_required
@require_POST
def withdrawal_cancel_view(request: HttpRequest, withdrawal_id: int) -> HttpResponse:
    item = Withdrawal.objects.filter(pk=withdrawal_id, user=request.user).first()
    if item is None:
        raise Http404("No such withdrawal.")
    try:
        withdrawal_cancel(withdrawal=item, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Cancelled. The money is back in your wallet.")
    return redirect("portal:history")


@login_required
def history(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    deposits = Deposit.objects.filter(user=request.user).select_related("trading_account")
    withdrawals = Withdrawal.objects.filter(user=request.user)
    transfers = Transfer.objects.filter(user=request.user)
    if state:
        deposits, withdrawals = deposits.filter(state=state), withdrawals.filter(state=state)
        transfers = transfers.filter(state=state)
    rows = sorted(
        [("Deposit", d) for d in deposits[:100]]
        + [("Withdrawal", w) for w in withdrawals[:100]]
        + [("Transfer", t) for t in transfers[:100]],
        key=lambda row: row[1].created_at,
        reverse=True,
    )
    states = sorted(set(Deposit.State.values) | set(Withdrawal.State.values) | set(Transfer.State.values))
    return render(request, "portal/history.html", {"rows": rows, "states": states, "state": state})


class TransferForm(forms.Form):
    direction = forms.ChoiceField(
        label="Direction",
        choices=Transfer.Direction.choices,
        widget=forms.RadioSelect,
        initial=Transfer.Direction.TO_ACCOUNT,
    )
    trading_account = forms.ModelChoiceField(label="Trading account", queryset=TradingAccount.objects.none())
    target_account = forms.ModelChoiceField(
        label="To account (between accounts only)", queryset=TradingAccount.objects.none(), required=False
    )
    amount = forms.DecimalField(label="Amount", min_value=0, decimal_places=2, max_digits=12)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        live = TradingAccount.objects.filter(
            user=user, state=TradingAccount.State.PROVISIONED, server__kind="live"
        ).select_related("server")
        for name in ("trading_account", "target_account"):
            self.fields[name].queryset = live
            self.fields[name].label_from_instance = lambda a: f"Live account {a.login} ({a.currency})"


@login_required
def transfer(request: HttpRequest) -> HttpResponse:
    form = TransferForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            created = transfer_create(user=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Transfer #{created.pk} is on its way; it completes within seconds.")
            return redirect("portal:history")
    transfers_settle()  # show finished transfers as finished
    return render(request, "portal/transfer.html", {"form": form})
