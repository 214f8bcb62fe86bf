"""IB commission engine benchmark.

1,000,000 deals (500,000 positions, opened and closed) by 2,000 clients of 121 IBs in a 5-level tree (3 sub-IBs
each), on PostgreSQL when DATABASE_URL points at one (in a throwaway database created and dropped here), else on a
throwaway SQLite file. Plans: difference model, rebates per lot on FX, a spread share on metals, a commission share
on indices, a 60 s minimum hold (every 7th position is held 30 s).

Timed: `commissions_run` with the default batch size (rate card; the batch's closing deals with their positions as
opened; one INSERT ... SELECT ... GROUP BY expanding every deal into its (deal, IB, level) lines, each computed
and rounded on its own, summed into one row per IB, level, sub-IB, symbol, broker day and status; ledger accrual;
cursor) against ONE raw aggregate SQL query over the same deals in the same run: each IB's earnings by the same
joins (deal -> account -> client's IB -> every upline -> its rule), summed per IB, nothing written. The baseline
ignores the hold-time rule and the round-turn commission. Not timed: what the import does per deal when it stores
it (a closing deal's position as opened, `Deal.open_*`); the generator writes those columns as the import would,
and a sample is checked against `deals_store`'s rule. Also reported, for context: a plain per-IB volume
aggregate (no hierarchy). Goal: commission_ratio <= 3.

Deals are generated set-based (generate_series on PostgreSQL, a recursive CTE on SQLite). Prints progress on
stderr and the figures as one JSON object on its last line.
"""

# ruff: noqa: S608 - the SQL interpolates only numbers computed here; no outside input.
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._harness import emit, setup_django

