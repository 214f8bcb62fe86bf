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
from kyc.models import AmlAlert
from payments.ledger import account_balance, client_wallet, ledger_is_balanced
from payments.models import Deposit, DepositReversal
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


def _event(event_type: str, obj: dict, event_id: str) -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "created": int(time.time()), "type": event_type, "data": {"object": obj}}
    ).encode()


def _post_all(client, *payloads: bytes) -> None:
    for payload in payloads:
        response = client.post(
            "/webhooks/psp/stripe/", data=payload, content_type="application/json",
            headers={"Stripe-Signature": stripe_signature(payload)},
        )  # fmt: skip
        assert response.status_code == 200
    for event in WebhookEvent.objects.filter(status="received").order_by("pk"):
        webhook_process(event_id=event.pk)


def _credited(client, fake_stripe) -> Deposit:
    user = ClientFactory()
    verify(user)
    deposit = deposit_create(user=user, amount="250", currency="USD", provider="stripe", base_url="https://crm.test")
    _post_all(client, _completed_event(deposit.psp_reference))
    return Deposit.objects.get(pk=deposit.pk)


def test_a_payment_intent_event_arriving_first_credits_through_our_metadata(client, fake_stripe):
    user = ClientFactory()
    verify(user)
    deposit = deposit_create(user=user, amount="250", currency="USD", provider="stripe", base_url="https://crm.test")
    intent = {"id": "pi_3Test0000000001", "object": "payment_intent", "amount": 25000, "amount_received": 25000,
              "currency": "usd", "metadata": {"deposit_id": str(deposit.pk)}, "status": "succeeded"}  # fmt: skip
    failed_try = intent | {"amount_received": 0, "status": "requires_payment_method"}
    _post_all(client, _event("payment_intent.payment_failed", failed_try, "evt_pi_fail"))
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.PENDING  # the client may try another card

    _post_all(client, _event("payment_intent.succeeded", intent, "evt_pi_ok"))
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.CREDITED  # found through our metadata
    assert WebhookEvent.objects.get(event_id="evt_pi_ok").outcome == "credited"
    _post_all(client, _completed_event(deposit.psp_reference))  # the session's event changes nothing now

    credited = Deposit.objects.get(pk=deposit.pk)
    assert credited.state == Deposit.State.CREDITED and credited.psp_payment_id == "pi_3Test0000000001"
    assert account_balance(client_wallet(user=user, currency="USD")) == Decimal("250.00")
    assert "payment_intent_data[metadata][deposit_id]" in fake_stripe.calls[0][2].replace("%5B", "[").replace(
        "%5D", "]"
    )


def test_refunds_made_in_the_stripe_dashboard_reverse_once_ours_never(client, fake_stripe):
    deposit = _credited(client, fake_stripe)
    ours = {"id": "re_ours", "amount": 5000, "status": "succeeded", "metadata": {"crm_key": "withdrawal:1:refund"}}
    theirs = {"id": "re_dash", "amount": 3000, "status": "succeeded", "metadata": {}}
    pending = {"id": "re_pending", "amount": 1000, "status": "pending", "metadata": {}}
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_3Test0000000001", "currency": "usd",
              "amount_refunded": 9000, "refunds": {"data": [ours, theirs, pending]}}  # fmt: skip
    refund_event = {"object": "refund", "payment_intent": "pi_3Test0000000001", "currency": "usd"} | theirs

    _post_all(
        client,
        _event("charge.refunded", charge, "evt_ch_refunded"),
        _event("refund.updated", refund_event, "evt_refund_updated"),
        _event("refund.created", {"object": "refund", "payment_intent": "pi_3Test0000000001", "currency": "usd"} | ours,
               "evt_refund_ours"),
    )  # fmt: skip

    reversals = list(DepositReversal.objects.filter(deposit=deposit).values_list("psp_reference", "amount"))
    assert reversals == [("re_dash", Decimal("30.00"))]
    assert account_balance(client_wallet(user=deposit.user, currency="USD")) == Decimal("220.00")
    assert ledger_is_balanced()


def test_a_lost_dispute_is_a_chargeback_and_a_won_one_reinstates(client, fake_stripe):
    deposit = _credited(client, fake_stripe)
    dispute = {"id": "dp_1", "object": "dispute", "amount": 25000, "currency": "usd",
               "payment_intent": "pi_3Test0000000001", "status": "needs_response"}  # fmt: skip

    _post_all(client, _event("charge.dispute.created", dispute, "evt_dp_created"))
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.CREDITED
    assert AmlAlert.objects.filter(user=deposit.user, rule="dispute_opened").exists()

    _post_all(client, _event("charge.dispute.funds_withdrawn", dispute, "evt_dp_withdrawn"))
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.CHARGED_BACK
    assert account_balance(client_wallet(user=deposit.user, currency="USD")) == 0

    _post_all(client, _event("charge.dispute.funds_reinstated", dispute | {"status": "won"}, "evt_dp_won"))
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.CREDITED
    assert account_balance(client_wallet(user=deposit.user, currency="USD")) == Decimal("250.00")
    assert ledger_is_balanced()


def test_refunds_we_start_carry_our_key_in_their_metadata(fake_stripe):
    from payments.psp import provider_for as registry

    provider = registry("stripe")
    provider.refund(reference="cs_test_a1B2c3D4e5F6", amount=Decimal("100"), idempotency_key="withdrawal:7:refund")
    method, path, body, key = fake_stripe.calls[-1]
    assert (method, path, key) == ("post", "/v1/refunds", "withdrawal:7:refund")
    assert "metadata[crm_key]=withdrawal%3A7%3Arefund" in body.replace("%5B", "[").replace("%5D", "]")
