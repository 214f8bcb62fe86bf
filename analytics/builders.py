"""The table registry and the set-based SQL that fills one day bucket of each table.

A table is a `Table` entry in `TABLES`: its model, the columns it inserts, one SELECT (in `Dialect` terms, so one
text serves SQLite and PostgreSQL), the tables it is built from, and a check that says which source data was missing
for the day. Adding a table (IB daily, say) is one more `Table(...)` in `TABLES` and its model.

SQL parameters are always `%(day)s`, `%(start)s` and `%(end)s`: the trading day and its UTC window (`analytics.days`),
so every source is read by a range scan on an indexed time column.

Exact money on SQLite: SQLite keeps decimals as binary floats, so each money value is turned into integer minor units
(`Dialect.minor`, hundredths: every money and lots column here has two decimal places) before it is summed, and the
integer total is scaled back once (`Dialect.scaled`). PostgreSQL sums NUMERIC exactly and the dialect leaves it alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from analytics.models import BrokerDaily, ClientDaily, IbDaily, PaymentsDaily

SCALE = 100  # every money and lots column of the tables has two decimal places

DEPOSIT_SETTLED = ("credited", "completed")
# A refunded or charged-back deposit did go through at the PSP; its reversal is a later, separate event.
DEPOSIT_SUCCEEDED = ("succeeded", "credited", "completed", "refunded", "charged_back")
DEPOSIT_FAILED = ("failed", "expired")
DEPOSIT_OPEN = ("created", "pending")
WITHDRAWAL_SETTLED = ("sent", "completed")
WITHDRAWAL_FAILED = ("rejected",)
WITHDRAWAL_CANCELLED = ("cancelled",)
WITHDRAWAL_OPEN = ("requested", "funds_held", "approved")
TRADE_ACTIONS = (0, 1)  # MT5 deal types buy and sell; balance, credit and the rest are not trading


def _in(values: tuple) -> str:
    """A literal IN list of our own constants (never user input)."""
    return "(" + ", ".join(f"'{v}'" if isinstance(v, str) else str(int(v)) for v in values) + ")"


@dataclass(frozen=True)
class Dialect:
    """The few places where SQLite and PostgreSQL must be spoken differently."""

    vendor: str

    @property
    def exact(self) -> bool:
        return self.vendor == "postgresql"

    def minor(self, expr: str) -> str:
        """A money (or lots) value as something that sums exactly."""
        return expr if self.exact else f"CAST(ROUND(({expr}) * {SCALE}) AS INTEGER)"

    def scaled(self, expr: str) -> str:
        """A sum of `minor` values back as the stored amount."""
        return expr if self.exact else f"(({expr}) / {SCALE}.0)"

    def table(self, model: type[models.Model]) -> str:
        return model._meta.db_table


@dataclass(frozen=True)
class Table:
    """One nightly table.

    `select(dialect, tables)` returns the SELECT whose columns are `columns`, in order; `tables` maps model labels to
    table names. `sources="replica"` means it reads only other apps' tables (so with a read replica configured the
    SELECT runs there); `sources="primary"` means it reads tables this build just wrote and must run on the primary.
    `missing(day, start, end)` lists what source data was absent for the day (empty: complete).
    """

    name: str
    title: str
    model: type[models.Model]
    columns: tuple[str, ...]
    select: Callable[[Dialect], str]
    depends_on: tuple[str, ...] = ()
    sources: str = "replica"
    missing: Callable[[date, datetime, datetime], list[str]] = field(default=lambda day, start, end: [])


def _names() -> dict[str, str]:
    from django.apps import apps

    labels = {
        "deal": "mt5bridge.Deal",
        "account": "mt5bridge.TradingAccount",
        "server": "mt5bridge.TradeServer",
        "deposit": "payments.Deposit",
        "withdrawal": "payments.Withdrawal",
        "profile": "crm.ClientProfile",
        "dayend": "analytics.AccountDayEnd",
        "client_daily": "analytics.ClientDaily",
        "ib_click": "ib.ReferralClick",
        "ib_link": "ib.ReferralLink",
        "ib_referral": "ib.ClientReferral",
        "ib_commission": "ib.Commission",
        "kyc_case": "kyc.KycCase",
    }
    return {key: apps.get_model(label)._meta.db_table for key, label in labels.items()}


COUNTRY = "COALESCE(NULLIF(UPPER(p.country), ''), 'ZZ')"


# --- Client daily ---------------------------------------------------------------------------------------------


def client_daily_select(d: Dialect) -> str:
    """PostgreSQL joins the per-source aggregates (hash full joins); SQLite has no hash join and would nest-loop
    them, so there the aggregates are appended and grouped once more instead. Same rows either way."""
    return _client_daily_joined(d) if d.exact else _client_daily_appended(d)


def _client_daily_appended(d: Dialect) -> str:
    t = _names()
    m = d.minor
    zeros_money = "0 AS dep_n, 0 AS dep_amt, 0 AS wd_n, 0 AS wd_amt"
    zeros_trading = "0 AS trades, 0 AS lots, 0 AS pl, 0 AS comm, 0 AS swp"
    zeros_accounts = "0 AS n_acc, 0 AS n_snap, CAST(NULL AS NUMERIC) AS bal, CAST(NULL AS NUMERIC) AS eq"
    return f"""
