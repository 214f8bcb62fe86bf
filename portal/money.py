"""Client pages for deposits. Thin: forms and rendering; `payments.services` does the work."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.errors import ApplicationError
from mt5bridge.models import TradingAccount
from payments.models import Deposit
from payments.services import deposit_create, deposits_settle_transfers


class DepositForm(forms.Form):
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
        deposits_settle_transfers()  # the page shows the latest truth rather than waiting for the periodic job
        item.refresh_from_db(fields=["updated_at"])
        item = Deposit.objects.select_related("trading_account", "balance_operation").get(pk=item.pk)
    return render(request, "portal/deposit_detail.html", {"deposit": item})
