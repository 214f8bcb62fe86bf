from __future__ import annotations

from mt5bridge.models import TradeServer, TradingAccount
from mt5bridge.services import trading_account_open, trading_account_provision
from tests.crm.factories import ClientFactory
from tests.kyc.factories import verify


def open_account(
    server: TradeServer, *, user=None, account_type: str = "standard", currency: str = "USD", leverage: int = 100
) -> TradingAccount:
    """A provisioned account on the mock, opened through the real services (the task is run inline)."""
    user = user or ClientFactory()
    if server.kind == TradeServer.Kind.LIVE:
        verify(user)
    account = trading_account_open(
        user=user, kind=server.kind, account_type=account_type, currency=currency, leverage=leverage
    )
    return trading_account_provision(account_id=account.pk)
