"""Reads of the MT5 bridge that several doors share."""

from __future__ import annotations

from django.db.models import QuerySet

from mt5bridge.models import TradeServer, TradingAccount, TradingGroup


def client_trading_accounts(*, user) -> QuerySet[TradingAccount]:
    return TradingAccount.objects.filter(user=user).select_related("server", "group").order_by("-created_at")


def client_trading_account(*, user, account_id: int) -> TradingAccount:
    """One of the client's own accounts; another client's id raises DoesNotExist (the door answers 404)."""
    return client_trading_accounts(user=user).get(pk=account_id)


def open_account_offer() -> list[TradingGroup]:
    """The groups a client may open an account in: enabled, on an active server."""
    return list(
        TradingGroup.objects.filter(enabled=True, server__is_active=True)
        .select_related("server")
        .order_by("server__kind", "account_type", "currency")
    )


def offer_choices(groups: list[TradingGroup]) -> dict[str, list]:
    kinds = sorted({g.server.kind for g in groups}, key=lambda k: k != TradeServer.Kind.LIVE)
    return {
        "kind": [(k, TradeServer.Kind(k).label) for k in kinds],
        "account_type": sorted({(g.account_type, g.get_account_type_display()) for g in groups}),
        "currency": sorted({(g.currency, g.currency) for g in groups}),
        "leverage": [(v, f"1:{v}") for v in sorted({v for g in groups for v in g.leverages})],
    }
