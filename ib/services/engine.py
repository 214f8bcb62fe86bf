"""The commission engine: set-based SQL over batches of imported deals.

For each batch (a range of deal ids no earlier batch covers), one transaction:

1. a small *rate card* is built into a temporary table by one statement: a recursive CTE expands every IB into
   its chain of uplines with their level, each chain member's plan rule for each symbol group is picked (the volume
   tier it reached last month), and the difference model's "best rate below" comes from a window function;
2. one `INSERT ... SELECT ... GROUP BY` takes the batch's closing deals of attributed clients (attribution fixed by
   deal id: `ClientReferral.after_deal_id`, `ReferralSpan`) with their positions as opened (hold time, the
   opening side's commission: fixed on the deal when it was stored, `Deal.open_*`), counts together the deals whose
   lines cannot differ, expands them into their lines (deal, IB, level) through the rate card, computes
   each line's amount rounded to the cent, and writes one `Commission` row per (IB, level, sub-IB, symbol, broker
   day, status) with the rule, the rates, the deals, the lots and the exact sum of its lines;
3. what those rows accrued is posted to the ledger (IB payable of each IB against the broker's commission
   expense), and the batch is recorded with the deals it covered.

The per-deal lines are not stored: `ib.selectors.commission_lines` derives them again from a row, its batch and
the deals with the same expressions (`_line_columns`, `_line_amount`), so the statement explains every cent and
adds up to the row.
Everything a line depends on is fixed once its deal is imported: deals are immutable (their opening side
included), attribution is by deal id, and the row keeps the rule, the rates and the markup.

Idempotent and re-runnable: batches never overlap (a range already covered is skipped), a deal imported twice is
one deal (unique per server and ticket), and a crash rolls the batch back whole; the next run starts again from
the cursor. Exact: amounts are integer products of scaled integers (lots in hundredths, rates in ten-thousandths),
rounded half-even to the currency's minor unit in SQL, on PostgreSQL and SQLite alike; no float reaches an amount.
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
    CommissionBatch,
    CommissionRule,
    CommissionRun,
    EngineCursor,
    IntroducingBroker,
    VolumeMonth,
)
from ib.selectors import MAX_DEPTH
from mt5bridge.models import CLOSING_ENTRIES as DEAL_CLOSING_ENTRIES
from mt5bridge.models import TRADE_ACTIONS as DEAL_TRADE_ACTIONS

CURSOR = "deals"
MAX_BATCH_SIZE = 2**31 - 1  # a batch's deal counts are 32-bit integers in its SQL
# As SQL lists: the deal kinds mt5bridge names (buy and sell; out, in/out, out by).
TRADE_ACTIONS = f"({', '.join(map(str, DEAL_TRADE_ACTIONS))})"
CLOSING_ENTRIES = f"({', '.join(map(str, DEAL_CLOSING_ENTRIES))})"
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


def _db_time(moment: datetime):
    """A datetime as the backend stores it (SQLite: naive UTC text, comparable with the stored values)."""
    return connection.ops.adapt_datetimefield_value(moment)


def _divisor(places: int, column: str = "p.currency") -> str:
    """10^(places - exponent of the row's currency): what turns a scaled product into minor units."""
    whens = " ".join(f"WHEN '{cur}' THEN {10 ** (places - exp)}" for cur, exp in sorted(_ENGINE_CURRENCIES.items()))
    return f"CASE {column} {whens} END"


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
    SELECT ROW_NUMBER() OVER () AS id, u.* FROM (
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
    ) u
    """
    return sql, params


def _build_rate_card(cursor, months: list[tuple[str, str]], *, cpa: bool = False) -> None:
    cursor.execute("DROP TABLE IF EXISTS ib_rate_card")
    sql, params = _rate_card_sql(months, cpa=cpa)
    cursor.execute(sql, params)
    # Integer rates and markups once per card row, not once per deal and level.
    for column in ("rate4", "markup4"):
        cursor.execute(f"ALTER TABLE ib_rate_card ADD COLUMN {column} BIGINT")
    markup = scaled("g.spread_markup_per_lot", 4)
    cursor.execute(
        f"UPDATE ib_rate_card SET rate4 = {scaled('rate', 4)}, markup4 = (SELECT {markup} FROM ib_symbolgroup g "
        "WHERE g.id = ib_rate_card.symbol_group_id)"
    )
    if _vendor() == "postgresql":
        cursor.execute("ANALYZE ib_rate_card")


# A closing deal's hold time, lots and round-turn commission as the database generated them when the deal was
# stored (`Deal.hold_ms`, `lots_centi`, `turn_commission_centi`).
_DEAL_FACTS = "d.hold_ms, d.lots_centi AS lots_c, d.turn_commission_centi AS comm_c"


def _spans_sql() -> str:
    """Who each client's deals belong to, by deal id: the current referral for deals after its `after_deal_id`,
    and past referrals (`ReferralSpan`) for the deal ids they covered."""
    return (
        "(SELECT client_id, ib_id, after_deal_id, NULL AS until_deal_id FROM ib_clientreferral "
        "UNION ALL SELECT client_id, ib_id, after_deal_id, until_deal_id FROM ib_referralspan)"
    )


def _day_expr(column: str) -> str:
    """The broker's trading day of a timestamp (`BROKER_TIME_ZONE`), as the analytics tables count days."""
    zone = str(settings.BROKER_TIME_ZONE).replace("'", "")
    if _vendor() == "postgresql":
        return f"({column} AT TIME ZONE '{zone}')::date"
    return f"django_datetime_cast_date({column}, '{zone}', 'UTC')"


def _closing_deal_filter(alias: str = "d") -> str:
    return (
        f"{alias}.action IN {TRADE_ACTIONS} AND {alias}.entry IN {CLOSING_ENTRIES} "
        f"AND {alias}.server_id IN ({LIVE_SERVERS})"
    )


def lines_sql(*, rows_where: str, lines_where: str = "") -> str:
    """The per-deal lines of stored rows (deal-based kinds), derived from the rows, their batches and the deals by
    the expressions the engine summed: one line per (row, deal) with its status and amount, exactly the ones the
    engine counted in the row. `rows_where` filters `ib_commission c`; `lines_where` (starting with AND) filters
    the deals `d` and clients `s.client_id`. Columns: row_id, deal_id, time, symbol, volume, open_id, open_time,
    comm_c, client_id, status, amount."""
    materialized = "MATERIALIZED" if _vendor() == "postgresql" else ""
    return f"""
    WITH b AS {materialized} (
        SELECT c.id AS row_id, c.direct_ib_id, c.symbol, c.deal_time, c.last_deal_time, c.kind, c.status,
               c.min_hold_seconds, c.currency, c.level, bt.lo AS batch_lo, bt.hi AS batch_hi,
               {scaled("c.rate", 4)} AS rate4, {scaled("c.base", 4)} AS markup4,
               {_divisor(6, "c.currency")} AS div6, {_divisor(10, "c.currency")} AS div10
        FROM ib_commission c JOIN ib_commissionbatch bt ON bt.id = c.batch_id
        WHERE {rows_where}
    ),
    facts AS (
        SELECT b.row_id, d.id AS deal_id, d.time, d.symbol, d.volume, od.id AS open_id, d.open_time, s.client_id,
               a.currency AS account_currency, {_DEAL_FACTS}
        FROM b
        JOIN {_spans_sql()} s ON s.ib_id = b.direct_ib_id
        JOIN mt5bridge_tradingaccount a ON a.user_id = s.client_id
        JOIN mt5bridge_deal d ON d.login = a.login AND d.server_id = a.server_id AND d.account_id = a.id
             AND d.time >= b.deal_time AND d.time <= b.last_deal_time AND d.symbol = b.symbol
             AND d.id > b.batch_lo AND d.id <= b.batch_hi
             AND d.id > s.after_deal_id AND (s.until_deal_id IS NULL OR d.id <= s.until_deal_id)
        LEFT JOIN mt5bridge_deal od ON od.server_id = d.server_id AND od.ticket = d.open_ticket
        WHERE {_closing_deal_filter()} {lines_where}
    )
    SELECT l.row_id, l.deal_id, l.time, l.symbol, l.volume, l.open_id, l.open_time, l.comm_c, l.client_id,
           l.status, {_line_amount("l")} AS amount
    FROM (
        SELECT x.*, k.status AS row_status, {_line_columns("x", "k")}
        FROM facts x JOIN b k ON k.row_id = x.row_id
        {_fence()}
    ) l
    WHERE l.status = l.row_status
    """


def _line_columns(x: str, k: str) -> str:
    """`status`, `raw` and `div` of one line: deal facts `x` (hold_ms, account_currency, lots_c, comm_c)
    under the rule columns of `k` (kind, rate4, markup4, min_hold_seconds, currency, div6, div10). The engine's
    card rows and the stored rows both have them, so the statement's lines are computed by the very expressions
    the engine summed. Select them in a subquery the planner keeps whole (OFFSET 0), then `_line_amount` over
    it: each expression is then computed once per line."""
    status = (
        f"CASE WHEN {x}.hold_ms < {k}.min_hold_seconds * 1000"  # NULL (opening unknown) is not short
        f" THEN 'short_hold' WHEN {k}.kind = 'commission_share' AND {x}.account_currency <> {k}.currency"
        " THEN 'currency' ELSE 'earned' END"
    )
    raw = (
        f"CASE {k}.kind WHEN 'rebate_per_lot' THEN {x}.lots_c * {k}.rate4 "
        f"WHEN 'spread_share' THEN {x}.lots_c * {k}.markup4 * {k}.rate4 ELSE {x}.comm_c * {k}.rate4 END"
    )
    div = f"CASE {k}.kind WHEN 'spread_share' THEN {k}.div10 ELSE {k}.div6 END"
    return f"{status} AS status, {raw} AS raw, {div} AS div"


def _fence() -> str:
    """Ends a subquery so that the planner evaluates its columns once instead of inlining them into the outer
    query's expressions (PostgreSQL does not flatten a subquery with OFFSET; SQLite needs a LIMIT with it)."""
    return "OFFSET 0" if _vendor() == "postgresql" else "LIMIT -1 OFFSET 0"


def _line_amount(line: str) -> str:
    """A line's amount in minor units: its raw product divided to the currency's minor unit, rounded half to
    even; 0 unless earned."""
    raw, div = f"{line}.raw", f"{line}.div"
    return (
        f"CASE WHEN {line}.status <> 'earned' THEN 0 ELSE {raw} / {div} + CASE WHEN 2 * ({raw} %% {div}) > {div} "
        f"OR (2 * ({raw} %% {div}) = {div} AND ({raw} / {div}) %% 2 = 1) THEN 1 ELSE 0 END END"
    )


def _facts_sql() -> str:
    """A batch's closing deals of attributed clients, one row each, with what their lines need: the sub-IB, the
    symbol group (NULL outside every group), the broker day, the tier month, the hold time since the position's
    first opening deal and the lots and round-turn commission as scaled integers. Parameters: lo, hi. The
    position's opening side was fixed on the deal when it was stored (`Deal.open_*`), and the database generated
    the figures from it: one pass over the batch's deals, no lookup of other deals."""
    month = _month_expr("d.time") if _tiers_in_use() else "'*'"
    return f"""
    SELECT d.id AS deal_id, d.time, d.symbol, s.ib_id AS direct_ib_id, a.currency AS account_currency,
           gm.group_id, {_day_expr("d.time")} AS day, {month} AS month,
           {_DEAL_FACTS}
    FROM mt5bridge_deal d
    JOIN mt5bridge_tradingaccount a ON a.id = d.account_id
    JOIN {_spans_sql()} s ON s.client_id = a.user_id AND d.id > s.after_deal_id
                         AND (s.until_deal_id IS NULL OR d.id <= s.until_deal_id)
    LEFT JOIN ib_symbolgroupmember gm ON gm.symbol = d.symbol
    WHERE d.id > %s AND d.id <= %s AND {_closing_deal_filter()}
    """


def _stage_sql(hold_cap_ms: int) -> str:
    """The batch's deals counted by what their lines depend on (same sub-IB, symbol group, symbol, day, tier
    month, account currency, lots, round-turn commission, and hold time as far as any minimum can tell: capped at
    the card's longest, `hold_cap_ms`). Parameters: lo, hi."""
    hold = f"CASE WHEN hold_ms > {int(hold_cap_ms)} THEN {int(hold_cap_ms)} ELSE hold_ms END"
    return f"""
    SELECT direct_ib_id, group_id, symbol, day, month, account_currency, {hold} AS hold_ms, lots_c, comm_c,
           CAST(COUNT(*) AS INTEGER) AS n, MIN(time) AS first_time, MAX(time) AS last_time
    FROM ({_facts_sql()}) f
    GROUP BY direct_ib_id, group_id, symbol, day, month, account_currency, {hold}, lots_c, comm_c
    """


def _insert_sql(stage: str) -> str:
    """One INSERT ... SELECT ... GROUP BY over a batch's counted deals (`stage`: `_stage_sql`, or the name of a
    table holding them) and the rate card. Parameters: batch id, created_at, then the stage's.

    Each distinct line is computed once and weighted by its count, which is exact because every deal of a counted
    group has the very same rounded amount at every level.

    A position held below the minimum time earns nothing: the IB's own level (0) keeps those deals in a row of
    status `short_hold` that explains the zero; an upline whose own plan's minimum the hold also misses gets no
    line (it would be a zero nobody reads), while an upline whose plan asks for a shorter hold still earns."""
    source = stage if stage.isidentifier() else f"({stage})"
    return f"""
    INSERT INTO ib_commission (batch_id, ib_id, level, kind, status, direct_ib_id, deal_time, last_deal_time, day,
        tier_month, symbol, deals, lots, min_hold_seconds, rule_id, rule_rate, best_below, rate, base, amount_minor,
        currency, note, created_at)
    SELECT %s, k.ib_id, k.chain_level, k.kind, g.status, k.direct_ib_id, g.first_time, g.last_time, g.day, k.month,
        g.symbol, g.n, {_from_scaled("g.lots_c", 2)}, k.min_hold_seconds, k.rule_id, k.rule_rate, k.best_below, k.rate,
        CASE k.kind WHEN 'spread_share' THEN k.markup4 WHEN 'commission_share' THEN g.comm_c * 100 END
            * {_from_scaled("1", 4)},
        g.amount, k.currency, '', %s
    FROM (
        SELECT l.card_id, l.symbol, l.day, l.status, SUM(l.n) AS n, SUM(l.n * l.lots_c) AS lots_c,
               SUM(l.n * l.comm_c) AS comm_c, SUM(l.n * ({_line_amount("l")})) AS amount,
               MIN(l.first_time) AS first_time, MAX(l.last_time) AS last_time
        FROM (
            SELECT k.id AS card_id, k.chain_level, x.symbol, x.day, x.n, x.lots_c, x.comm_c, x.first_time,
                   x.last_time, {_line_columns("x", "k")}
            FROM {source} x
            JOIN ib_rate_card k ON k.direct_ib_id = x.direct_ib_id AND k.symbol_group_id = x.group_id
                               AND k.month = x.month
            -- an upline's line of a hold below its own plan's minimum (status 'short_hold') is left out here
            WHERE k.rate > 0 AND (k.chain_level = 0 OR x.hold_ms IS NULL OR x.hold_ms >= k.min_hold_seconds * 1000)
            {_fence()}
        ) l
        GROUP BY l.card_id, l.symbol, l.day, l.status
    ) g
    JOIN ib_rate_card k ON k.id = g.card_id
    """


def _from_scaled(expr: str, places: int) -> str:
    """An integer in units of 10^-places back to its decimal value (exact on PostgreSQL; on SQLite a REAL that
    Django's decimal converter rounds back to the field's places)."""
    if _vendor() == "postgresql":
        return f"({expr})::numeric / {10**places}"
    return f"({expr}) / {float(10**places)!r}"


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
                JOIN {_spans_sql()} r ON r.client_id = a.user_id AND d.id > r.after_deal_id
                                     AND (r.until_deal_id IS NULL OR d.id <= r.until_deal_id)
                JOIN chain ch ON ch.direct_ib_id = r.ib_id
                WHERE d.time >= %s AND d.time < %s AND {_closing_deal_filter()}
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
    from payments.ledger import Leg, ledger_account, ledger_accounts_of, ledger_post
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
        payable = ledger_accounts_of(
            kind=LedgerAccount.Kind.IB_PAYABLE, currency=currency, users=[users[ib_id] for ib_id in totals]
        )
        legs = [Leg(payable[users[ib_id].pk], Decimal(total).scaleb(-exp)) for ib_id, total in sorted(totals.items())]
        expense = ledger_account(kind=LedgerAccount.Kind.FEES, currency=currency, key="ib_commission")
        legs.append(Leg(expense, -sum((leg.amount for leg in legs), Decimal(0))))
        ledger_post(
            idempotency_key=f"{key}:{currency}", kind="ib_commission_accrual", description=description, legs=legs
        )
        posted += 1
    return posted


def _uncovered(lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of deal ids (lo, hi] that no batch covers yet."""
    gaps, start = [], lo
    for b_lo, b_hi in CommissionBatch.objects.filter(hi__gt=lo, lo__lt=hi).order_by("lo").values_list("lo", "hi"):
        if b_lo > start:
            gaps.append((start, min(b_lo, hi)))
        start = max(start, b_hi)
    if start < hi:
        gaps.append((start, hi))
    return gaps


def commissions_batch(*, lo: int, hi: int, run: CommissionRun | None = None) -> int:
    """Compute deals with ids in (lo, hi] that no batch covers yet: rate card, insert, accrual. Runs inside the
    caller's transaction (which holds the cursor lock). Returns the number of commission lines created."""
    created = 0
    for gap_lo, gap_hi in _uncovered(lo, hi):
        created += _compute(lo=gap_lo, hi=gap_hi, run=run)
    return created


def _attributed_closing_deals(lo: int, hi: int) -> int:
    """Closing trade deals of attributed clients among deal ids (lo, hi] (in a symbol group or not)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM mt5bridge_deal d JOIN mt5bridge_tradingaccount a ON a.id = d.account_id "
            f"JOIN {_spans_sql()} s ON s.client_id = a.user_id AND d.id > s.after_deal_id "
            "AND (s.until_deal_id IS NULL OR d.id <= s.until_deal_id) "
            f"WHERE d.id > %s AND d.id <= %s AND {_closing_deal_filter()}",
            [lo, hi],
        )
        return cursor.fetchone()[0]


def _compute(*, lo: int, hi: int, run: CommissionRun | None) -> int:
    postgres = _vendor() == "postgresql"
    months = _batch_months(lo, hi)
    now = timezone.now()
    batch = CommissionBatch.objects.create(lo=lo, hi=hi, run=run, created_at=now)
    with connection.cursor() as cursor:
        if postgres:
            # The batch's statements are big and few: JIT compiling them costs more than it saves, and the
            # hash joins and aggregates over a batch's deals want more than the default 4 MB of memory.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(f"SET LOCAL work_mem = '{int(settings.IB_ENGINE_WORK_MEM_MB)}MB'")
            # Its GROUP BYs fit in memory: hash them (the planner, unsure how many groups a batch makes, would
            # sort millions of lines). Parallel workers stay as configured: counting the batch's deals into the
            # temporary table can use them (the insert itself runs in one process, as every INSERT does).
            cursor.execute("SET LOCAL enable_sort = off")
        _build_rate_card(cursor, months)
        cursor.execute("SELECT COALESCE(MAX(min_hold_seconds), 0) FROM ib_rate_card")
        hold_cap_ms = int(cursor.fetchone()[0]) * 1000
        # The counted deals go to a temporary table: read once for the insert, and for the batch's deal count.
        cursor.execute("DROP TABLE IF EXISTS ib_stage")
        cursor.execute(f"CREATE TEMP TABLE ib_stage AS {_stage_sql(hold_cap_ms)}", [lo, hi])
        cursor.execute("SELECT COALESCE(SUM(n), 0) FROM ib_stage")
        deals = int(cursor.fetchone()[0])  # attributed closing deals, in a symbol group or not
        cursor.execute(_insert_sql("ib_stage"), [batch.pk, _db_time(now)])
        cursor.execute(
            "SELECT ib_id, currency, SUM(amount_minor), SUM(deals) FROM ib_commission WHERE batch_id = %s "
            "GROUP BY ib_id, currency",
            [batch.pk],
        )
        summed = cursor.fetchall()
        cursor.execute("DROP TABLE IF EXISTS ib_stage")
        cursor.execute("DROP TABLE IF EXISTS ib_rate_card")
    lines = sum(int(row[3]) for row in summed)
    CommissionBatch.objects.filter(pk=batch.pk).update(deals=deals, lines=lines)
    if lines:
        _post_accruals(
            totals=[row[:3] for row in summed],
            key=f"ib-accrual:batch:{batch.pk}",
            description=f"IB commissions accrued on deals {lo + 1}-{hi}",
        )
    return lines


def _committed_top_deal_id() -> int:
    """The highest deal id below which every deal is committed: read after the imports in flight have committed
    (they hold `deals_insert_lock` shared; this waits for them). A batch never covers an id whose deal could
    still appear, so what a batch computed and what its lines show later are the same deals."""
    from mt5bridge.models import Deal
    from mt5bridge.services.sync import deals_insert_lock

    with transaction.atomic():
        deals_insert_lock(shared=False)
        return Deal.objects.aggregate(top=Max("id"))["top"] or 0


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

    size = min(batch_size or settings.IB_ENGINE_BATCH_SIZE, MAX_BATCH_SIZE)
    EngineCursor.objects.get_or_create(name=CURSOR)
    target = until_deal_id or _committed_top_deal_id()
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
                created = commissions_batch(lo=lo, hi=hi, run=run)
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
    """Make sure deal ids (from, to] are computed, without moving the cursor (after a crash mid-run, or to prove a
    range is complete): ranges no batch covers are computed and accrued; covered ranges are left alone. Returns
    the commission lines created."""

    size = min(batch_size or settings.IB_ENGINE_BATCH_SIZE, MAX_BATCH_SIZE)
    EngineCursor.objects.get_or_create(name=CURSOR)
    to_deal_id = min(to_deal_id, _committed_top_deal_id())
    created, lo = 0, from_deal_id
    while lo < to_deal_id:
        hi = min(lo + size, to_deal_id)
        with transaction.atomic(durable=True):
            EngineCursor.objects.select_for_update().get(name=CURSOR)  # never alongside a normal batch
            created += commissions_batch(lo=lo, hi=hi)
        lo = hi
    return created


def commissions_audit(*, batch: CommissionBatch) -> dict:
    """Recount a batch against the deals: the closing deals of attributed clients in its range now (a deal that
    committed late, under an id the cursor had passed, would show here) and the lines its rows hold."""
    deals_now = _attributed_closing_deals(batch.lo, batch.hi)
    lines = Commission.objects.filter(batch=batch).aggregate(n=Sum("deals"))["n"] or 0
    return {"deals_then": batch.deals, "deals_now": deals_now, "lines_recorded": batch.lines, "lines_now": lines}


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
        min_hold_seconds, rule_id, rule_rate, best_below, rate, base, amount_minor, currency, note, created_at,
        deals, tier_month)
    SELECT q.ib_id, q.chain_level, 'cpa', 'earned', q.direct_ib_id, q.client_id, %s, '', q.lots_c / 100.0, 0,
        q.rule_id, q.rule_rate, q.best_below, q.rate, q.deposit_amount,
        {rate4} / q.div4 + CASE WHEN 2 * ({rate4} %% q.div4) > q.div4
                                  OR (2 * ({rate4} %% q.div4) = q.div4 AND ({rate4} / q.div4) %% 2 = 1)
                                 THEN 1 ELSE 0 END,
        q.currency, '', %s, 0, ''
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
