"""Operator probes: /healthz says the process lives, /readyz says whether it can do its work."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


class DependencyDown(Exception):
    """A check's own verdict; its message names what is down and is safe to show (no hosts or credentials)."""


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    from brokerage.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)


def check_trade_servers() -> None:
    """Every active MT5 server is reachable. Recent health (the bridge's own calls, the minutely ping) answers without
    a network call; only a server not heard from in a minute is pinged, and one whose breaker is open is down."""
    from django.utils import timezone

    from mt5bridge.models import TradeServer
    from mt5bridge.servers import breaker_is_open
    from mt5bridge.services import trade_server_ping

    fresh = timezone.now() - timezone.timedelta(seconds=60)
    down = [
        s.name
        for s in TradeServer.objects.filter(is_active=True)
        if breaker_is_open(s) or not ((s.last_ok_at and s.last_ok_at > fresh) or trade_server_ping(server=s))
    ]
    if down:
        raise DependencyDown(f"not answering: {', '.join(down)}")


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "mt5": check_trade_servers,
}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers; 503 with the failing ones named (never a stack trace)."""
    results: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception as exc:  # a probe must report any failure, whatever its kind
            logger.warning("readiness check %s failed: %s", name, exc)
            detail = str(exc) if isinstance(exc, DependencyDown) else type(exc).__name__
            results[name] = f"down: {detail}"
        else:
            results[name] = "ok"
    down = [name for name, state in results.items() if state != "ok"]
    body = {"status": "ok" if not down else "unavailable", "checks": results, "down": down}
    return JsonResponse(body, status=200 if not down else 503)
