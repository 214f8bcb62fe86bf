"""The MT5 bridge's use cases. Import from here; the modules are split by noun."""

from mt5bridge.services.accounts import (
    trading_account_change_leverage,
    trading_account_disable,
    trading_account_open,
    trading_account_provision,
    trading_account_reset_password,
    trading_account_reveal_password,
)
from mt5bridge.services.balance import (
    balance_operation_create,
    balance_operation_resolve,
    balance_operation_send,
    balance_operations_resolve_stuck,
)
from mt5bridge.services.sync import (
    account_snapshot_refresh,
    accounts_snapshot_sync,
    deals_import,
    deals_store,
    positions_snapshot_sync,
    trade_server_ping,
    trade_server_sync_groups,
)

__all__ = [
    "account_snapshot_refresh",
    "accounts_snapshot_sync",
    "balance_operation_create",
    "balance_operation_resolve",
    "balance_operation_send",
    "balance_operations_resolve_stuck",
    "deals_import",
    "deals_store",
    "positions_snapshot_sync",
    "trade_server_ping",
    "trade_server_sync_groups",
    "trading_account_change_leverage",
    "trading_account_disable",
    "trading_account_open",
    "trading_account_provision",
    "trading_account_reset_password",
    "trading_account_reveal_password",
]