BRANCHING, DEPTH = 3, 5
RATES_BY_DEPTH = ["12", "10", "8", "6", "4"]  # top first: the difference model pays every level something


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _throwaway_postgres() -> tuple[str, str] | None:
    """Create a database of our own next to DATABASE_URL's, so nothing of the caller's is touched."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import psycopg2

    parsed = urlparse(url)
    name = f"bench_ib_{uuid.uuid4().hex[:8]}"
    admin = urlunparse(parsed._replace(path="/postgres"))
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    conn.close()
    os.environ["DATABASE_URL"] = urlunparse(parsed._replace(path=f"/{name}"))
    return admin, name


def _drop_postgres(admin: str, name: str) -> None:
    import psycopg2
    from django.db import connections

    connections.close_all()
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def build_network(clients: int):
    """121 IBs in a 5-level tree with a plan per depth, `clients` clients spread evenly, one live account each."""
    from decimal import Decimal

    from django.utils import timezone

    from crm.models import User
    from ib.models import ClientReferral, CommissionPlan, CommissionRule, IntroducingBroker, SymbolGroup
    from mt5bridge.models import TradeServer, TradingAccount, TradingGroup

    groups = {g.code: g for g in SymbolGroup.objects.all()}
    plans = []
    for depth, rate in enumerate(RATES_BY_DEPTH):
        plan = CommissionPlan.objects.create(
            name=f"bench depth {depth}", override_model="difference", min_hold_seconds=60
        )
        CommissionRule.objects.bulk_create(
            [
                CommissionRule(plan=plan, symbol_group=groups["fx_majors"], kind="rebate_per_lot", rate=Decimal(rate)),
                CommissionRule(plan=plan, symbol_group=groups["fx_minors"], kind="rebate_per_lot", rate=Decimal(rate)),
                CommissionRule(
                    plan=plan, symbol_group=groups["metals"], kind="spread_share", rate=Decimal(rate) / Decimal(20)
                ),
                CommissionRule(
                    plan=plan, symbol_group=groups["indices"], kind="commission_share", rate=Decimal(rate) / Decimal(30)
                ),
            ]
        )
        plans.append(plan)
    ibs: list[IntroducingBroker] = []
    level = [None]
    serial = 0
    for depth in range(DEPTH):
        next_level = []
        for parent in level:
            for _ in range(1 if parent is None else BRANCHING):
                serial += 1
                user = User.objects.create_user(email=f"bench-ib-{serial}@example.com", password=None)
                ib = IntroducingBroker.objects.create(
                    user=user, parent=parent, plan=plans[depth], state="approved", referral_code=f"BENCH-{serial:04d}"
                )
                ibs.append(ib)
                next_level.append(ib)
        level = next_level
    users = User.objects.bulk_create(
        [User(email=f"bench-client-{n}@example.com", password="!") for n in range(clients)], batch_size=2000
    )
    now = timezone.now()
    ClientReferral.objects.bulk_create(
        [
            ClientReferral(client=u, ib=ibs[n % len(ibs)], source="staff", attributed_at=now, after_deal_id=0)
            for n, u in enumerate(users)
        ],
        batch_size=2000,
    )
    server = TradeServer.objects.create(
        name="bench-live", kind="live", url="http://127.0.0.1:1", manager_login=1, password_env="UNUSED"
    )
    group = TradingGroup.objects.create(
        server=server, name="real\\standard-usd", account_type="standard", currency="USD", leverages=[100]
    )
    TradingAccount.objects.bulk_create(
        [
            TradingAccount(
                user=u, server=server, group=group, login=600_000 + n, currency="USD", leverage=100, state="provisioned"
            )
            for n, u in enumerate(users)
        ],
        batch_size=2000,
    )
    return server, ibs


def generate_deals(server_id: int, deals: int) -> None:
    """`deals` deals in one INSERT ... SELECT: odd rows open a position, even rows close it; symbols, volumes,
    hold times and commissions vary with the position number. Each closing deal carries its position as opened
    (`open_*`: the opening deal's ticket, time, volume and commission), as `deals_store` sets it on import;
    `check_opening_facts` verifies a sample against that rule."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_accounts")
        cursor.execute(
            "CREATE TEMP TABLE bench_accounts AS SELECT ROW_NUMBER() OVER (ORDER BY id) - 1 AS rn, id, login "
            "FROM mt5bridge_tradingaccount WHERE server_id = %s",
            [server_id],
        )
        cursor.execute("SELECT COUNT(*) FROM bench_accounts")
        accounts = cursor.fetchone()[0]
        symbols = "ARRAY['EURUSD','GBPUSD','XAUUSD','US30','EURJPY']"
        if connection.vendor == "postgresql":
            source = f"SELECT g AS n FROM generate_series(1, {deals}) AS g"
            start = "TIMESTAMP WITH TIME ZONE '2026-09-01 00:00:00+00'"
            when = (
                f"{start} + (((n + 1) / 2) * 5 + CASE WHEN n % 2 = 0 THEN "
                "CASE WHEN ((n + 1) / 2) % 7 = 0 THEN 30 ELSE 600 END ELSE 0 END) * INTERVAL '1 second'"
            )
            opened = f"{start} + ((n + 1) / 2) * 5 * INTERVAL '1 second'"
            symbol = f"({symbols})[(((n + 1) / 2) % 5) + 1]"
            prefix = ""
        else:
            source = "SELECT n FROM g"
            when = (
                "strftime('%Y-%m-%d %H:%M:%f', '2026-09-01 00:00:00', '+' || (((n + 1) / 2) * 5 + CASE WHEN "
                "n % 2 = 0 THEN CASE WHEN ((n + 1) / 2) % 7 = 0 THEN 30 ELSE 600 END ELSE 0 END) || ' seconds')"
            )
            opened = "strftime('%Y-%m-%d %H:%M:%f', '2026-09-01 00:00:00', '+' || (((n + 1) / 2) * 5) || ' seconds')"
            symbol = (
                "CASE ((n + 1) / 2) % 5 WHEN 0 THEN 'EURUSD' WHEN 1 THEN 'GBPUSD' WHEN 2 THEN 'XAUUSD' "
                "WHEN 3 THEN 'US30' ELSE 'EURJPY' END"
            )
            prefix = f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {deals}) "
        volume = "((((n + 1) / 2) % 300) + 1) / 100.0"
        sql = f"""
            INSERT INTO mt5bridge_deal (server_id, ticket, login, account_id, time, symbol, action, entry, volume,
                price, profit, commission, swap, comment, position_id, contract_size, imported_at,
                open_ticket, open_time, open_volume, open_commission)
            {prefix}
            SELECT {server_id}, s.n, a.login, a.id, {when}, {symbol},
                   CASE WHEN s.n % 2 = 1 THEN ((s.n + 1) / 2) % 2 ELSE 1 - ((s.n + 1) / 2) % 2 END,
                   CASE WHEN s.n % 2 = 1 THEN 0 ELSE 1 END,
                   {volume}, 1.1, 0, -3.5 * {volume}, 0, '', (s.n + 1) / 2, 100000, {when},
                   CASE WHEN s.n % 2 = 0 THEN s.n - 1 END, CASE WHEN s.n % 2 = 0 THEN {opened} END,
                   CASE WHEN s.n % 2 = 0 THEN {volume} END, CASE WHEN s.n % 2 = 0 THEN -3.5 * {volume} END
            FROM ({source}) s JOIN bench_accounts a ON a.rn = ((s.n + 1) / 2) % {accounts}
        """
        cursor.execute(sql)  # no parameters: the % signs above are SQL's modulo, not placeholders
        cursor.execute("DROP TABLE IF EXISTS bench_accounts")
        if connection.vendor == "postgresql":
            # Every table: the baseline deserves the planner at its best too. VACUUM as well, so that autovacuum,
            # woken by a million fresh rows, does not run inside either side's timing.
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")


