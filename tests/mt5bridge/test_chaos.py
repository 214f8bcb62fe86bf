"""Chaos: thousands of balance operations through two real Celery workers against a misbehaving trade server.

The promise under test: every balance operation reaches MT5 exactly once. With 20% of replies lost after the
server applied the operation and 10% of connections refused, two worker processes on PostgreSQL (four threads each)
send 2,000 operations across 200 accounts. Afterwards, with the faults cleared, the MT5 side is read back:
no comment has two deals, every confirmed operation has exactly its deal, no failed operation left one, and every
account's MT5 balance equals the sum of its confirmed operations.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from celery import Celery
from django.db import connection
from django.db.models import Sum
from django_fsm_log.models import StateLog

from mt5bridge.models import BalanceOperation, TradeServer, TradingAccount
from mt5bridge.servers import manager_for
from mt5bridge.services import balance_operation_create
from tests.mt5bridge.conftest import MANAGER_PASSWORD, ROOT, make_trade_server, start_mock, stop_mock
from tests.mt5bridge.factories import open_account

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ACCOUNTS = int(os.environ.get("CHAOS_ACCOUNTS", "200"))
OPERATIONS = int(os.environ.get("CHAOS_OPERATIONS", "2000"))
DEADLINE_SECONDS = 900


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _worker(queue: str, redis_url: str, tmp_path, name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "brokerage.settings",
        "DJANGO_ENV": "local",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_url,
        "VAR_DIR": str(tmp_path / name),
        "MT5_TEST_PASSWORD": MANAGER_PASSWORD,
        "MT5_UNKNOWN_GRACE_SECONDS": "1",
        "MT5_READ_TIMEOUT": "5",
        # The breaker guards against dead servers; this one answers 70% of calls, so let the workers keep trying.
        "MT5_BREAKER_THRESHOLD": "50",
        "MT5_BREAKER_COOLDOWN": "1",
        "LOG_LEVEL": "WARNING",
    }
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed when the process is reaped
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "brokerage", "worker", "--queues", queue, "--pool", "threads",
         "--concurrency", "4", "--without-gossip", "--without-mingle", "--hostname", f"{name}@%h",
         "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_two_thousand_operations_reach_mt5_exactly_once(postgres, redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MT5_TEST_PASSWORD", MANAGER_PASSWORD)
    mock = start_mock(tmp_path / "chaos.sqlite3", "--seed", "7")
    workers: list[subprocess.Popen] = []
    try:
        server = make_trade_server(mock, TradeServer.Kind.LIVE)
        accounts = [open_account(server) for _ in range(ACCOUNTS)]
        rng = random.Random(2026)
        operations = []
        for n in range(OPERATIONS):
            account = accounts[n % ACCOUNTS]
            # Mostly deposits; every account's tenth operation a small withdrawal, which MT5 refuses (no money) only
            # if the concurrent workers happen to run it before enough of the deposits.
            amount = Decimal(rng.randint(100, 100_000)) / 100
            if (n // ACCOUNTS) % 10 == 9:
                amount = -amount / 10
            operations.append(balance_operation_create(account=account, amount=amount, idempotency_key=f"chaos:{n}"))

        mock.faults(lost_response_ratio=0.2, refuse_ratio=0.1)
        # The workers' own follow-up tasks (resolve, resend) are routed to the "mt5" queue, so the workers consume
        # that queue, on a Redis database of their own, emptied first.
        redis_url = redis_url.rsplit("/", 1)[0] + "/14"
        redis.Redis.from_url(redis_url).flushdb()
        queue = "mt5"
        # Not the current app: shared tasks anywhere else in this process would follow it and skip eager mode.
        sender = Celery(broker=redis_url, set_as_current=False)
        workers = [_worker(queue, redis_url, tmp_path, f"chaos{i}") for i in range(2)]
        started = time.monotonic()
        for operation in operations:
            sender.send_task("mt5bridge.balance_operation_send", args=[operation.pk], queue=queue)

        # Wait for every operation to settle. Re-drive what a lost task message would strand, as the periodic
        # sweeper does in production (this test process cannot enqueue through its own in-memory broker).
        open_states = [BalanceOperation.State.PENDING, BalanceOperation.State.SENT, BalanceOperation.State.UNKNOWN]
        last_sweep = time.monotonic()
        while BalanceOperation.objects.filter(state__in=open_states).exists():
            assert all(w.poll() is None for w in workers), "a worker died"
            assert time.monotonic() - started < DEADLINE_SECONDS, "operations did not settle in time"
            if time.monotonic() - last_sweep > 30:
                for op in BalanceOperation.objects.filter(state__in=open_states):
                    name = "resolve" if op.state == BalanceOperation.State.UNKNOWN else "send"
                    sender.send_task(f"mt5bridge.balance_operation_{name}", args=[op.pk], queue=queue)
                last_sweep = time.monotonic()
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        mock.clear_faults() if mock.process.poll() is None else None

    try:
        # Read the truth back from MT5, with the faults cleared.
        manager = manager_for(server)
        far_past, far_future = datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=2)
        deals = []
        after = 0
        while page := manager.deals_page(date_from=far_past, date_to=far_future, group="*", after_ticket=after):
            deals += [d for d in page if d.action == 2]
            after = page[-1].ticket
        mt5_balances = {s.login: s.balance for s in manager.accounts_get_batch([a.login for a in accounts])}
    finally:
        stop_mock(mock)

    ours = {op.comment: op for op in BalanceOperation.objects.select_related("account")}
    per_comment = Counter(d.comment for d in deals if d.comment in ours)
    duplicates = sum(count - 1 for count in per_comment.values() if count > 1)
    confirmed = [op for op in ours.values() if op.state == BalanceOperation.State.CONFIRMED]
    failed = [op for op in ours.values() if op.state == BalanceOperation.State.FAILED]
    missing = sum(1 for op in confirmed if per_comment[op.comment] != 1)
    applied_but_failed = sum(1 for op in failed if per_comment[op.comment])
    ticket_mismatch = sum(
        1 for op in confirmed if op.ticket != next(d.ticket for d in deals if d.comment == op.comment)
    )
    expected = dict(
        TradingAccount.objects.filter(balance_operations__state="confirmed")
        .values_list("login")
        .annotate(total=Sum("balance_operations__amount"))
    )
    balance_mismatches = sum(1 for a in accounts if mt5_balances[a.login] != expected.get(a.login, Decimal(0)))
    transitions = Counter(StateLog.objects.values_list("transition", flat=True))

    figures = {
        "operations": len(ours),
        "accounts": len(accounts),
        "confirmed": len(confirmed),
        "failed_no_money": len(failed),
        "lost_replies_resolved": transitions["mark_unknown"],
        "requeued_after_proof": transitions["requeue"],
        "duplicate_deals": duplicates,
        "missing_deals": missing,
        "failed_but_applied": applied_but_failed,
        "ticket_mismatches": ticket_mismatch,
        "balance_mismatches": balance_mismatches,
        "seconds": round(elapsed, 1),
    }
    print(f"\nCHAOS {figures}")
    assert len(ours) == OPERATIONS
    assert all(op.state in (BalanceOperation.State.CONFIRMED, BalanceOperation.State.FAILED) for op in ours.values())
    assert all("10019" in op.last_error for op in failed), "only 'no money' may fail an operation"
    assert transitions["mark_unknown"] > OPERATIONS * 0.1, "the fault injection did not bite"
    assert (duplicates, missing, applied_but_failed, ticket_mismatch, balance_mismatches) == (0, 0, 0, 0, 0)
