"""Bank wire deposits: manual. The client gets our bank details and a reference to quote; Finance confirms receipt
in the back-office, which credits the deposit through the same idempotent service a PSP webhook uses."""

from __future__ import annotations

import secrets

from payments.psp import Checkout, PspEvent, PspStatus, WebhookInvalid


class WireProvider:
    provider_id = "wire"

    def create_deposit(self, *, deposit, return_url: str, webhook_url: str) -> Checkout:
        # Short, unambiguous, and quoted by the client on the transfer so Finance can match it.
        reference = f"W{deposit.pk:07d}{secrets.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{secrets.randbelow(10)}"
        return Checkout(reference=reference, redirect_url=return_url)

    def parse_webhook(self, *, body: bytes, headers) -> PspEvent:
        raise WebhookInvalid("bank wires have no webhook; Finance confirms them")

    def event_from_payload(self, payload: dict) -> PspEvent:
        raise WebhookInvalid("bank wires have no webhook; Finance confirms them")

    def fetch_status(self, *, reference: str) -> PspStatus:
        raise NotImplementedError("a bank has no status API here; Finance reconciles wires against the statement")

    def refund(self, *, reference: str, amount, idempotency_key: str) -> str:
        raise NotImplementedError("wires are paid out by Finance")
