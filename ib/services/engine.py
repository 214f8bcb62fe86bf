"""The commission engine: set-based SQL over batches of imported deals.

For each batch (a range of deal ids after the engine's cursor), one transaction:

1. a small *rate card* is built into a temporary table by one statement: a recursive CTE expands every IB into
   its chain of uplines with their level, each chain member's plan rule for each symbol group is picked (the volume
   tier it reached last month), and the difference model's "best rate below" comes from a window function;
2. one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` joins the batch's closing deals to their client's IB, the
   symbol group, the opening deal of the position (hold time) and the rate card, and writes one `Commission` row
   per (deal, IB, level) with every figure that explains it;
3. what those rows accrued is posted to the ledger (IB payable of each IB against the broker's commission
   expense), and the cursor moves to the end of the batch.

Idempotent and re-runnable: a deal imported twice or a batch run twice finds its rows and inserts nothing; a crash
rolls the batch back whole, and the next run starts again from the cursor. Exact: amounts are integer products of
scaled integers (lots in hundredths, rates in ten-thousandths), rounded half-even to the currency's minor unit in
SQL, on PostgreSQL and SQLite alike; no float ever reaches a stored amount.
"""

# ruff: noqa: S608 - the SQL here interpolates only constants of this module; values go as %s parameters.
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Sum
from django.utils import timezone

from core.money import CURRENCY_EXPONENTS
from ib.models import (
    Commission,
    CommissionRule,
    CommissionRun,
    EngineCursor,
    IntroducingBroker,
    VolumeMonth,
)
from ib.selectors import MAX_DEPTH

CURSOR = "deals"
TRADE_ACTIONS = "(0, 1)"
CLOSING_ENTRIES = "(1, 2, 3)"  # out, in/out, out by
ACTIVE_STATES = "('approved', 'suspended')"
# Demo accounts trade play money: only deals on live servers earn (and count towards tiers and CPA volume).
LIVE_SERVERS = "SELECT id FROM mt5bridge_tradeserver WHERE kind = 'live'"
# Rates carry 4 decimals, lots 2: a rebate or commission-share product is in units of 10^-6, a spread share
# (lots x markup x share) in units of 10^-10.
# CPA amounts are rates in units of 10^-4, hence currencies of at most 4 decimals (plans pay in USD or EUR).
_ENGINE_CURRENCIES = {cur: exp for cur, exp in CURRENCY_EXPONENTS.items() if exp <= 4}


def _vendor() -> str:
    if connection.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"The commission engine speaks PostgreSQL and SQLite, not {connection.vendor}.")
    return connection.vendor


def scaled(expr: str, places: int) -> str:
    """`expr` times 10^places as an exact integer (on SQLite the REAL is rounded back to the integer it stands
    for: decimals with at most 15 significant digits survive the trip exactly)."""
    if _vendor() == "postgresql":
        return f"ROUND(({expr}) * {10**places})::bigint"
    return f"CAST(ROUND(({expr}) * {10**places}) AS INTEGER)"


def _month_expr(column: str) -> str:
    if _vendor() == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"strftime('%%Y-%%m', {column})"


def _hold_ms_expr(close: str, open_: str) -> str:
    if _vendor() == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM ({close} - {open_})) * 1000)::bigint"
    return f"CAST(ROUND((julianday({close}) - julianday({open_})) * 86400000) AS INTEGER)"


def _db_time(moment: datetime):
    """A datetime as the backend stores it (SQLite: naive UTC text, comparable with the stored values)."""
    return connection.ops.adapt_datetimefield_value(moment)


def _divisor(places: int) -> str:
    """10^(places - exponent of the row's currency): what turns a scaled product into minor units."""
    whens = " ".join(f"WHEN '{cur}' THEN {10 ** (places - exp)}" for cur, exp in sorted(_ENGINE_CURRENCIES.items()))
    return f"CASE p.currency {whens} END"


