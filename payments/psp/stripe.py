"""Stripe, through its own SDK: deposits on a hosted Checkout page (the client's card never touches our servers),
webhooks verified by the SDK with STRIPE_WEBHOOK_SECRET and a 300-second tolerance, refunds with deterministic
idempotency keys.

Deposits are keyed by the Checkout Session id. Events acted on: `checkout.session.completed` (paid),
`checkout.session.async_payment_succeeded` / `..._failed`, `checkout.session.expired`. PaymentIntent, charge and
dispute events are verified and recorded in the inbox; refunds we start are confirmed synchronously. NOT YET:
turning `charge.refunded` / `charge.dispute.*` into ledger reversals (chargebacks) - they are recorded and ignored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import stripe
from django.conf import settings

from payments.psp import Checkout, PspEvent, PspStatus, WebhookInvalid

TOLERANCE_SECONDS = 300
# Checkout Session events and the status they mean for a deposit.
SESSION_EVENTS = {
    "checkout.session.async_payment_succeeded": "succeeded",
    "checkout.session.async_payment_failed": "declined",
    "checkout.session.expired": "declined",
}


def _minor(amount: Decimal, currency: str) -> int:
    # Stripe wants integer minor units; our currencies here all have two decimals (core.money refuses others).
    return int((amount * 100).to_integral_value())


class StripeProvider:
    provider_id = "stripe"

    def __init__(self, http_client: stripe.HTTPClient | None = None) -> None:
        if not settings.STRIPE_SECRET_KEY:
            raise ValueError("Set STRIPE_SECRET_KEY to use Stripe.")
        self.client = stripe.StripeClient(settings.STRIPE_SECRET_KEY, http_client=http_client, max_network_retries=2)

    def create_deposit(self, *, deposit, return_url: str, webhook_url: str) -> Checkout:
        session = self.client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "success_url": return_url,
                "cancel_url": return_url,
                "client_reference_id": str(deposit.pk),
                "metadata": {"deposit_id": str(deposit.pk)},
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": deposit.currency.lower(),
                            "unit_amount": _minor(deposit.amount, deposit.currency),
                            "product_data": {"name": f"Deposit #{deposit.pk}"},
                        },
                    }
                ],
            },
            options={"idempotency_key": f"deposit:{deposit.pk}:checkout"},
        )
        return Checkout(reference=session.id, redirect_url=session.url)

    def parse_webhook(self, *, body: bytes, headers) -> PspEvent:
        try:
            stripe.Webhook.construct_event(
                body, headers.get("Stripe-Signature"), settings.STRIPE_WEBHOOK_SECRET, tolerance=TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookInvalid(f"bad signature: {exc.user_message or 'verification failed'}") from None
        except ValueError:
            raise WebhookInvalid("malformed event") from None
        return self.event_from_payload(json.loads(body))

    def event_from_payload(self, payload: dict) -> PspEvent:
        try:
            event_type = payload["type"]
            obj = payload["data"]["object"]
            occurred = datetime.fromtimestamp(int(payload["created"]), tz=UTC)
        except (KeyError, TypeError, ValueError):
            raise WebhookInvalid("malformed event") from None
        status, reference, amount, currency, payer = event_type, str(obj.get("id", "")), Decimal(0), "", ""
        if event_type.startswith("checkout.session."):
            amount = Decimal(obj.get("amount_total") or 0) / 100
            currency = str(obj.get("currency") or "").upper()
            payer = ((obj.get("customer_details") or {}).get("name")) or ""
            if event_type == "checkout.session.completed":
                status = "succeeded" if obj.get("payment_status") == "paid" else "pending"
            else:
                status = SESSION_EVENTS.get(event_type, event_type)
        return PspEvent(str(payload.get("id", "")), event_type, reference, status, amount, currency, payer, occurred,
                        payload)  # fmt: skip

    def fetch_status(self, *, reference: str) -> PspStatus:
        session = self.client.v1.checkout.sessions.retrieve(reference)
        status = {"paid": "succeeded", "unpaid": "pending", "no_payment_required": "succeeded"}.get(
            session.payment_status, session.payment_status
        )
        if session.status == "expired":
            status = "declined"
        return PspStatus(reference, status, Decimal(session.amount_total or 0) / 100, str(session.currency).upper())

    def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> str:
        session = self.client.v1.checkout.sessions.retrieve(reference)
        refund = self.client.v1.refunds.create(
            params={"payment_intent": session.payment_intent, "amount": _minor(amount, str(session.currency))},
            options={"idempotency_key": idempotency_key},
        )
        return refund.id
