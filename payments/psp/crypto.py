"""A crypto payment gateway shaped like the common IPN services (NOWPayments, CoinPayments and their kin).

- A deposit opens an invoice priced in the client's fiat currency (`POST {api}/v1/invoice`, `x-api-key` header);
  the client pays any coin the gateway offers on its hosted page.
- The gateway calls back (IPN) with the payment's status, signed in `x-nowpayments-sig`: the hex HMAC-SHA512, keyed
  with the IPN secret, of the JSON body re-serialised with its keys sorted and no spaces.
- Statuses: waiting / confirming (seen on chain, not final) -> confirmed / finished, or partially_paid (the invoice
  ran out with less than asked), failed, expired, refunded. A payment counts only with at least
  `CRYPTO_PSP_MIN_CONFIRMATIONS` confirmations.
- Under- and over-payment: the money that arrived is credited as it arrived, converted at the invoice's own
  rate (`price_amount / pay_amount`), rounded down to the cent, and the deposit says so. It is never held back or
  padded: the client paid that much.

The IPN has no timestamp, so replays are stopped by the inbox's unique event id, which names the payment, its
status, the amount paid and the confirmations: a repeat of the same news is a duplicate, new news is a new event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation

import requests
from django.conf import settings
from django.utils import timezone

from payments.psp import Checkout, PspEvent, PspStatus, WebhookInvalid

SIGNATURE_HEADER = "x-nowpayments-sig"
FINAL_PAID = {"confirmed", "finished", "sending", "partially_paid"}
DECLINED = {"failed", "expired"}


def canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def signature(payload: dict, secret: str | None = None) -> str:
    key = (secret if secret is not None else settings.CRYPTO_PSP_IPN_SECRET).encode()
    return hmac.new(key, canonical(payload), hashlib.sha512).hexdigest()


def _decimal(value, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise WebhookInvalid(f"malformed event: {what}") from None
    if not number.is_finite() or number < 0:
        raise WebhookInvalid(f"malformed event: {what}")
    return number


class CryptoProvider:
    provider_id = "crypto"

    def __init__(self, session: requests.Session | None = None) -> None:
        if not settings.CRYPTO_PSP_API_KEY or not settings.CRYPTO_PSP_IPN_SECRET:
            raise ValueError("Set CRYPTO_PSP_API_KEY and CRYPTO_PSP_IPN_SECRET to take crypto deposits.")
        self.session = session or requests.Session()
        self.api = settings.CRYPTO_PSP_API_URL.rstrip("/")

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(
            method, f"{self.api}{path}", headers={"x-api-key": settings.CRYPTO_PSP_API_KEY}, timeout=(3, 15), **kwargs
        )
        response.raise_for_status()
        return response.json()

    def create_deposit(self, *, deposit, return_url: str, webhook_url: str) -> Checkout:
        invoice = self._call(
            "POST",
            "/v1/invoice",
            json={
                "price_amount": str(deposit.amount),
                "price_currency": deposit.currency.lower(),
                "order_id": str(deposit.pk),
                "order_description": f"Deposit #{deposit.pk}",
                "ipn_callback_url": webhook_url,
                "success_url": return_url,
                "cancel_url": return_url,
            },
        )
        return Checkout(reference=str(invoice["id"]), redirect_url=str(invoice["invoice_url"]))

    def parse_webhook(self, *, body: bytes, headers) -> PspEvent:
        try:
            payload = json.loads(body)
        except ValueError:
            raise WebhookInvalid("malformed event") from None
        if not isinstance(payload, dict):
            raise WebhookInvalid("malformed event")
        given = headers.get(SIGNATURE_HEADER, "")
        if not given or not hmac.compare_digest(given.lower(), signature(payload)):
            raise WebhookInvalid("bad signature")
        return self.event_from_payload(payload)

    def event_from_payload(self, payload: dict) -> PspEvent:
        try:
            payment_id = str(payload["payment_id"])
            status = str(payload["payment_status"])
            invoice = str(payload.get("invoice_id") or payment_id)
            price = _decimal(payload["price_amount"], "price_amount")
            currency = str(payload["price_currency"]).upper()
            asked = _decimal(payload.get("pay_amount") or 0, "pay_amount")
            paid = _decimal(payload.get("actually_paid") or 0, "actually_paid")
            confirmations = payload.get("confirmations")
            confirmations = int(confirmations) if confirmations is not None else None
            updated = payload.get("updated_at")
            occurred = datetime.fromtimestamp(int(updated) / 1000, tz=UTC) if updated else timezone.now()
        except (KeyError, TypeError, ValueError):
            raise WebhookInvalid("malformed event") from None
        received = Decimal(0)
        if asked > 0 and paid > 0:
            received = (price * paid / asked).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        if status in FINAL_PAID:
            enough = confirmations is None or confirmations >= settings.CRYPTO_PSP_MIN_CONFIRMATIONS
            ours = "succeeded" if enough and received > 0 else "pending"
        elif status in DECLINED:
            ours = "declined"
        elif status == "refunded":
            ours = "refunded"
        else:  # waiting, confirming: seen, not final
            ours = "pending"
        return PspEvent(
            event_id=f"{payment_id}:{status}:{paid}:{confirmations if confirmations is not None else '-'}",
            event_type=f"payment.{status}",
            reference=invoice,
            status=ours,
            amount=received if ours in ("succeeded", "pending") else price,
            currency=currency,
            payer_name="",
            occurred_at=occurred,
            payload=payload,
            reversal_id=f"refund:{payment_id}" if ours == "refunded" else "",
            payment_id=payment_id,
            deposit_hint=str(payload.get("order_id") or ""),
            amount_may_differ=True,
            confirmations=confirmations,
        )

    def fetch_status(self, *, reference: str) -> PspStatus:
        data = self._call("GET", f"/v1/payment/?invoiceId={reference}&limit=1")
        payments = data.get("data") or []
        if not payments:
            return PspStatus(reference, "pending", Decimal(0), "")
        event = self.event_from_payload(payments[0])
        return PspStatus(reference, event.status, event.amount, event.currency)

    def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> str:
        raise NotImplementedError("crypto deposits are not refunded to the sending address; withdrawals go by wire")