SELECT %(day)s, s.user_id, s.currency, {COUNTRY},
       SUM(s.dep_n), {d.scaled("SUM(s.dep_amt)")}, SUM(s.wd_n), {d.scaled("SUM(s.wd_amt)")},
       {d.scaled("SUM(s.dep_amt) - SUM(s.wd_amt)")},
       SUM(s.trades), {d.scaled("SUM(s.lots)")}, {d.scaled("SUM(s.pl)")}, {d.scaled("SUM(s.comm)")},
       {d.scaled("SUM(s.swp)")},
       CASE WHEN SUM(s.n_acc) > 0 AND SUM(s.n_snap) = SUM(s.n_acc) THEN {d.scaled("SUM(s.bal)")} END,
       CASE WHEN SUM(s.n_acc) > 0 AND SUM(s.n_snap) = SUM(s.n_acc) THEN {d.scaled("SUM(s.eq)")} END
FROM (
    SELECT dp.user_id, dp.currency, COUNT(*) AS dep_n, SUM({m("dp.amount")}) AS dep_amt, 0 AS wd_n, 0 AS wd_amt,
           {zeros_trading}, {zeros_accounts}
    FROM {t["deposit"]} dp
    WHERE dp.created_at >= %(start)s AND dp.created_at < %(end)s AND dp.state IN {_in(DEPOSIT_SETTLED)}
    GROUP BY dp.user_id, dp.currency
  UNION ALL
    SELECT w.user_id, w.currency, 0, 0, COUNT(*), SUM({m("w.amount")}), {zeros_trading}, {zeros_accounts}
    FROM {t["withdrawal"]} w
    WHERE w.created_at >= %(start)s AND w.created_at < %(end)s AND w.state IN {_in(WITHDRAWAL_SETTLED)}
    GROUP BY w.user_id, w.currency
  UNION ALL
    SELECT a.user_id, a.currency, {zeros_money},
           COUNT(*), SUM({m("dl.volume")}), SUM({m("dl.profit")}), SUM({m("dl.commission")}), SUM({m("dl.swap")}),
           {zeros_accounts}
    FROM {t["deal"]} dl
    JOIN {t["account"]} a ON a.id = dl.account_id
    JOIN {t["server"]} sv ON sv.id = dl.server_id AND sv.kind = 'live'
    WHERE dl.time >= %(start)s AND dl.time < %(end)s AND dl.action IN {_in(TRADE_ACTIONS)}
    GROUP BY a.user_id, a.currency
  UNION ALL
    SELECT a.user_id, a.currency, {zeros_money}, {zeros_trading},
           COUNT(*), COUNT(e.id), SUM({m("e.balance")}), SUM({m("e.equity")})
    FROM {t["account"]} a
    JOIN {t["server"]} sv ON sv.id = a.server_id AND sv.kind = 'live'
    LEFT JOIN {t["dayend"]} e ON e.account_id = a.id AND e.day = %(day)s
    WHERE a.state = 'provisioned' AND a.created_at < %(end)s
    GROUP BY a.user_id, a.currency
) s
LEFT JOIN {t["profile"]} p ON p.user_id = s.user_id
GROUP BY s.user_id, s.currency, p.country
"""  # noqa: S608 - table names are ours, values are parameters


def _client_daily_joined(d: Dialect) -> str:
    t = _names()
    m = d.minor

    def zero(column: str) -> str:
        return f"COALESCE(x.{column}, 0)"

    snapshotted = "x.n_acc > 0 AND x.n_snap = x.n_acc"
    # Each source is aggregated on its own down to one row per client and currency, and the four results are
    # joined on that key (FULL JOIN: a client may appear in any of them). Joining small aggregates is much cheaper
    # than re-aggregating their union, so the statement costs about one pass over the day's deals.
    return f"""
