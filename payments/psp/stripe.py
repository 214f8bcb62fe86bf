"""Stripe, through its own SDK: deposits on a hosted Checkout page (the client's card never touches our servers),
webhooks verified by the SDK with STRIPE_WEBHOOK_SECRET and a 300-second tolerance, refunds with deterministic
idempotency keys.

Deposits are keyed by the Checkout Session id; the payment intent carries our deposit id in its metadata, so its
events find the deposit even when they arrive before the session's. Events and what they mean:
- `checkout.session.completed` (paid), `checkout.session.async_payment_succeeded`, `payment_intent.succeeded`:
  the deposit is paid (whichever arrives first credits; the others are duplicates in effect).
- `checkout.session.async_payment_failed`, `checkout.session.expired`: declined. `payment_intent.payment_failed`
  is only an attempt that failed: Checkout lets the client try another card, so it is recorded, not final.
- `charge.refunded` (each refund in its list) and `refund.created` / `refund.updated` (one refund, once it
  succeeded): a refund made at Stripe (the dashboard, say) reverses that much, once per refund id. Refunds this CRM
  starts itself (return-to-source withdrawals) carry `crm_key` metadata and are not reversed twice.
- `charge.dispute.created`: an alert; `charge.dispute.funds_withdrawn`: the chargeback (ledger reversal, money
  taken back from MT5 where possible, a withdrawal hold); `charge.dispute.funds_reinstated`: the dispute was won.
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
DISPUTE_EVENTS = {
    "charge.dispute.created": "dispute_opened",
    "charge.dispute.funds_withdrawn": "charged_back",
    "charge.dispute.funds_reinstated": "dispute_won",
}


def _minor(amount: Decimal, currency: str) -> int:
    # Stripe wants integer minor units; our currencies here all have two decimals (core.money refuses others).
    return int((amount * 100).to_integral_value())


def _amount(minor) -> Decimal:
    return Decimal(int(minor or 0)) / 100


def _refunds(obj: dict) -> tuple[tuple[str, Decimal], ...]:
    """Succeeded refunds not started by this CRM, as (id, amount)."""
    listed = ((obj.get("refunds") or {}).get("data")) or []
    return tuple(
        (str(r["id"]), _amount(r["amount"]))
        for r in listed
        if r.get("status") == "succeeded" and not (r.get("metadata") or {}).get("crm_key")
    )


def _read(event_type: str, obj: dict) -> dict:
    """The CRM's reading of one Stripe object: reference, status, amount and the ids that find the deposit."""
    hint = str((obj.get("metadata") or {}).get("deposit_id") or "")
    currency = str(obj.get("currency") or "").upper()
    base = {"reference": "", "amount": Decimal(0), "currency": currency, "payer_name": "", "deposit_hint": hint}
    if event_type.startswith("checkout.session."):
        if event_type == "checkout.session.completed":
            status = "succeeded" if obj.get("payment_status") == "paid" else "pending"
        else:
            status = SESSION_EVENTS.get(event_type, event_type)
        return base | {
            "reference": str(obj["id"]), "status": status, "amount": _amount(obj.get("amount_total")),
            "payer_name": ((obj.get("customer_details") or {}).get("name")) or "",
            "payment_id": str(obj.get("payment_intent") or ""),
        }  # fmt: skip
    if event_type.startswith("payment_intent."):
        status = {"payment_intent.succeeded": "succeeded"}.get(event_type, "pending")
        received = obj.get("amount_received") if status == "succeeded" else obj.get("amount")
        return base | {"status": status, "amount": _amount(received), "payment_id": str(obj["id"])}
    if event_type == "charge.refunded":
        return base | {"status": "refunded", "payment_id": str(obj.get("payment_intent") or ""),
                       "amount": _amount(obj.get("amount_refunded")), "reversals": _refunds(obj)}  # fmt: skip
    if event_type in ("refund.created", "refund.updated"):
        ours = bool((obj.get("metadata") or {}).get("crm_key"))
        status = "refunded" if obj.get("status") == "succeeded" and not ours else "pending"
        return base | {"status": status, "payment_id": str(obj.get("payment_intent") or ""),
                       "amount": _amount(obj.get("amount")), "reversal_id": str(obj["id"])}  # fmt: skip
    if event_type.startswith("charge.dispute."):
        status = DISPUTE_EVENTS.get(event_type, "pending")
        return base | {"status": status, "payment_id": str(obj.get("payment_intent") or ""),
                       "amount": _amount(obj.get("amount")), "reversal_id": str(obj["id"])}  # fmt: skip
    return base | {"status": event_type}


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
                "payment_intent_data": {"metadata": {"deposit_id": str(deposit.pk)}},
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
            event_type = str(payload["type"])
            obj = payload["data"]["object"]
            occurred = datetime.fromtimestamp(int(payload["created"]), tz=UTC)
            fields = _read(event_type, obj)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            raise WebhookInvalid("malformed event") from None
        return PspEvent(event_id=str(payload.get("id", "")), event_type=event_type, occurred_at=occurred,
                        payload=payload, **fields)  # fmt: skip

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
            params={
                "payment_intent": session.payment_intent,
                "amount": _minor(amount, str(session.currency)),
                "metadata": {"crm_key": idempotency_key},  # ours: its refund events must not reverse it again
            },
            options={"idempotency_key": idempotency_key},
        )
        return refund.id
