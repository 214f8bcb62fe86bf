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
                amount=Decimal(str(data.get("refund_amount") or data["amount"])),
                currency=str(data["currency"]),
                payer_name=str(data.get("payer_name", "")),
                occurred_at=datetime.fromtimestamp(int(payload["created"]), tz=UTC),
                payload=payload,
                reversal_id=str(data.get("refund_id") or data.get("dispute_id") or ""),
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
            if refund_id not in payment.refund_ids:
                _record_refund(payment, refund_id, amount)
        return refund_id


def _record_refund(payment: SandboxPayment, refund_id: str, amount: Decimal) -> None:
    """The sandbox PSP's own bookkeeping of a refund (the caller holds the payment's row lock)."""
    if payment.status != SandboxPayment.Status.SUCCEEDED or payment.refunded + amount > payment.amount:
        raise ValueError("refund exceeds the captured amount")
    payment.refunded += amount
    payment.refund_ids = [*payment.refund_ids, refund_id]
    payment.save()


def event_body(payment: SandboxPayment, news: dict | None = None) -> bytes:
    """What the sandbox PSP sends for a payment's current status, or for `news` about it: a refund made at the PSP
    (`{"status": "refunded", "refund_id": ..., "refund_amount": ...}`) or a chargeback
    (`{"status": "charged_back", "dispute_id": ...}`)."""
    data = {
        "reference": payment.reference,
        "status": payment.status,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "payer_name": payment.payer_name,
    } | (news or {})
    return json.dumps(
        {"id": f"evt_{secrets.token_hex(8)}", "type": f"payment.{data['status']}", "created": int(time.time()),
         "data": data}
    ).encode()  # fmt: skip


def sandbox_refund_at_psp(*, reference: str, amount: Decimal) -> str:
    """The merchant refunds from the sandbox PSP's own console (not through the CRM): the PSP refunds and tells the
    CRM by webhook, which must reverse the deposit. Returns the refund id."""
    from payments.tasks import sandbox_deliver_webhook

    with transaction.atomic():
        payment = SandboxPayment.objects.select_for_update().get(reference=reference)
        refund_id = f"rfd_console_{secrets.token_hex(6)}"
        _record_refund(payment, refund_id, amount)
        news = {"status": "refunded", "refund_id": refund_id, "refund_amount": str(amount)}
        transaction.on_commit(lambda: sandbox_deliver_webhook.delay(reference, news))
    return refund_id


def sandbox_charge_back(*, reference: str) -> str:
    """The payer's bank charges the whole payment back; the PSP withdraws the funds and tells the CRM."""
    from payments.tasks import sandbox_deliver_webhook

    with transaction.atomic():
        payment = SandboxPayment.objects.select_for_update().get(reference=reference)
        if payment.status != SandboxPayment.Status.SUCCEEDED:
            raise ValueError("only a captured payment can be charged back")
        dispute_id = f"dp_{secrets.token_hex(6)}"
        payment.status = SandboxPayment.Status.CHARGED_BACK
        payment.save()
        news = {"status": "charged_back", "dispute_id": dispute_id, "amount": str(payment.amount - payment.refunded)}
        transaction.on_commit(lambda: sandbox_deliver_webhook.delay(reference, news))
    return dispute_id