SELECT %(day)s, x.user_id, x.currency, {COUNTRY},
       {zero("dep_n")}, {d.scaled(zero("dep_amt"))}, {zero("wd_n")}, {d.scaled(zero("wd_amt"))},
       {d.scaled(f"{zero('dep_amt')} - {zero('wd_amt')}")},
       {zero("trades")}, {d.scaled(zero("lots"))}, {d.scaled(zero("pl"))}, {d.scaled(zero("comm"))},
       {d.scaled(zero("swp"))},
       CASE WHEN {snapshotted} THEN {d.scaled("x.bal")} END,
       CASE WHEN {snapshotted} THEN {d.scaled("x.eq")} END
FROM (
    SELECT user_id, currency, trades, lots, pl, comm, swp, n_acc, n_snap, bal, eq, dep_n, dep_amt, wd_n, wd_amt
    FROM (
        SELECT a.user_id, a.currency, COUNT(*) AS trades, SUM({m("dl.volume")}) AS lots,
               SUM({m("dl.profit")}) AS pl, SUM({m("dl.commission")}) AS comm, SUM({m("dl.swap")}) AS swp
        FROM {t["deal"]} dl
        JOIN {t["account"]} a ON a.id = dl.account_id
        JOIN {t["server"]} sv ON sv.id = dl.server_id AND sv.kind = 'live'
        WHERE dl.time >= %(start)s AND dl.time < %(end)s AND dl.action IN {_in(TRADE_ACTIONS)}
        GROUP BY a.user_id, a.currency
    ) trd
    FULL JOIN (
        SELECT a.user_id, a.currency, COUNT(*) AS n_acc, COUNT(e.id) AS n_snap, SUM({m("e.balance")}) AS bal,
               SUM({m("e.equity")}) AS eq
        FROM {t["account"]} a
        JOIN {t["server"]} sv ON sv.id = a.server_id AND sv.kind = 'live'
        LEFT JOIN {t["dayend"]} e ON e.account_id = a.id AND e.day = %(day)s
        WHERE a.state = 'provisioned' AND a.created_at < %(end)s
        GROUP BY a.user_id, a.currency
    ) acc USING (user_id, currency)
    FULL JOIN (
        SELECT dp.user_id, dp.currency, COUNT(*) AS dep_n, SUM({m("dp.amount")}) AS dep_amt
        FROM {t["deposit"]} dp
        WHERE dp.created_at >= %(start)s AND dp.created_at < %(end)s AND dp.state IN {_in(DEPOSIT_SETTLED)}
        GROUP BY dp.user_id, dp.currency
    ) dep USING (user_id, currency)
    FULL JOIN (
        SELECT w.user_id, w.currency, COUNT(*) AS wd_n, SUM({m("w.amount")}) AS wd_amt
        FROM {t["withdrawal"]} w
        WHERE w.created_at >= %(start)s AND w.created_at < %(end)s AND w.state IN {_in(WITHDRAWAL_SETTLED)}
        GROUP BY w.user_id, w.currency
    ) wd USING (user_id, currency)
) x
LEFT JOIN {t["profile"]} p ON p.user_id = x.user_id
"""  # noqa: S608 - table names are ours, values are parameters


def client_daily_missing(day: date, start: datetime, end: datetime) -> list[str]:
    """Deals not yet imported past the day's end, and live accounts without a day-end snapshot."""
    from analytics.models import AccountDayEnd
    from mt5bridge.models import TradeServer, TradingAccount

    notes = []
    for server in TradeServer.objects.filter(kind=TradeServer.Kind.LIVE, is_active=True).order_by("name"):
        imported = server.deals_imported_at
        if imported is None or imported < end:
            when = "never" if imported is None else f"only up to {imported:%Y-%m-%d %H:%M} UTC"
            notes.append(f"Deals of trade server {server.name}: imported {when}, before the day ended.")
    accounts = TradingAccount.objects.filter(
        server__kind=TradeServer.Kind.LIVE, state=TradingAccount.State.PROVISIONED, created_at__lt=end
    )
    total = accounts.count()
    captured = AccountDayEnd.objects.filter(day=day, account__in=accounts).count()
    if captured < total:
        # mt5bridge keeps only each account's latest snapshot; the capture task keeps the day's last one here.
        notes.append(f"Balance and equity at day end: no snapshot for {total - captured} of {total} live accounts.")
    return notes


