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
    event_id: str
    event_type: str
    reference: str
    status: str  # "succeeded" | "declined" | "pending" | other (ignored)
    amount: Decimal
    currency: str
    payer_name: str
    occurred_at: datetime
    payload: dict


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
