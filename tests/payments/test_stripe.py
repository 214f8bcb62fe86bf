"""Stripe through its SDK, offline: the SDK's HTTP layer is replaced by canned answers (fixtures in
fixtures/stripe/), while webhook signatures are computed exactly as Stripe computes them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import stripe

from core.models import WebhookEvent, WebhookRejection
from core.webhooks import webhook_process
from payments.ledger import account_balance, client_wallet
from payments.models import Deposit
from payments.psp import provider_for
from payments.psp.stripe import StripeProvider
from payments.services import deposit_create
from tests.crm.factories import ClientFactory
from tests.kyc.factories import verify

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
SECRET = "whsec_test_secret"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class FakeStripeHTTP(stripe.HTTPClient):
    """Answers the SDK's requests from fixtures and remembers them (method, path, form body, idempotency key)."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, str, str]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = url.split("api.stripe.com", 1)[1]
        self.calls.append((method, path, post_data or "", (headers or {}).get("Idempotency-Key", "")))
        if path.startswith("/v1/checkout/sessions"):
            body = fixture("checkout_session.json")
            if method == "get":
                body |= {"payment_status": "paid", "status": "complete"}
        elif path.startswith("/v1/refunds"):
            body = fixture("refund.json")
        else:
            return json.dumps({"error": {"message": "not faked"}}), 404, {}
        return json.dumps(body), 200, {"Request-Id": "req_test"}

    def close(self) -> None:
        return None


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    http = FakeStripeHTTP()
    provider = StripeProvider(http_client=http)
    monkeypatch.setattr("payments.psp.provider_for", lambda pid: provider if pid == "stripe" else provider_for(pid))
    monkeypatch.setattr("payments.services.deposits.provider_for", lambda pid: provider)
    monkeypatch.setattr("payments.webhooks.provider_for", lambda pid: provider)
    return http


def stripe_signature(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = timestamp or int(time.time())
    signed = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signed}"


def _completed_event(reference: str) -> bytes:
    event = fixture("event_checkout_session_completed.json")
    event["created"] = int(time.time())
    event["data"]["object"]["id"] = reference
    return json.dumps(event).encode()


def test_checkout_session_is_created_with_an_idempotency_key(fake_stripe):
    user = ClientFactory()
    verify(user)

    deposit = deposit_create(user=user, amount="250", currency="USD", provider="stripe", base_url="https://crm.test")

    assert (deposit.psp_reference, deposit.checkout_url) == (
        "cs_test_a1B2c3D4e5F6",
        "https://checkout.stripe.com/c/pay/cs_test_a1B2c3D4e5F6",
    )
    method, path, body, key = fake_stripe.calls[0]
    assert (method, path, key) == ("post", "/v1/checkout/sessions", f"deposit:{deposit.pk}:checkout")
    assert "[unit_amount]=25000" in body


def test_a_signed_completed_session_credits_once(client, fake_stripe):
    user = ClientFactory()
    verify(user)
    deposit = deposit_create(user=user, amount="250", currency="USD", provider="stripe", base_url="https://crm.test")
    payload = _completed_event(deposit.psp_reference)

    for _ in range(2):
        response = client.post(
            "/webhooks/psp/stripe/",
            data=payload,
            content_type="application/json",
            headers={"Stripe-Signature": stripe_signature(payload)},
        )
        assert response.status_code == 200
    for event in WebhookEvent.objects.filter(status="received"):
        webhook_process(event_id=event.pk)

    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.CREDITED
    assert account_balance(client_wallet(user=user, currency="USD")) == Decimal("250.00")
    assert WebhookEvent.objects.count() == 1


@pytest.mark.parametrize("bad", ["wrong secret", "stale", "missing"])
def test_forged_or_stale_stripe_signatures_are_refused(client, fake_stripe, bad):
    payload = _completed_event("cs_test_a1B2c3D4e5F6")
    header = {
        "wrong secret": stripe_signature(payload, secret="whsec_guess"),
        "stale": stripe_signature(payload, timestamp=int(time.time()) - 301),
        "missing": "",
    }[bad]

    response = client.post(
        "/webhooks/psp/stripe/", data=payload, content_type="application/json", headers={"Stripe-Signature": header}
    )

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
    assert WebhookRejection.objects.count() == 1


def test_status_fetch_and_refund_use_the_sdk(fake_stripe):
    provider = StripeProvider(http_client=fake_stripe)

    status = provider.fetch_status(reference="cs_test_a1B2c3D4e5F6")
    refund_id = provider.refund(reference="cs_test_a1B2c3D4e5F6", amount=Decimal("100"), idempotency_key="withdrawal:7")

    assert (status.status, status.amount, status.currency) == ("succeeded", Decimal("250"), "USD")
    assert refund_id == "re_3Test0000000001"
    refund_call = next(c for c in fake_stripe.calls if c[1] == "/v1/refunds")
    assert refund_call[3] == "withdrawal:7"
    assert "payment_intent=pi_3Test0000000001" in refund_call[2]