CLIENT_DAILY = Table(
    name="client_daily",
    title="Client daily",
    model=ClientDaily,
    columns=(
        "day",
        "user_id",
        "currency",
        "country",
        "deposits_count",
        "deposits_amount",
        "withdrawals_count",
        "withdrawals_amount",
        "net_deposit",
        "trades",
        "lots",
        "realised_pl",
        "commission",
        "swap",
        "balance_end",
        "equity_end",
    ),
    select=client_daily_select,
    missing=client_daily_missing,
)


# --- Broker daily ---------------------------------------------------------------------------------------------


def broker_daily_select(d: Dialect) -> str:
    t = _names()
    m = d.minor
    net = "SUM(s.pl) + SUM(s.comm) + SUM(s.swp)"
    settled = _in(DEPOSIT_SETTLED)
    return f"""
SELECT %(day)s, s.currency,
       SUM(s.dep_n), {d.scaled("SUM(s.dep_amt)")}, SUM(s.wd_n), {d.scaled("SUM(s.wd_amt)")},
       {d.scaled("SUM(s.dep_amt) - SUM(s.wd_amt)")}, SUM(s.ftd_n), {d.scaled("SUM(s.ftd_amt)")},
       SUM(s.active), SUM(s.trades), {d.scaled("SUM(s.lots)")}, {d.scaled("SUM(s.pl)")}, {d.scaled("SUM(s.comm)")},
       {d.scaled("SUM(s.swp)")}, {d.scaled(net)}, {d.scaled(f"-({net})")}
FROM (
    SELECT c.currency, SUM(c.deposits_count) AS dep_n, SUM({m("c.deposits_amount")}) AS dep_amt,
           SUM(c.withdrawals_count) AS wd_n, SUM({m("c.withdrawals_amount")}) AS wd_amt, 0 AS ftd_n, 0 AS ftd_amt,
           SUM(CASE WHEN c.trades > 0 THEN 1 ELSE 0 END) AS active, SUM(c.trades) AS trades,
           SUM({m("c.lots")}) AS lots, SUM({m("c.realised_pl")}) AS pl, SUM({m("c.commission")}) AS comm,
           SUM({m("c.swap")}) AS swp
    FROM {t["client_daily"]} c
    WHERE c.day = %(day)s
    GROUP BY c.currency
  UNION ALL
    SELECT dp.currency, 0, 0, 0, 0, COUNT(*), SUM({m("dp.amount")}), 0, 0, 0, 0, 0, 0
    FROM {t["deposit"]} dp
    WHERE dp.created_at >= %(start)s AND dp.created_at < %(end)s AND dp.state IN {settled}
      AND NOT EXISTS (
        SELECT 1 FROM {t["deposit"]} earlier
        WHERE earlier.user_id = dp.user_id AND earlier.state IN {settled}
          AND (earlier.created_at < dp.created_at OR (earlier.created_at = dp.created_at AND earlier.id < dp.id))
      )
    GROUP BY dp.currency
) s
GROUP BY s.currency
"""  # noqa: S608


BROKER_DAILY = Table(
    name="broker_daily",
    title="Broker daily",
    model=BrokerDaily,
    columns=(
        "day",
        "currency",
        "deposits_count",
        "deposits_amount",
        "withdrawals_count",
        "withdrawals_amount",
        "net_deposit",
        "ftd_count",
        "ftd_amount",
        "active_traders",
        "trades",
        "lots",
        "realised_pl",
        "commission",
        "swap",
        "client_pl",
        "broker_pl",
    ),
    select=broker_daily_select,
    depends_on=("client_daily",),
    sources="primary",
)


# --- IB daily -------------------------------------------------------------------------------------------------


def _usd(d: Dialect, minor_expr: str, currency: str) -> str:
    """A `Dialect.minor` money value in USD at the reference rates, still summing exactly (rounded to the cent per
    row: the same rounding a statement in USD would show). Currencies without a reference rate give NULL."""
    from django.conf import settings

    cases = []
    for code, rate in sorted(settings.PAYMENTS_FX_TO_USD.items()):
        rate = str(Decimal(str(rate)))  # our own setting, validated as a number here, never user input
        if rate == "1":
            cases.append(f"WHEN '{code}' THEN {minor_expr}")
        elif d.exact:
            cases.append(f"WHEN '{code}' THEN ROUND({minor_expr} * {rate}, 2)")
        else:
            cases.append(f"WHEN '{code}' THEN ROUND({minor_expr} * {rate})")
    return f"CASE {currency} {' '.join(cases)} END"