def _chain_cte() -> str:
    """Every active IB with each of its uplines (and itself at level 0). Recursive, so depth is unlimited."""
    return f"""chain(direct_ib_id, ib_id, level) AS (
        SELECT id, id, 0 FROM ib_introducingbroker WHERE state IN {ACTIVE_STATES}
        UNION ALL
        SELECT c.direct_ib_id, i.parent_id, c.level + 1
        FROM chain c JOIN ib_introducingbroker i ON i.id = c.ib_id
        WHERE i.parent_id IS NOT NULL AND c.level < {MAX_DEPTH}
    )"""


def _rate_card_sql(months: list[tuple[str, str]], *, cpa: bool) -> tuple[str, list]:
    """The statement that fills the temporary rate card: one row per (client's IB, earning IB, level, month,
    symbol group) with the rule and the rate that applies, for deal rules (or for CPA rules with `cpa`)."""
    values = ", ".join(["(%s, %s)"] * len(months))
    params = [part for pair in months for part in pair]
    kind_filter = "r.kind = 'cpa'" if cpa else "r.kind <> 'cpa'"
    sql = f"""
    CREATE TEMP TABLE ib_rate_card AS
    WITH RECURSIVE {_chain_cte()},
    months(month, prev_month) AS (VALUES {values}),
    tiered AS (
        SELECT i.id AS ib_id, m.month, r.id AS rule_id, r.symbol_group_id, r.kind, r.level, r.rate,
               p.override_model, p.currency, p.min_hold_seconds, {_divisor(6)} AS div6, {_divisor(10)} AS div10,
               r.cpa_min_deposit, r.cpa_min_lots, r.cpa_within_days,
               ROW_NUMBER() OVER (PARTITION BY i.id, m.month, r.symbol_group_id, r.level
                                  ORDER BY r.min_monthly_lots DESC) AS tier_rank
        FROM ib_introducingbroker i
        JOIN ib_commissionplan p ON p.id = i.plan_id
        JOIN ib_commissionrule r ON r.plan_id = p.id AND {kind_filter}
        CROSS JOIN months m
        LEFT JOIN ib_monthlyvolume v ON v.ib_id = i.id AND v.month = m.prev_month
        WHERE i.state IN {ACTIVE_STATES} AND {scaled("r.min_monthly_lots", 2)} <= COALESCE(v.centilots, 0)
    ),
    picked AS (SELECT * FROM tiered WHERE tier_rank = 1),
    headline AS (
        SELECT ch.direct_ib_id, ch.level, pk.ib_id, pk.month, pk.rule_id, pk.symbol_group_id, pk.kind, pk.rate,
               pk.override_model, pk.currency, pk.min_hold_seconds, pk.div6, pk.div10, pk.cpa_min_deposit,
               pk.cpa_min_lots, pk.cpa_within_days,
               MAX(pk.rate) OVER (PARTITION BY ch.direct_ib_id, pk.month, pk.symbol_group_id, pk.kind
                                  ORDER BY ch.level ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS best_below
        FROM chain ch JOIN picked pk ON pk.ib_id = ch.ib_id AND pk.level = 0
    )
    SELECT direct_ib_id, ib_id, level AS chain_level, month, symbol_group_id, kind, rule_id, rate AS rule_rate,
           CASE WHEN level > 0 THEN COALESCE(best_below, 0) END AS best_below,
           CASE WHEN level = 0 THEN rate
                WHEN rate > COALESCE(best_below, 0) THEN rate - COALESCE(best_below, 0)
                ELSE 0 END AS rate,
           currency, min_hold_seconds, div6, div10, cpa_min_deposit, cpa_min_lots, cpa_within_days
    FROM headline WHERE level = 0 OR override_model = 'difference'
    UNION ALL
    SELECT ch.direct_ib_id, ch.ib_id, ch.level, pk.month, pk.symbol_group_id, pk.kind, pk.rule_id, pk.rate,
           NULL, pk.rate, pk.currency, pk.min_hold_seconds, pk.div6, pk.div10,
           pk.cpa_min_deposit, pk.cpa_min_lots, pk.cpa_within_days
    FROM chain ch JOIN picked pk ON pk.ib_id = ch.ib_id AND pk.level = ch.level
    WHERE ch.level > 0 AND pk.override_model = 'level_rates'
    """
    return sql, params