def check_opening_facts(server_id: int, sample: int = 500) -> int:
    """Recompute the opening side of `sample` generated closing deals with the import's own rule
    (`mt5bridge.services.sync._opening_facts`) and fail loudly on any difference. Returns the deals checked."""
    from mt5bridge.models import Deal
    from mt5bridge.services.sync import _opening_facts

    fields = ("open_ticket", "open_time", "open_volume", "open_commission")
    stored = list(Deal.objects.filter(server_id=server_id, entry=1).order_by("?")[:sample])
    fresh = [Deal(**{f.attname: getattr(d, f.attname) for f in Deal._meta.concrete_fields}) for d in stored]
    for deal in fresh:
        for field in fields:
            setattr(deal, field, None)
    _opening_facts(stored[0].server, fresh)
    for old, new in zip(stored, fresh, strict=True):
        if [getattr(old, f) for f in fields] != [getattr(new, f) for f in fields]:
            raise SystemExit(f"generated opening facts of deal {old.ticket} differ from the import's rule")
    return len(fresh)


def baseline_sql() -> str:
    # CROSS JOIN + WHERE: SQLite keeps this join order (deals first, each join a key lookup) instead of probing
    # the deal table once per chain member; PostgreSQL's planner treats it as plain inner joins.
    return """
    WITH RECURSIVE chain(direct_ib_id, ib_id, level) AS (
        SELECT id, id, 0 FROM ib_introducingbroker
        UNION ALL
        SELECT c.direct_ib_id, i.parent_id, c.level + 1 FROM chain c JOIN ib_introducingbroker i ON i.id = c.ib_id
        WHERE i.parent_id IS NOT NULL
    )
    SELECT ch.ib_id, COUNT(*), SUM(d.volume * ru.rate)
    FROM mt5bridge_deal d
    CROSS JOIN mt5bridge_tradingaccount a
    CROSS JOIN ib_clientreferral r
    CROSS JOIN ib_symbolgroupmember gm
    CROSS JOIN chain ch
    CROSS JOIN ib_introducingbroker i
    CROSS JOIN ib_commissionrule ru
    WHERE d.action IN (0, 1) AND d.entry IN (1, 2, 3) AND a.id = d.account_id AND r.client_id = a.user_id
      AND gm.symbol = d.symbol AND ch.direct_ib_id = r.ib_id AND i.id = ch.ib_id
      AND ru.plan_id = i.plan_id AND ru.symbol_group_id = gm.group_id AND ru.level = 0
    GROUP BY ch.ib_id
    """


PLAIN_SQL = """
    SELECT r.ib_id, COUNT(*), SUM(d.volume)
    FROM mt5bridge_deal d
    JOIN mt5bridge_tradingaccount a ON a.id = d.account_id
    JOIN ib_clientreferral r ON r.client_id = a.user_id
    WHERE d.action IN (0, 1) AND d.entry IN (1, 2, 3)
    GROUP BY r.ib_id
"""


def timed_query(sql: str) -> tuple[float, int]:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    return time.perf_counter() - started, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--keep", action="store_true", help="keep the database (to explore plans); not in make bench")
    args = parser.parse_args()

    pg = _throwaway_postgres()
    workdir = setup_django("ib")
    from django.conf import settings
    from django.db import connection
    from django.db.models import Sum
    from tqdm import tqdm

    from ib.models import Commission
    from ib.services import commissions_run

    figures: dict = {}
    try:
        log(f"database: {connection.vendor}; building the network")
        server, ibs = build_network(args.clients)
        started = time.perf_counter()
        generate_deals(server.pk, args.deals)
        log(f"generated {args.deals} deals in {time.perf_counter() - started:.1f} s")
        log(f"opening sides of {check_opening_facts(server.pk)} sampled closing deals match the import's rule")

        baseline = [timed_query(baseline_sql())[0] for _ in range(3)]
        plain = [timed_query(PLAIN_SQL)[0] for _ in range(3)]

        bar = tqdm(total=args.deals, unit="deal", file=sys.stderr, desc="engine")
        started = time.perf_counter()
        run = commissions_run(trigger="bench", progress=bar.update)
        engine_s = time.perf_counter() - started
        bar.close()
        baseline += [timed_query(baseline_sql())[0] for _ in range(2)]

        rows = Commission.objects.count()
        lines = Commission.objects.aggregate(n=Sum("deals"))["n"] or 0
        short = Commission.objects.filter(status="short_hold").aggregate(n=Sum("deals"))["n"] or 0
        base_s = statistics.median(baseline)
        figures = {
            "commission_ratio": round(engine_s / base_s, 2),
            "commission_ratio_vs_plain_volume_scan": round(engine_s / statistics.median(plain), 2),
            "engine_s": round(engine_s, 2),
            "baseline_aggregate_s": round(base_s, 3),
            "plain_volume_scan_s": round(statistics.median(plain), 3),
            "deals": args.deals,
            "ibs": len(ibs),
            "clients": args.clients,
            "commission_rows": rows,
            "commission_lines": lines,
            "short_hold_lines": short,
            "engine_batches": run.batches,
            "engine_batch_size": settings.IB_ENGINE_BATCH_SIZE,
            "deals_per_s": round(args.deals / engine_s),
            "database": connection.vendor,
        }
    finally:
        if pg and args.keep:
            log(f"kept database {pg[1]}")
        elif pg:
            _drop_postgres(*pg)
        else:
            connection.close()
        shutil.rmtree(workdir, ignore_errors=True)
    emit(figures)


if __name__ == "__main__":
    main()
