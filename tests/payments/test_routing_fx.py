"""Routing deposits by country, currency, limits and fee; conversion at a recorded rate."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.errors import ApplicationError
from payments.fx import fx_quote
from payments.ledger import account_balance, client_wallet, ledger_account, ledger_is_balanced
from payments.models import Deposit, LedgerAccount, SandboxPayment
from payments.psp.sandbox import SandboxProvider, event_body
from payments.routing import deposit_route, deposit_routes, payment_methods
from payments.services import deposit_create
from payments.services.deposits import deposit_apply_psp_event
from tests.crm.factories import ClientFactory
from tests.kyc.factories import verify

pytestmark = pytest.mark.django_db
BASE = "http://testserver"
ROUTES = [
    {"method": "card", "provider": "stripe", "label": "Card", "currencies": ["EUR"], "countries": ["DE", "FR"],
     "min": "10", "max": "5000", "fee_percent": "1.4", "fee_fixed": "0.25"},
    {"method": "card", "provider": "sandbox", "label": "Card", "currencies": ["USD", "EUR"], "countries": ["*"],
     "min": "10", "max": "20000", "fee_percent": "2.9", "fee_fixed": "0.30"},
    {"method": "wire", "provider": "wire", "label": "Bank transfer", "currencies": ["USD", "EUR"],
     "countries": ["*"], "min": "100", "max": "100000"},
    {"method": "crypto", "provider": "crypto", "label": "Crypto", "currencies": ["USD"], "countries": ["*", "!US"],
     "min": "20", "max": "50000", "fee_percent": "0.5"},
]  # fmt: skip


def client_in(country: str):
    user = ClientFactory()
    verify(user, "identity")
    user.client_profile.country = country
    user.client_profile.save()
    return user


@pytest.fixture(autouse=True)
def routes(settings):
    settings.PAYMENTS_ROUTES = ROUTES
    settings.PAYMENTS_FX_RATES = {"EURUSD": "1.0800"}
    settings.PAYMENTS_FX_SPREAD = Decimal("0.005")


def test_the_cheapest_eligible_psp_takes_the_card_payment():
    german, american = client_in("DE"), client_in("US")
    assert deposit_route(user=german, method="card", currency="EUR", amount=Decimal("100")).provider == "stripe"
    assert deposit_route(user=german, method="card", currency="USD", amount=Decimal("100")).provider == "sandbox"
    assert deposit_route(user=german, method="card", currency="EUR", amount=Decimal("9000")).provider == "sandbox"
    assert deposit_route(user=american, method="card", currency="EUR", amount=Decimal("100")).provider == "sandbox"


def test_methods_offered_follow_the_country():
    assert [m for m, _ in payment_methods(user=client_in("US"))] == ["card", "wire"]
    assert [m for m, _ in payment_methods(user=client_in("GB"))] == ["card", "wire", "crypto"]
    routes = deposit_routes(user=client_in("GB"), currency="USD", amount=Decimal("200"))
    assert [r.provider for r in routes] == ["wire", "crypto", "sandbox"]  # cheapest first: 0, 1.00, 6.10


@pytest.mark.parametrize(
    ("country", "method", "currency", "amount", "message"),
    [
        ("US", "crypto", "USD", "100", "not available in your country"),
        ("GB", "crypto", "EUR", "100", "takes USD"),
        ("GB", "wire", "USD", "50", "between 100 and 100000"),
        ("GB", "cheque", "USD", "50", "Choose a way to pay"),
    ],
)
def test_an_ineligible_route_is_refused_before_anything_is_recorded(country, method, currency, amount, message):
    with pytest.raises(ApplicationError, match=message):
        deposit_create(user=client_in(country), amount=amount, currency=currency, method=method, base_url=BASE)
    assert not Deposit.objects.exists()


def test_the_psp_fee_is_the_brokers_cost_never_the_clients():
    user = client_in("GB")
    deposit = deposit_create(user=user, amount="200", currency="USD", method="card", base_url=BASE)
    assert (deposit.provider, deposit.fee) == ("sandbox", Decimal("6.10"))
    payment = SandboxPayment.objects.get(reference=deposit.psp_reference)
    payment.status = "succeeded"
    payment.save()
    event = SandboxProvider().event_from_payload(json.loads(event_body(payment)))
    assert deposit_apply_psp_event(provider="sandbox", event=event) == "credited"
    assert account_balance(client_wallet(user=user, currency="USD")) == Decimal("200.00")
    fees = ledger_account(kind=LedgerAccount.Kind.FEES, currency="USD", key="psp:sandbox")
    assert account_balance(fees) == Decimal("-6.10")
    clearing = ledger_account(kind=LedgerAccount.Kind.PSP_CLEARING, currency="USD", key="sandbox")
    assert account_balance(clearing) == Decimal("-193.90")  # what the PSP will settle to the broker
    assert ledger_is_balanced()


def test_a_quote_applies_the_spread_against_the_client():
    assert fx_quote(source_currency="EUR", target_currency="USD").rate == Decimal("1.07460000")
    assert fx_quote(source_currency="USD", target_currency="EUR").rate == Decimal("0.92129630")
    assert fx_quote(source_currency="USD", target_currency="USD").rate == 1
    with pytest.raises(ApplicationError, match="cannot convert USD to GBP"):
        fx_quote(source_currency="USD", target_currency="GBP")


def test_paying_eur_into_a_usd_account_converts_at_the_recorded_rate(live_server_mt5):
    from tests.mt5bridge.factories import open_account

    account = open_account(live_server_mt5)  # a USD account
    user = account.user
    deposit = deposit_create(user=user, amount="100", currency="EUR", trading_account=account, base_url=BASE)
    assert (deposit.wallet_currency, deposit.wallet_amount, deposit.fx_rate) == (
        "USD",
        Decimal("107.46"),
        Decimal("1.0746"),
    )
    payment = SandboxPayment.objects.get(reference=deposit.psp_reference)
    payment.status = "succeeded"
    payment.save()
    event = SandboxProvider().event_from_payload(json.loads(event_body(payment)))
    deposit_apply_psp_event(provider="sandbox", event=event)

    deposit = Deposit.objects.get(pk=deposit.pk)
    assert deposit.balance_operation.amount == Decimal("107.46")
    fx_eur = ledger_account(kind=LedgerAccount.Kind.FX, currency="EUR", key="conversion")
    fx_usd = ledger_account(kind=LedgerAccount.Kind.FX, currency="USD", key="conversion")
    assert (account_balance(fx_eur), account_balance(fx_usd)) == (Decimal("100.00"), Decimal("-107.46"))
    assert account_balance(client_wallet(user=user, currency="USD")) == 0  # on its way to MT5
    assert ledger_is_balanced()