def _build_rate_card(cursor, months: list[tuple[str, str]], *, cpa: bool = False) -> None:
    cursor.execute("DROP TABLE IF EXISTS ib_rate_card")
    sql, params = _rate_card_sql(months, cpa=cpa)
    cursor.execute(sql, params)
    # Integer rates once per card row, not once per deal and level.
    cursor.execute("ALTER TABLE ib_rate_card ADD COLUMN rate4 BIGINT")
    cursor.execute(f"UPDATE ib_rate_card SET rate4 = {scaled('rate', 4)}")
    if _vendor() == "postgresql":
        cursor.execute("ANALYZE ib_rate_card")


def _opening_deal_join() -> str:
    """The first opening deal of the closing deal's position, found through the (server, position, entry) index
    once per closing deal (PostgreSQL: a LATERAL probe; SQLite: a correlated MIN, then the row by its key)."""
    probe = (
        "FROM mt5bridge_deal o2 WHERE o2.server_id = d.server_id AND o2.position_id = d.position_id "
        f"AND o2.entry = 0 AND o2.action IN {TRADE_ACTIONS}"
    )
    if _vendor() == "postgresql":
        columns = "o2.id, o2.time, o2.volume, o2.commission"
        return f"LEFT JOIN LATERAL (SELECT {columns} {probe} ORDER BY o2.id LIMIT 1) o ON true"
    return f"LEFT JOIN mt5bridge_deal o ON o.id = (SELECT MIN(o2.id) {probe})"


def _insert_sql(*, fresh: bool = False) -> str:
    """One INSERT ... SELECT for a batch of deals: (lo, hi] ids. Parameters: created_at, lo, hi.

    `fresh`: no commission row exists yet for any deal of the range (checked under the cursor lock), so the
    statement may skip ON CONFLICT's per-row arbitration; the unique constraint still stands guard.

    A position held below the minimum time earns nothing: the row at the IB's own level (0) says so with its hold
    time and the plan's minimum; an upline whose own plan's minimum the hold also misses gets no row (it would be
    a zero nobody reads), while an upline whose plan asks for a shorter hold still earns its row."""
    month = _month_expr("d.time") if _tiers_in_use() else "'*'"
    return f"""
    INSERT INTO ib_commission (ib_id, level, kind, status, direct_ib_id, client_id, deal_id, open_deal_id, deal_time,
        symbol, lots, hold_seconds, min_hold_seconds, rule_id, rule_rate, best_below, rate, base, amount_minor,
        currency, note, created_at)
    SELECT z.ib_id, z.chain_level, z.kind, z.status, z.direct_ib_id, z.client_id, z.deal_id, z.open_id, z.time,
        z.symbol, z.volume, z.hold_ms / 1000, z.min_hold_seconds, z.rule_id, z.rule_rate, z.best_below, z.rate,
        z.base,
        CASE WHEN z.status <> 'earned' THEN 0
             ELSE z.raw / z.div + CASE WHEN 2 * (z.raw %% z.div) > z.div
                                        OR (2 * (z.raw %% z.div) = z.div AND (z.raw / z.div) %% 2 = 1)
                                       THEN 1 ELSE 0 END
        END,
        z.currency, '', %s
    FROM (
        SELECT y.*,
            CASE WHEN y.hold_ms IS NOT NULL AND y.hold_ms < y.min_hold_seconds * 1000 THEN 'short_hold'
                 WHEN y.kind = 'commission_share' AND y.account_currency <> y.currency THEN 'currency'
                 ELSE 'earned' END AS status,
            CASE y.kind WHEN 'spread_share' THEN y.markup WHEN 'commission_share' THEN y.comm_c / 100.0 END AS base,
            CASE y.kind WHEN 'rebate_per_lot' THEN y.lots_c * y.rate4
                        WHEN 'spread_share' THEN y.lots_c * y.markup4 * y.rate4
                        ELSE y.comm_c * y.rate4 END AS raw,
            CASE y.kind WHEN 'spread_share' THEN y.div10 ELSE y.div6 END AS div
        FROM (
            SELECT x.*, rc.ib_id, rc.chain_level, rc.kind, rc.rule_id, rc.rule_rate, rc.best_below, rc.rate,
                   rc.rate4, rc.currency, rc.min_hold_seconds, rc.div6, rc.div10
            FROM (
                SELECT d.id AS deal_id, d.time, d.symbol, d.volume,
                       {scaled(_round_turn_commission(), 2)} AS comm_c,
                       a.currency AS account_currency, r.client_id, r.ib_id AS direct_ib_id, gm.group_id,
                       g.spread_markup_per_lot AS markup, {scaled("g.spread_markup_per_lot", 4)} AS markup4,
                       {scaled("d.volume", 2)} AS lots_c, {month} AS month, o.id AS open_id,
                       {_hold_ms_expr("d.time", "o.time")} AS hold_ms
                FROM mt5bridge_deal d
                JOIN mt5bridge_tradingaccount a ON a.id = d.account_id
                JOIN ib_clientreferral r ON r.client_id = a.user_id
                JOIN ib_symbolgroupmember gm ON gm.symbol = d.symbol
                JOIN ib_symbolgroup g ON g.id = gm.group_id
                {_opening_deal_join()}
                WHERE d.id > %s AND d.id <= %s AND d.action IN {TRADE_ACTIONS} AND d.entry IN {CLOSING_ENTRIES}
                  AND d.server_id IN ({LIVE_SERVERS})
            ) x
            JOIN ib_rate_card rc ON rc.direct_ib_id = x.direct_ib_id AND rc.symbol_group_id = x.group_id
                                AND rc.month = x.month
            WHERE rc.rate > 0
        ) y
    ) z
    WHERE z.status <> 'short_hold' OR z.chain_level = 0
    {"" if fresh else "ON CONFLICT DO NOTHING"}
    """


