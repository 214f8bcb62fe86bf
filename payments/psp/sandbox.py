"""The sandbox card PSP built into the project, for offline demos and tests. NOT A REAL PSP: no money moves.

Its hosted page (`/psp/sandbox/pay/<reference>/`, marked as a test page) offers success, decline, 3-D Secure and a
delayed outcome. Outcomes reach the CRM only as webhooks signed with HMAC-SHA256, posted over HTTP by a task, exactly
like a real PSP's: header `Sandbox-Signature: t=<unix time>,v1=<hex HMAC of "<t>.<raw body>">`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from payments.models import SandboxPayment
from payments.psp import Checkout, PspEvent, PspStatus, WebhookInvalid

TOLERANCE_SECONDS = 300


def signature(body: bytes, timestamp: int, secret: str | None = None) -> str:
    key = (secret or settings.SANDBOX_PSP_WEBHOOK_SECRET).encode()
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, *, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
    timestamp = timestamp or int(time.time())
    return {"Sandbox-Signature": f"t={timestamp},v1={signature(body, timestamp, secret)}"}


class SandboxProvider:
    provider_id = "sandbox"

    def create_deposit(self, *, deposit, return_url: str, webhook_url: str) -> Checkout:
        payment = SandboxPayment.objects.create(
            reference=f"sbx_{secrets.token_hex(10)}",
            amount=deposit.amount,
            currency=deposit.currency,
            return_url=return_url,
            webhook_url=webhook_url,
        )
        base = return_url.split("/portal/", 1)[0]
        return Checkout(payment.reference, base + reverse("sandbox_psp_pay", args=[payment.reference]))

    def parse_webhook(self, *, body: bytes, headers) -> PspEvent:
        header = headers.get("Sandbox-Signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
        except (KeyError, ValueError):
            raise WebhookInvalid("missing or malformed signature header") from None
        if not hmac.compare_digest(parts.get("v1", ""), signature(body, timestamp)):
            raise WebhookInvalid("bad signature")
        if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
            raise WebhookInvalid("signature timestamp outside tolerance")
        try:
            payload = json.loads(body)
        except ValueError:
            raise WebhookInvalid("malformed event") from None
        return self.event_from_payload(payload)

    def event_from_payload(self, payload: dict) -> PspEvent:
        """Read a stored (already verified) event again, for processing and replay."""
        try:
            data = payload["data"]
            return PspEvent(
                event_id=str(payload["id"]),
                event_type=str(payload["type"]),
                reference=str(data["reference"]),
                status=str(data["status"]),
                amount=Decimal(str(data["amount"])),
                currency=str(data["currency"]),
                payer_name=str(data.get("payer_name", "")),
                occurred_at=datetime.fromtimestamp(int(payload["created"]), tz=UTC),
                payload=payload,
            )
        except (ValueError, KeyError, TypeError, ArithmeticError):
            raise WebhookInvalid("malformed event") from None

    def fetch_status(self, *, reference: str) -> PspStatus:
        payment = SandboxPayment.objects.get(reference=reference)
        return PspStatus(reference=reference, status=payment.status, amount=payment.amount, currency=payment.currency)

    def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> str:
        """Refund part of a captured payment; the same key refunds once (like the real PSPs' idempotency keys)."""
        with transaction.atomic():
            payment = SandboxPayment.objects.select_for_update().get(reference=reference)
            refund_id = f"rfd_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"
            if refund_id in payment.refund_ids:
                return refund_id
            if payment.status != SandboxPayment.Status.SUCCEEDED or payment.refunded + amount > payment.amount:
                raise ValueError("refund exceeds the captured amount")
            payment.refunded += amount
            payment.refund_ids = [*payment.refund_ids, refund_id]
            payment.save()
        return refund_id


def event_body(payment: SandboxPayment) -> bytes:
    """What the sandbox PSP sends for a payment's current status."""
    return json.dumps(
        {
            "id": f"evt_{secrets.token_hex(8)}",
            "type": f"payment.{payment.status}",
            "created": int(time.time()),
            "data": {
                "reference": payment.reference,
                "status": payment.status,
                "amount": str(payment.amount),
                "currency": payment.currency,
                "payer_name": payment.payer_name,
            },
        }
    ).encode()
