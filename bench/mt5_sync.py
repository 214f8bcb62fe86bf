"""MT5 bridge benchmarks.

1. Snapshot sync of 10,000 accounts: `accounts_snapshot_sync` (HTTP batches + parsing + one bulk UPDATE per batch)
   against the mock's own cost for the same calls (the same batch requests made with a bare HTTP client, answers
   only decoded). Runs alternate so both see the same machine state; the median of each is compared. Goal <= 1.5x.
2. Deal import of 1,000,000 deals: `deals_import` in a child process, whose peak RSS is read from the kernel.
   Goal <= 300 MB. `--only-sync` skips this part (for iterating on the sync).

On PostgreSQL (DATABASE_URL) the database outlives the run: what a previous run left (the "bench" server, its
accounts, deals and user) is removed first, and again at the end, so reruns need no fresh database.

Prints progress on stderr and the figures as one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._harness import MANAGER_PASSWORD, ROOT, emit, setup_django, start_mock


def _raw_batches(url: str, logins: list[int], batch: int) -> float:
    """The mock's own cost: the same batch requests through a bare, already logged-in HTTP session."""
    from mt5bridge.adapters.webapi import WebAPIManager

    manager = WebAPIManager(url=url, login=1000, password=MANAGER_PASSWORD)
    manager.connect()
    session: requests.Session = manager.http
    started = time.perf_counter()
    for start in range(0, len(logins), batch):
        part = ",".join(map(str, logins[start : start + batch]))
        session.get(f"{url}/api/user/account/get_batch", params={"login": part}, timeout=30).json()
    return time.perf_counter() - started


def _import_child(db_env: dict[str, str], server_id: int) -> tuple[float, float, int]:
    """Run the import in a fresh process so its peak RSS (VmHWM, in kB) is the import's alone."""
    code = (
        f"import os,sys,time,resource; sys.path.insert(0, {str(ROOT)!r}); import django; django.setup();"
        "from mt5bridge.models import TradeServer; from mt5bridge.services import deals_import;"
        f"t=time.perf_counter(); n=deals_import(server=TradeServer.objects.get(pk={server_id}));"
        # VmHWM is this process's own peak (ru_maxrss would carry over the parent's peak across fork and exec).
        "hwm=[l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
        "print(n, time.perf_counter()-t, hwm)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=db_env, capture_output=True, text=True, check=True)
    count, seconds, rss_kb = out.stdout.split()
    return float(seconds), int(rss_kb) / 1024, int(count)


BENCH_SERVER, BENCH_USER = "bench", "bench@example.com"


def _drop_bench_data() -> None:
    """Remove what a run of this benchmark stored in MT5 tables (a no-op on a fresh database); its user is reused."""
    from django.db import connection, transaction

    from mt5bridge.models import Deal, PositionSnapshot, TradeServer, TradingAccount

    with transaction.atomic():
        for server in TradeServer.objects.filter(name=BENCH_SERVER):
            Deal.objects.filter(server=server).delete()
            PositionSnapshot.objects.filter(server=server).delete()
            TradingAccount.objects.filter(server=server).delete()
            server.delete()
    if connection.vendor == "postgresql":
        # Reclaim the deleted rows and forget their statistics (autovacuum may be off or late, as here): a rerun, or a
        # run after another bench filled these tables, then sees the tables a fresh run does.
        with connection.cursor() as cursor:
            for model in (Deal, PositionSnapshot, TradingAccount):
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only-sync", action="store_true", help="skip the deal import part")
    args = parser.parse_args()

    workdir = setup_django("mt5")
    from django.conf import settings
    from django.db import connection

    from mt5bridge.models import TradeServer, TradingAccount, TradingGroup
    from mt5bridge.servers import forget_managers, manager_for
    from mt5bridge.services import accounts_snapshot_sync, trade_server_sync_groups

    _drop_bench_data()
    mock, url = start_mock(workdir / "mock.sqlite3")
    import_seconds = peak_rss_mb = imported = None
    try:
        server = TradeServer.objects.create(
            name=BENCH_SERVER, kind="live", url=url, manager_login=1000, password_env="MT5_BENCH_PASSWORD"
        )
        trade_server_sync_groups(server=server)
        group = TradingGroup.objects.get(server=server, name="real\\standard-usd")
        from crm.models import User

        user = User.objects.filter(email=BENCH_USER).first() or User.objects.create_user(BENCH_USER, "x")
        manager = manager_for(server)
        logins = []
        for n in tqdm(range(args.accounts), desc="MT5 users", file=sys.stderr):
            login = 500000 + n
            manager.user_add(login=login, group=group.name, name=f"Bench {n}", email=f"b{n}@example.com",
                             leverage=100, main_password="Bench#Pass1", investor_password="Bench#Pass2")  # fmt: skip
            logins.append(login)
        TradingAccount.objects.bulk_create(
            [
                TradingAccount(
                    user=user,
                    server=server,
                    group=group,
                    login=login,
                    currency="USD",
                    leverage=100,
                    state=TradingAccount.State.PROVISIONED,
                )
                for login in logins
            ],
            batch_size=1000,
        )
        if connection.vendor == "postgresql":
            # Statistics for the 10,000 new accounts, as autovacuum would gather them (it may be off, as here).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE mt5bridge_tradingaccount")
        batch = settings.MT5_SNAPSHOT_BATCH
        bridge_times, raw_times = [], []
        for _ in tqdm(range(args.rounds), desc="snapshot rounds", file=sys.stderr):
            raw_times.append(_raw_batches(url, logins, batch))
            started = time.perf_counter()
            assert accounts_snapshot_sync(server=server) == args.accounts
            bridge_times.append(time.perf_counter() - started)
        forget_managers()

        if not args.only_sync:
            import_seconds, peak_rss_mb, imported = _run_import(url, logins, args.deals, server.pk)
    finally:
        mock.terminate()
        mock.wait(timeout=30)
        _drop_bench_data()

    bridge, raw = statistics.median(bridge_times), statistics.median(raw_times)
    figures = {
        "sync_ratio": round(bridge / raw, 2),
        "sync_accounts": args.accounts,
        "sync_bridge_s": round(bridge, 3),
        "sync_mock_calls_s": round(raw, 3),
    }
    if imported is not None:
        figures |= {
            "deal_import_peak_rss_mb": round(peak_rss_mb, 1),
            "deal_import_deals": imported,
            "deal_import_s": round(import_seconds, 1),
            "deal_import_per_s": round(imported / import_seconds),
        }
    emit(
        figures
        | {
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "bench_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def _run_import(url: str, logins: list[int], deals: int, server_id: int) -> tuple[float, float, int]:
    import os

    print(f"backfilling {deals:,} deals on the mock...", file=sys.stderr)
    requests.post(f"{url}/_mock/bulk_deals", json={"logins": logins, "count": deals, "days": 30},
                  timeout=600).raise_for_status()  # fmt: skip
    import_seconds, peak_rss_mb, imported = _import_child({**os.environ}, server_id)
    assert imported >= deals, imported
    return import_seconds, peak_rss_mb, imported


if __name__ == "__main__":
    main()