def _round_turn_commission() -> str:
    """The broker's commission on the position's round turn: the closing deal's, plus the opening deal's in
    proportion to the volume this deal closes (MT5 charges each side). Rounded to the cent by the caller."""
    return (
        "ABS(d.commission) + COALESCE(CASE WHEN o.volume = d.volume OR o.volume = 0 THEN ABS(o.commission) "
        "ELSE ABS(o.commission) * d.volume / o.volume END, 0)"
    )


def _tiers_in_use() -> bool:
    return CommissionRule.objects.exclude(kind=CommissionRule.Kind.CPA).filter(min_monthly_lots__gt=0).exists()


def _previous(month: str) -> str:
    year, mon = (int(part) for part in month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def _months_between(first: datetime, last: datetime) -> list[str]:
    months, current, end = [], first.strftime("%Y-%m"), last.strftime("%Y-%m")
    while current <= end:
        months.append(current)
        year, mon = (int(part) for part in current.split("-"))
        current = f"{year + 1}-01" if mon == 12 else f"{year}-{mon + 1:02d}"
    return months


def monthly_volumes_ensure(*, months: list[str]) -> None:
    """Record each IB's downline volume (closing trade deals of its clients and of its sub-IBs' clients) for
    every listed month that has ended and was not recorded yet. Recorded once: the tier it selects is then fixed."""
    current = timezone.now().strftime("%Y-%m")
    todo = [m for m in sorted(set(months)) if m < current]
    done = set(VolumeMonth.objects.filter(month__in=todo).values_list("month", flat=True))
    for month in todo:
        if month in done:
            continue
        year, mon = (int(part) for part in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=timezone.get_fixed_timezone(0))
        end = datetime(year + (mon == 12), 1 if mon == 12 else mon + 1, 1, tzinfo=timezone.get_fixed_timezone(0))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO ib_monthlyvolume (ib_id, month, centilots)
                WITH RECURSIVE {_chain_cte()}
                SELECT ch.ib_id, %s, SUM({scaled("d.volume", 2)})
                FROM mt5bridge_deal d
                JOIN mt5bridge_tradingaccount a ON a.id = d.account_id
                JOIN ib_clientreferral r ON r.client_id = a.user_id
                JOIN chain ch ON ch.direct_ib_id = r.ib_id
                WHERE d.time >= %s AND d.time < %s AND d.action IN {TRADE_ACTIONS} AND d.entry IN {CLOSING_ENTRIES}
                  AND d.server_id IN ({LIVE_SERVERS})
                GROUP BY ch.ib_id
                ON CONFLICT DO NOTHING
                """,
                [month, _db_time(start), _db_time(end)],
            )
            VolumeMonth.objects.get_or_create(month=month)


def _batch_months(lo: int, hi: int) -> list[tuple[str, str]]:
    if not _tiers_in_use():
        return [("*", "*")]
    from mt5bridge.models import Deal

    span = Deal.objects.filter(pk__gt=lo, pk__lte=hi).aggregate(first=Min("time"), last=Max("time"))
    if span["first"] is None:
        return [("*", "*")]
    utc = timezone.get_fixed_timezone(0)
    months = _months_between(span["first"].astimezone(utc), span["last"].astimezone(utc))
    monthly_volumes_ensure(months=[_previous(m) for m in months])
    return [(m, _previous(m)) for m in months]


def _post_accruals(*, key: str, description: str, rows=None, totals=None) -> int:
    """Post what new rows accrued: per currency, each IB's payable against the broker's commission expense.
    `rows`: the new Commission rows (summed here); or `totals`: (ib_id, currency, amount_minor) already summed."""
    from payments.ledger import Leg, ledger_account, ledger_post
    from payments.models import LedgerAccount

    if totals is None:
        totals = rows.values_list("ib_id", "currency").annotate(total=Sum("amount_minor"))
    by_currency: dict[str, dict[int, int]] = defaultdict(dict)
    for ib_id, currency, total in totals:
        if total:
            by_currency[currency][ib_id] = int(total)
    ibs = IntroducingBroker.objects.filter(pk__in={i for m in by_currency.values() for i in m})
    users = {ib.pk: ib.user for ib in ibs.select_related("user")}
    posted = 0
    for currency, totals in sorted(by_currency.items()):
        exp = CURRENCY_EXPONENTS[currency]
        legs = [
            Leg(
                ledger_account(kind=LedgerAccount.Kind.IB_PAYABLE, currency=currency, user=users[ib_id]),
                Decimal(total).scaleb(-exp),
            )
            for ib_id, total in sorted(totals.items())
        ]
        expense = ledger_account(kind=LedgerAccount.Kind.FEES, currency=currency, key="ib_commission")
        legs.append(Leg(expense, -sum((leg.amount for leg in legs), Decimal(0))))
        ledger_post(
            idempotency_key=f"{key}:{currency}", kind="ib_commission_accrual", description=description, legs=legs
        )
        posted += 1
    return posted


def commissions_batch(*, lo: int, hi: int) -> int:
    """Compute deals with ids in (lo, hi]: rate card, insert, accrual. Runs inside the caller's transaction.
    Returns the number of commission rows created (0 when they all existed)."""
    postgres = _vendor() == "postgresql"
    months = _batch_months(lo, hi)
    now = timezone.now()
    before = Commission.objects.aggregate(top=Max("id"))["top"] or 0
    fresh = not Commission.objects.filter(deal_id__gt=lo, deal_id__lte=hi).exists()
    totals = None
    with connection.cursor() as cursor:
        if postgres:
            # The batch's statements are big and few: JIT compiling them costs more than it saves.
            cursor.execute("SET LOCAL jit = off")
        _build_rate_card(cursor, months)
        if postgres:
            # What the new rows accrued, summed in the same statement (no second pass over them).
            cursor.execute(
                f"WITH ins AS ({_insert_sql(fresh=fresh)} RETURNING ib_id, currency, amount_minor) "
                "SELECT ib_id, currency, SUM(amount_minor), COUNT(*) FROM ins GROUP BY ib_id, currency",
                [_db_time(now), lo, hi],
            )
            summed = cursor.fetchall()
            created = sum(row[3] for row in summed)
            totals = [row[:3] for row in summed]
        else:
            cursor.execute(_insert_sql(fresh=fresh), [_db_time(now), lo, hi])
            created = max(cursor.rowcount, 0)
        cursor.execute("DROP TABLE IF EXISTS ib_rate_card")
    if created:
        _post_accruals(
            rows=Commission.objects.filter(pk__gt=before, deal_id__gt=lo, deal_id__lte=hi),
            totals=totals,
            key=f"ib-accrual:deals:{lo + 1}-{hi}:{before}",
            description=f"IB commissions accrued on deals {lo + 1}-{hi}",
        )
    return created


def commissions_run(
    *,
    trigger: str = "manual",
    batch_size: int | None = None,
    until_deal_id: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> CommissionRun:
    """Process every deal after the engine's cursor, batch by batch (one transaction each, the cursor row locked
    so two runs never compute the same batch at once), then CPA. Safe to run at any time and any number of
    times. `progress` is called with the number of deal ids covered after each batch."""
    from mt5bridge.models import Deal

    size = batch_size or settings.IB_ENGINE_BATCH_SIZE
    EngineCursor.objects.get_or_create(name=CURSOR)
    target = until_deal_id or Deal.objects.aggregate(top=Max("id"))["top"] or 0
    start = EngineCursor.objects.get(name=CURSOR).last_deal_id
    run = CommissionRun.objects.create(trigger=trigger[:32], from_deal_id=start, last_deal_id=start)
    try:
        while True:
            with transaction.atomic(durable=True):
                cursor = EngineCursor.objects.select_for_update().get(name=CURSOR)
                lo = cursor.last_deal_id
                if lo >= target:
                    break
                hi = min(lo + size, target)
                created = commissions_batch(lo=lo, hi=hi)
                EngineCursor.objects.filter(pk=cursor.pk).update(last_deal_id=hi, updated_at=timezone.now())
                run.batches += 1
                run.rows_created += created
                run.last_deal_id = hi
                CommissionRun.objects.filter(pk=run.pk).update(
                    batches=run.batches, rows_created=run.rows_created, last_deal_id=hi
                )
            if progress:
                progress(hi - lo)
        run.cpa_rows_created = cpa_run()
    except Exception as exc:
        CommissionRun.objects.filter(pk=run.pk).update(
            state=CommissionRun.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise
    run.state, run.finished_at = CommissionRun.State.DONE, timezone.now()
    CommissionRun.objects.filter(pk=run.pk).update(
        state=run.state, finished_at=run.finished_at, cpa_rows_created=run.cpa_rows_created
    )
    return run


def commissions_recompute(*, from_deal_id: int, to_deal_id: int, batch_size: int | None = None) -> int:
    """Run the engine again over deal ids (from, to] without moving the cursor (after a crash mid-run, or to
    prove a range is complete). Rows that exist are left alone; missing ones are created and accrued."""
    from mt5bridge.models import Deal

    size = batch_size or settings.IB_ENGINE_BATCH_SIZE
    EngineCursor.objects.get_or_create(name=CURSOR)
    to_deal_id = min(to_deal_id, Deal.objects.aggregate(top=Max("id"))["top"] or 0)
    created, lo = 0, from_deal_id
    while lo < to_deal_id:
        hi = min(lo + size, to_deal_id)
        with transaction.atomic(durable=True):
            EngineCursor.objects.select_for_update().get(name=CURSOR)  # never alongside a normal batch
            created += commissions_batch(lo=lo, hi=hi)
        lo = hi
    return created


def _cpa_insert_sql() -> str:
    """CPA for qualified first deposits. Parameters: now (deal_time), now (created_at)."""
    if _vendor() == "postgresql":
        deadline = "f.created_at + rc.cpa_within_days * INTERVAL '1 day'"
        in_window = f"dl.time >= f.created_at AND dl.time <= {deadline}"
    else:
        in_window = (
            "julianday(dl.time) >= julianday(f.created_at) "
            "AND julianday(dl.time) <= julianday(f.created_at) + rc.cpa_within_days"
        )
    rate4 = scaled("q.rate", 4)
    return f"""
    INSERT INTO ib_commission (ib_id, level, kind, status, direct_ib_id, client_id, deal_time, symbol, lots,
        min_hold_seconds, rule_id, rule_rate, best_below, rate, base, amount_minor, currency, note, created_at)
    SELECT q.ib_id, q.chain_level, 'cpa', 'earned', q.direct_ib_id, q.client_id, %s, '', q.lots_c / 100.0, 0,
        q.rule_id, q.rule_rate, q.best_below, q.rate, q.deposit_amount,
        {rate4} / q.div4 + CASE WHEN 2 * ({rate4} %% q.div4) > q.div4
                                  OR (2 * ({rate4} %% q.div4) = q.div4 AND ({rate4} / q.div4) %% 2 = 1)
                                 THEN 1 ELSE 0 END,
        q.currency, '', %s
    FROM (
        SELECT rc.*, r.client_id, f.amount AS deposit_amount, rc.div6 / 100 AS div4,
            (SELECT COALESCE(SUM({scaled("dl.volume", 2)}), 0)
             FROM mt5bridge_deal dl JOIN mt5bridge_tradingaccount ta ON ta.id = dl.account_id
             WHERE ta.user_id = r.client_id AND dl.action IN {TRADE_ACTIONS} AND dl.entry IN {CLOSING_ENTRIES}
               AND dl.server_id IN ({LIVE_SERVERS})
               AND {in_window}) AS lots_c
        FROM ib_clientreferral r
        JOIN (
            SELECT dp.user_id, dp.amount, dp.currency, dp.created_at,
                   ROW_NUMBER() OVER (PARTITION BY dp.user_id ORDER BY dp.created_at, dp.id) AS nth
            FROM payments_deposit dp WHERE dp.state IN ('credited', 'completed')
        ) f ON f.user_id = r.client_id AND f.nth = 1
        JOIN ib_rate_card rc ON rc.direct_ib_id = r.ib_id
        WHERE rc.rate > 0 AND f.currency = rc.currency
          AND {scaled("f.amount", 2)} >= {scaled("rc.cpa_min_deposit", 2)}
          AND NOT EXISTS (SELECT 1 FROM ib_commission x WHERE x.client_id = r.client_id AND x.kind = 'cpa'
                          AND x.ib_id = rc.ib_id AND x.level = rc.chain_level)
    ) q
    WHERE q.lots_c >= {scaled("q.cpa_min_lots", 2)}
    ON CONFLICT DO NOTHING
    """


def cpa_run() -> int:
    """Pay CPA for every attributed client whose first deposit qualifies (minimum amount, and minimum volume
    within N days of it) under each earning IB's rule. Once per (client, IB, level), whenever it runs."""
    if not CommissionRule.objects.filter(kind=CommissionRule.Kind.CPA).exists():
        return 0
    with transaction.atomic(durable=True):
        EngineCursor.objects.get_or_create(name="cpa")
        EngineCursor.objects.select_for_update().get(name="cpa")
        now = timezone.now()
        before = Commission.objects.aggregate(top=Max("id"))["top"] or 0
        with connection.cursor() as cursor:
            _build_rate_card(cursor, [("*", "*")], cpa=True)
            cursor.execute(_cpa_insert_sql(), [_db_time(now), _db_time(now)])
            created = max(cursor.rowcount, 0)
            cursor.execute("DROP TABLE IF EXISTS ib_rate_card")
        if created:
            rows = Commission.objects.filter(pk__gt=before, kind=Commission.Kind.CPA)
            _post_accruals(rows=rows, key=f"ib-accrual:cpa:{before}", description="IB CPA for qualified deposits")
        return created
