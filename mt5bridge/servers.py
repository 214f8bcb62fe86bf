"""Reaching trade servers: one adapter per server and thread, a circuit breaker and health kept in the database.

`server_call(server, fn)` is the only way the services talk to MT5. It refuses at once while the server's breaker is
open (so a dead server costs nothing but a database read), records health after each call, and opens the breaker
after `MT5_BREAKER_THRESHOLD` consecutive failures for a cooldown that doubles up to a cap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from core.errors import ApplicationError
from mt5bridge.manager_api import ManagerAPI, MT5RetryableError, MT5TerminalError
from mt5bridge.models import TradeServer

T = TypeVar("T")
_local = threading.local()


def manager_password(server: TradeServer) -> str:
    """The manager password comes from the environment variable the server record names, never from the DB."""
    password = os.environ.get(server.password_env, "")
    if not password and not settings.PRODUCTION:
        password = settings.MT5_MOCK_MANAGER_PASSWORD
    if not password:
        raise ApplicationError(f"Set {server.password_env} to the manager password of trade server {server.name}.")
    return password


def manager_for(server: TradeServer) -> ManagerAPI:
    """This thread's adapter for the server, created (and logged in lazily) on first use."""
    cache: dict = getattr(_local, "managers", None) or {}
    _local.managers = cache
    key = (server.pk, server.adapter, server.url, server.manager_login)
    manager = cache.get(key)
    if manager is None:
        try:
            factory = import_string(settings.MT5_ADAPTERS[server.adapter])
        except KeyError:
            raise ApplicationError(f"Trade server {server.name} names unknown adapter {server.adapter!r}.") from None
        manager = factory(
            url=server.url,
            login=server.manager_login,
            password=manager_password(server),
            connect_timeout=settings.MT5_CONNECT_TIMEOUT,
            read_timeout=settings.MT5_READ_TIMEOUT,
        )
        cache[key] = manager
    return manager


def forget_managers() -> None:
    """Drop this thread's adapters (tests, and after a server's address changes)."""
    for manager in (getattr(_local, "managers", None) or {}).values():
        manager.close()
    _local.managers = {}


def breaker_is_open(server: TradeServer) -> bool:
    return bool(server.breaker_open_until and server.breaker_open_until > timezone.now())


def _record_success(server: TradeServer) -> None:
    now = timezone.now()
    # Skip the write when nothing changed recently: a busy bridge would otherwise update this row on every call.
    if server.consecutive_failures == 0 and server.last_ok_at and now - server.last_ok_at < timedelta(seconds=10):
        return
    TradeServer.objects.filter(pk=server.pk).update(last_ok_at=now, consecutive_failures=0, breaker_open_until=None)
    server.last_ok_at, server.consecutive_failures, server.breaker_open_until = now, 0, None


def _record_failure(server: TradeServer, error: Exception) -> None:
    now = timezone.now()
    TradeServer.objects.filter(pk=server.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, last_error=str(error)[:2000], last_error_at=now
    )
    server.refresh_from_db(fields=["consecutive_failures"])
    failures = server.consecutive_failures
    threshold = settings.MT5_BREAKER_THRESHOLD
    if failures >= threshold:
        doublings = min(failures - threshold, 6)
        cooldown = min(settings.MT5_BREAKER_COOLDOWN * 2**doublings, settings.MT5_BREAKER_COOLDOWN_MAX)
        until = now + timedelta(seconds=cooldown)
        TradeServer.objects.filter(pk=server.pk).update(breaker_open_until=until)
        server.breaker_open_until = until


def _check_breaker(server: TradeServer) -> None:
    if breaker_is_open(server):
        until = f"{server.breaker_open_until:%H:%M:%S}"
        raise MT5RetryableError(f"Trade server {server.name} is unavailable (circuit open until {until}).")


def server_call(server: TradeServer, fn: Callable[[ManagerAPI], T]) -> T:
    """Run `fn` against the server's adapter with the breaker and health bookkeeping around it.

    Never call this while holding row locks: it waits on the network.
    """
    if breaker_is_open(server):
        raise MT5RetryableError(
            f"Trade server {server.name} is unavailable (circuit open until {server.breaker_open_until:%H:%M:%S})."
        )
    manager = manager_for(server)
    try:
        result = fn(manager)
    except MT5TerminalError:
        _record_success(server)  # the server answered; the request was wrong
        raise
    except MT5RetryableError as exc:
        _record_failure(server, exc)
        raise
    _record_success(server)
    return result


def server_calls_pipelined(server: TradeServer, calls: list[Callable[[ManagerAPI], T]]) -> Iterator[T]:
    """Run read-only calls one after another, one call ahead of the consumer, and yield their results in order.

    While the caller stores batch N (database work), batch N+1 is already on the wire, so a sync costs about the
    larger of the two instead of their sum. Only the network happens in the helper thread; health bookkeeping and
    errors surface in the caller's thread (a failed call stops the sequence, as `server_call` would).
    """
    _check_breaker(server)
    manager = manager_for(server)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mt5-{server.name}") as pool:
        pending: Future | None = pool.submit(calls[0], manager) if calls else None
        for index in range(len(calls)):
            assert pending is not None
            try:
                result = pending.result()
            except MT5TerminalError:
                _record_success(server)
                raise
            except MT5RetryableError as exc:
                _record_failure(server, exc)
                raise
            pending = pool.submit(calls[index + 1], manager) if index + 1 < len(calls) else None
            yield result
    _record_success(server)
