"""Reads of the ledger that the portal, the API and the back-office share."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from core.db import DecimalSum
from payments.models import LedgerAccount, LedgerEntry


def client_wallet_balances(*, user) -> list[dict]:
    """The client's wallets with their balances (sum of entries), one query."""
    rows = (
        LedgerAccount.objects.filter(user=user, kind=LedgerAccount.Kind.CLIENT_WALLET)
        .annotate(balance=DecimalSum("entries__amount"))
        .order_by("currency")
    )
    return [{"currency": row.currency, "balance": row.balance or Decimal(0), "account_id": row.pk} for row in rows]


def client_wallet_history(*, user, limit: int = 50) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(account__user=user, account__kind=LedgerAccount.Kind.CLIENT_WALLET)
        .select_related("transaction", "account")
        .order_by("-id")[:limit]
    )
