"""Celery doors of the MT5 bridge: load ids, call a service. All are safe to run twice."""

from __future__ import annotations

import contextlib

from celery import shared_task
from django.conf import settings

from core.tasks import LOW_PRIORITY, RETRYING


def _active_servers():
    from mt5bridge.models import TradeServer

    return TradeServer.objects.filter(is_active=True)


@shared_task(name="mt5bridge.trading_account_provision", **RETRYING)
def trading_account_provision(account_id: int) -> str:
    from mt5bridge.manager_api import MT5Error
    from mt5bridge.services import account_snapshot_refresh
    from mt5bridge.services import trading_account_provision as provision

    account = provision(account_id=account_id)
    if account.state == account.State.PROVISIONED:
        # Read the figures now so the portal shows them at once; if MT5 is slow, the periodic snapshot will.
        with contextlib.suppress(MT5Error):
            account_snapshot_refresh(account=account)
    return account.state


# The hard limit bounds how long a send can be in flight; the sweeper waits longer than this before it treats a
# "sent" operation as abandoned (see balance_operations_resolve_stuck).
@shared_task(
    name="mt5bridge.balance_operation_send",
    time_limit=settings.MT5_SEND_TIME_LIMIT,
    soft_time_limit=settings.MT5_SEND_TIME_LIMIT - 10,
    **{**RETRYING, "max_retries": 30, "retry_backoff_max": 60},
)
def balance_operation_send(operation_id: int) -> str:
    from mt5bridge.services import balance_operation_send as send

    operation = send(operation_id=operation_id)
    balance_operation_sent(operation)
    return operation.state


def balance_operation_sent(operation) -> None:
    """After a send: once confirmed, show the new balance soon (the periodic snapshot would lag by up to a minute),
    but in a task of its own at low priority: reading the account is one more MT5 round trip the next money movement
    must not wait for."""
    if operation.state == operation.State.CONFIRMED:
        account_snapshot_refresh.apply_async(
            (operation.account_id, operation.resolved_at.timestamp()), priority=LOW_PRIORITY
        )


@shared_task(name="mt5bridge.account_snapshot_refresh", acks_late=True, time_limit=60, soft_time_limit=50)
def account_snapshot_refresh(account_id: int, changed_at: float) -> str:
    """Re-read an account whose balance changed at `changed_at` (a Unix time). Coalesces a burst: when a snapshot
    taken since then is stored already, there is nothing to do. A failed read (or, with several workers, a read that
    was in flight across the change and stored after it) is put right by the periodic snapshot within a minute."""
    from mt5bridge.manager_api import MT5Error
    from mt5bridge.models import TradingAccount
    from mt5bridge.services import account_snapshot_refresh as refresh

    account = TradingAccount.objects.select_related("server").get(pk=account_id)
    if account.snapshot_at is not None and account.snapshot_at.timestamp() >= changed_at:
        return "fresh"
    try:
        refresh(account=account)
    except MT5Error as exc:
        return f"failed: {exc}"
    return "refreshed"


@shared_task(name="mt5bridge.balance_operation_resolve", **{**RETRYING, "max_retries": 30, "retry_backoff_max": 60})
def balance_operation_resolve(operation_id: int) -> str:
    from mt5bridge.services import balance_operation_resolve as resolve

    return resolve(operation_id=operation_id).state


@shared_task(name="mt5bridge.balance_operations_resolve_stuck", acks_late=True)
def balance_operations_resolve_stuck() -> dict:
    from mt5bridge.services import balance_operations_resolve_stuck as sweep

    return sweep()


@shared_task(name="mt5bridge.accounts_snapshot_sync", acks_late=True, time_limit=600, soft_time_limit=540)
def accounts_snapshot_sync() -> dict:
    from mt5bridge.manager_api import MT5Error
    from mt5bridge.services import accounts_snapshot_sync as sync

    done = {}
    for server in _active_servers():
        try:
            done[server.name] = sync(server=server)
        except MT5Error as exc:  # one server down must not stop the others
            done[server.name] = f"failed: {exc}"
    return done


@shared_task(name="mt5bridge.positions_snapshot_sync", acks_late=True, time_limit=600, soft_time_limit=540)
def positions_snapshot_sync() -> dict:
    from mt5bridge.manager_api import MT5Error
    from mt5bridge.services import positions_snapshot_sync as sync

    done = {}
    for server in _active_servers():
        try:
            done[server.name] = sync(server=server)
        except MT5Error as exc:
            done[server.name] = f"failed: {exc}"
    return done


@shared_task(name="mt5bridge.deals_import", acks_late=True, time_limit=1800, soft_time_limit=1700)
def deals_import() -> dict:
    from mt5bridge.manager_api import MT5Error
    from mt5bridge.services import deals_import as run
    from mt5bridge.signals import deals_imported

    done = {}
    for server in _active_servers():
        try:
            done[server.name] = run(server=server)
        except MT5Error as exc:
            done[server.name] = f"failed: {exc}"
            continue
        if done[server.name]:
            deals_imported.send(sender=server.__class__, server_id=server.pk, count=done[server.name])
    return done


@shared_task(name="mt5bridge.trade_servers_refresh", acks_late=True)
def trade_servers_refresh() -> dict:
    """Ping every server (keeps sessions alive, updates health) and mirror its groups."""
    from mt5bridge.manager_api import MT5Error
    from mt5bridge.services import trade_server_ping, trade_server_sync_groups

    done = {}
    for server in _active_servers():
        if not trade_server_ping(server=server):
            done[server.name] = "down"
            continue
        try:
            done[server.name] = f"{trade_server_sync_groups(server=server)} groups"
        except MT5Error as exc:
            done[server.name] = f"groups failed: {exc}"
    return done