def ib_daily_select(d: Dialect) -> str:
    t = _names()
    m = d.minor
    settled = _in(DEPOSIT_SETTLED)
    approved = _in(("approved", "expired"))
    commission = "cm.amount_minor / 100.0" if d.exact else "cm.amount_minor"
    return f"""
SELECT %(day)s, s.ib_id, SUM(s.clicks), SUM(s.signups), SUM(s.verified), SUM(s.ftd_n),
       {d.scaled("SUM(s.ftd_amt)")}, {d.scaled("SUM(s.net)")}, {d.scaled("SUM(s.lots)")}, {d.scaled("SUM(s.comm)")}
FROM (
    SELECT l.ib_id AS ib_id, COUNT(*) AS clicks, 0 AS signups, 0 AS verified, 0 AS ftd_n, 0 AS ftd_amt, 0 AS net,
           0 AS lots, 0 AS comm
    FROM {t["ib_click"]} c JOIN {t["ib_link"]} l ON l.id = c.link_id
    WHERE c.created_at >= %(start)s AND c.created_at < %(end)s
    GROUP BY l.ib_id
  UNION ALL
    SELECT r.ib_id, 0, COUNT(*), 0, 0, 0, 0, 0, 0
    FROM {t["ib_referral"]} r
    WHERE r.attributed_at >= %(start)s AND r.attributed_at < %(end)s
    GROUP BY r.ib_id
  UNION ALL
    SELECT r.ib_id, 0, 0, COUNT(*), 0, 0, 0, 0, 0
    FROM {t["ib_referral"]} r
    JOIN (SELECT k.user_id, MIN(k.decided_at) AS first_at FROM {t["kyc_case"]} k
          WHERE k.state IN {approved} GROUP BY k.user_id) v ON v.user_id = r.client_id
    WHERE v.first_at >= %(start)s AND v.first_at < %(end)s
    GROUP BY r.ib_id
  UNION ALL
    SELECT r.ib_id, 0, 0, 0, COUNT(*), SUM({_usd(d, m("dp.amount"), "dp.currency")}), 0, 0, 0
    FROM {t["ib_referral"]} r JOIN {t["deposit"]} dp ON dp.user_id = r.client_id
    WHERE dp.created_at >= %(start)s AND dp.created_at < %(end)s AND dp.state IN {settled}
      AND NOT EXISTS (
        SELECT 1 FROM {t["deposit"]} earlier
        WHERE earlier.user_id = dp.user_id AND earlier.state IN {settled}
          AND (earlier.created_at < dp.created_at OR (earlier.created_at = dp.created_at AND earlier.id < dp.id))
      )
    GROUP BY r.ib_id
  UNION ALL
    SELECT r.ib_id, 0, 0, 0, 0, 0, SUM({_usd(d, m("c.net_deposit"), "c.currency")}), SUM({m("c.lots")}), 0
    FROM {t["client_daily"]} c JOIN {t["ib_referral"]} r ON r.client_id = c.user_id
    WHERE c.day = %(day)s
    GROUP BY r.ib_id
  UNION ALL
    SELECT cm.ib_id, 0, 0, 0, 0, 0, 0, 0, SUM({_usd(d, commission, "cm.currency")})
    FROM {t["ib_commission"]} cm
    WHERE cm.deal_time >= %(start)s AND cm.deal_time < %(end)s AND cm.currency IN ('USD', 'EUR')
    GROUP BY cm.ib_id
) s
GROUP BY s.ib_id
"""  # noqa: S608


IB_DAILY = Table(
    name="ib_daily",
    title="IB daily",
    model=IbDaily,
    columns=(
        "day",
        "ib_id",
        "clicks",
        "signups",
        "verified",
        "ftd_count",
        "ftd_amount_usd",
        "net_deposit_usd",
        "lots",
        "commission_usd",
    ),
    select=ib_daily_select,
    depends_on=("client_daily",),
    sources="primary",
)


# --- Payments daily -------------------------------------------------------------------------------------------


