"""PSP adapters behind one interface, registered in settings.PSP_PROVIDERS and looked up by provider id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class WebhookInvalid(Exception):
    """Not a trustworthy PSP event; the message is the reason kept for the audit (never sent back)."""


@dataclass(frozen=True)
class Checkout:
    reference: str
    redirect_url: str


@dataclass(frozen=True)
class PspEvent:
    """One verified PSP event, in the CRM's words.

    `status`: "succeeded" | "declined" | "pending" (nothing to do yet) | "refunded" (a refund made at the PSP,
    `reversal_id` names it, `amount` is the refund) | "dispute_opened" | "charged_back" (the dispute's money left,
    `reversal_id` names the dispute) | "dispute_won" (reinstated) | anything else (recorded, ignored).
    """

    event_id: str
    event_type: str
    reference: str
    status: str
    amount: Decimal
    currency: str
    payer_name: str
    occurred_at: datetime
    payload: dict
    reversal_id: str = ""
    payment_id: str = ""  # the PSP's payment id when `reference` names the checkout (Stripe's payment intent)
    deposit_hint: str = ""  # our deposit id, when the PSP echoes our metadata (lets an early event find its deposit)
    amount_may_differ: bool = False  # crypto: under- or over-payment is credited as it arrived, not held
    confirmations: int | None = None
    # Several refunds reported by one event (Stripe's charge.refunded): (refund id, amount) each.
    reversals: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True)
class PspStatus:
    reference: str
    status: str
    amount: Decimal
    currency: str


class PaymentProvider(Protocol):
    provider_id: str

    def create_deposit(self, *, deposit, return_url: str, webhook_url: str) -> Checkout: ...

    def parse_webhook(self, *, body: bytes, headers) -> PspEvent:
        """Verify the signature and parse; raises WebhookInvalid."""
        ...

    def event_from_payload(self, payload: dict) -> PspEvent:
        """Parse a stored, already verified payload (processing and replay)."""
        ...

    def fetch_status(self, *, reference: str) -> PspStatus: ...


@cache
def provider_for(provider_id: str) -> PaymentProvider:
    try:
        return import_string(settings.PSP_PROVIDERS[provider_id])()
    except KeyError:
        raise ValueError(f"Unknown payment provider {provider_id!r}.") from None
