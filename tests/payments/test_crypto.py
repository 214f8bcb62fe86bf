"""The crypto gateway (IPN-style): invoices over a faked HTTP session, callbacks signed with HMAC-SHA512 over the
sorted JSON body exactly as the gateways sign them, confirmations, under- and over-payment."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest

from core.models import WebhookEvent, WebhookRejection
from core.webhooks import webhook_process
from payments.ledger import account_balance, client_wallet, ledger_is_balanced
from payments.models import Deposit
from payments.psp import provider_for
from payments.psp.crypto import CryptoProvider
from payments.services import deposit_create
from tests.crm.factories import ClientFactory
from tests.kyc.factories import verify

pytestmark = pytest.mark.django_db
SECRET = "ipn-secret-for-tests"
BASE = "http://testserver"


class FakeGateway:
    """Answers the invoice call and remembers what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def request(self, method, url, headers=None, timeout=None, json=None):
        self.calls.append((method, url, {"headers": headers, "json": json}))
        outer = self

        class Response:
            status_code = 200

            def raise_for_status(self):
                return None

            def json(self):
                return {"id": 5077125051, "invoice_url": f"https://nowpayments.io/payment/?iid={len(outer.calls)}"}

        return Response()


@pytest.fixture
def gateway(settings, monkeypatch):
    settings.CRYPTO_PSP_API_KEY = "api-key"
    settings.CRYPTO_PSP_IPN_SECRET = SECRET
    settings.CRYPTO_PSP_MIN_CONFIRMATIONS = 2
    fake = FakeGateway()
    provider = CryptoProvider(session=fake)
    provider_for.cache_clear()
    monkeypatch.setattr("payments.services.deposits.provider_for", lambda name: provider)
    yield fake
    provider_for.cache_clear()


@pytest.fixture
def deposit(gateway):
    user = ClientFactory()
    verify(user, "identity")
    return deposit_create(user=user, amount="100", currency="USD", provider="crypto", base_url=BASE)


def ipn(deposit: Deposit, status: str, *, paid: str = "0.0025", asked: str = "0.0025", confirmations=None) -> dict:
    body = {
        "payment_id": 4242,
        "invoice_id": int(deposit.psp_reference),
        "payment_status": status,
        "pay_address": "bc1qexample",
        "price_amount": 100,
        "price_currency": "usd",
        "pay_amount": float(asked),
        "actually_paid": float(paid),
        "pay_currency": "btc",
        "order_id": str(deposit.pk),
        "updated_at": 1764000000000,
    }
    if confirmations is not None:
        body["confirmations"] = confirmations
    return body


def post(client, body: dict, *, secret: str = SECRET, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()  # the gateway's own key order
    sig = hmac.new(secret.encode(), json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha512)
    response = client.post(
        "/webhooks/psp/crypto/",
        data=data,
        content_type="application/json",
        headers={"x-nowpayments-sig": sig.hexdigest()},
    )
    for event in WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED):
        webhook_process(event_id=event.pk)
    return response


def test_the_invoice_is_priced_in_fiat_and_calls_us_back(gateway, deposit):
    method, url, sent = gateway.calls[0]
    assert (method, url) == ("POST", "https://api.nowpayments.io/v1/invoice")
    assert sent["headers"] == {"x-api-key": "api-key"}
    assert sent["json"]["price_amount"] == "100.00" and sent["json"]["price_currency"] == "usd"
    assert sent["json"]["order_id"] == str(deposit.pk)
    assert sent["json"]["ipn_callback_url"] == f"{BASE}/webhooks/psp/crypto/"
    assert deposit.state == Deposit.State.PENDING and deposit.psp_reference == "5077125051"


def test_a_payment_counts_only_with_enough_confirmations(client, deposit):
    assert post(client, ipn(deposit, "confirming", confirmations=1)).status_code == 200
    seen = Deposit.objects.get(pk=deposit.pk)
    assert seen.state == Deposit.State.PENDING and seen.confirmations == 1
    assert post(client, ipn(deposit, "finished", confirmations=1)).status_code == 200
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.PENDING

    post(client, ipn(deposit, "finished", confirmations=3))
    post(client, ipn(deposit, "finished", confirmations=3))  # a repeat of the same news is a duplicate

    credited = Deposit.objects.get(pk=deposit.pk)
    assert credited.state == Deposit.State.CREDITED and credited.confirmations == 3
    assert account_balance(client_wallet(user=deposit.user, currency="USD")) == Decimal("100.00")
    assert WebhookEvent.objects.filter(provider="crypto").count() == 3
    assert ledger_is_balanced()


def test_an_under_payment_credits_what_arrived_and_says_so(client, deposit):
    post(client, ipn(deposit, "partially_paid", paid="0.0020", confirmations=2))
    credited = Deposit.objects.get(pk=deposit.pk)
    assert credited.state == Deposit.State.CREDITED
    assert (credited.amount, credited.requested_amount) == (Decimal("80.00"), Decimal("100.00"))
    assert credited.note.startswith("Under-paid: 80.00 of 100.00 USD")
    assert account_balance(client_wallet(user=deposit.user, currency="USD")) == Decimal("80.00")
    assert ledger_is_balanced()


def test_an_over_payment_is_credited_in_full_rounded_down_to_the_cent(client, deposit):
    post(client, ipn(deposit, "finished", paid="0.00262501", confirmations=6))
    credited = Deposit.objects.get(pk=deposit.pk)
    # 100 * 0.00262501 / 0.0025 = 105.0004 -> 105.00
    assert (credited.amount, credited.requested_amount) == (Decimal("105.00"), Decimal("100.00"))
    assert credited.note.startswith("Over-paid")
    assert account_balance(client_wallet(user=deposit.user, currency="USD")) == Decimal("105.00")


def test_failed_and_expired_payments_fail_the_deposit(client, deposit):
    post(client, ipn(deposit, "expired"))
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.FAILED


@pytest.mark.parametrize("secret", ["wrong-secret", ""])
def test_forged_callbacks_are_refused_and_change_nothing(client, deposit, secret):
    response = post(client, ipn(deposit, "finished", confirmations=9), secret=secret or "x")
    if not secret:
        response = client.post(
            "/webhooks/psp/crypto/", data=json.dumps(ipn(deposit, "finished")), content_type="application/json"
        )
    assert response.status_code == 400
    assert WebhookRejection.objects.filter(provider="crypto").exists()
    assert not WebhookEvent.objects.exists()
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.PENDING


def test_a_malformed_callback_is_refused(client, deposit):
    body = ipn(deposit, "finished", confirmations=3)
    body["actually_paid"] = "lots"
    assert post(client, body).status_code == 400
    assert post(client, {}, raw=b"not json").status_code == 400
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.PENDING