def payments_daily_select(d: Dialect) -> str:
    t = _names()
    m = d.minor

    def count_if(column: str, states: tuple) -> str:
        return f"SUM(CASE WHEN {column} IN {_in(states)} THEN 1 ELSE 0 END)"

    return f"""
SELECT %(day)s, s.direction, s.provider, s.method, s.currency, s.country,
       SUM(s.n), SUM(s.n_ok), SUM(s.n_failed), SUM(s.n_cancelled), SUM(s.n_open),
       {d.scaled("SUM(s.amt)")}, {d.scaled("SUM(s.amt_ok)")}, {d.scaled("SUM(s.fee)")}
FROM (
    SELECT 'deposit' AS direction, dp.provider AS provider,
           CASE WHEN dp.provider = 'wire' THEN 'bank_wire' WHEN dp.provider = 'crypto' THEN 'crypto'
                ELSE 'card' END AS method,
           dp.currency AS currency, {COUNTRY} AS country,
           COUNT(*) AS n, {count_if("dp.state", DEPOSIT_SUCCEEDED)} AS n_ok,
           {count_if("dp.state", DEPOSIT_FAILED)} AS n_failed, 0 AS n_cancelled,
           {count_if("dp.state", DEPOSIT_OPEN)} AS n_open, SUM({m("dp.amount")}) AS amt,
           SUM(CASE WHEN dp.state IN {_in(DEPOSIT_SUCCEEDED)} THEN {m("dp.amount")} ELSE 0 END) AS amt_ok,
           SUM(CASE WHEN dp.state IN {_in(DEPOSIT_SUCCEEDED)} THEN {m("dp.fee")} ELSE 0 END) AS fee
    FROM {t["deposit"]} dp
    LEFT JOIN {t["profile"]} p ON p.user_id = dp.user_id
    WHERE dp.created_at >= %(start)s AND dp.created_at < %(end)s
    GROUP BY dp.provider, dp.currency, p.country
  UNION ALL
    SELECT 'withdrawal', CASE WHEN w.method = 'card_refund' THEN COALESCE(src.provider, 'card') ELSE 'wire' END,
           w.method, w.currency, {COUNTRY},
           COUNT(*), {count_if("w.state", WITHDRAWAL_SETTLED)}, {count_if("w.state", WITHDRAWAL_FAILED)},
           {count_if("w.state", WITHDRAWAL_CANCELLED)}, {count_if("w.state", WITHDRAWAL_OPEN)},
           SUM({m("w.amount")}),
           SUM(CASE WHEN w.state IN {_in(WITHDRAWAL_SETTLED)} THEN {m("w.amount")} ELSE 0 END), 0
    FROM {t["withdrawal"]} w
    LEFT JOIN {t["deposit"]} src ON src.id = w.source_deposit_id
    LEFT JOIN {t["profile"]} p ON p.user_id = w.user_id
    WHERE w.created_at >= %(start)s AND w.created_at < %(end)s
    GROUP BY CASE WHEN w.method = 'card_refund' THEN COALESCE(src.provider, 'card') ELSE 'wire' END,
             w.method, w.currency, p.country
) s
GROUP BY s.direction, s.provider, s.method, s.currency, s.country
"""  # noqa: S608


PAYMENTS_DAILY = Table(
    name="payments_daily",
    title="Payments daily",
    model=PaymentsDaily,
    columns=(
        "day",
        "direction",
        "provider",
        "method",
        "currency",
        "country",
        "count_total",
        "count_succeeded",
        "count_failed",
        "count_cancelled",
        "count_open",
        "amount_total",
        "amount_succeeded",
        "fees",
    ),
    select=payments_daily_select,
)


# The registry, in build order (a table comes after the tables it is built from).
TABLES: dict[str, Table] = {table.name: table for table in (CLIENT_DAILY, BROKER_DAILY, PAYMENTS_DAILY, IB_DAILY)}


def build_order(names: list[str] | None = None) -> list[Table]:
    """The tables to build, dependencies first; unknown names raise ValueError."""
    wanted = names or list(TABLES)
    unknown = [name for name in wanted if name not in TABLES]
    if unknown:
        raise ValueError(f"Unknown analytics table(s): {', '.join(unknown)}. Known: {', '.join(TABLES)}.")
    return [table for table in TABLES.values() if table.name in wanted]


def params(connection: BaseDatabaseWrapper, day: date, start: datetime, end: datetime) -> dict:
    ops = connection.ops
    return {
        "day": ops.adapt_datefield_value(day),
        "start": ops.adapt_datetimefield_value(start),
        "end": ops.adapt_datetimefield_value(end),
    }


def insert_sql(table: Table, dialect: Dialect) -> str:
    columns = ", ".join(table.columns)
    return f"INSERT INTO {dialect.table(table.model)} ({columns}) {table.select(dialect)}"
