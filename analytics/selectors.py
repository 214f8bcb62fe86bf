"""Reads of the analytics tables that the dashboards, the exports and the admin share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Case, Count, DecimalField, F, IntegerField, QuerySet, Sum, When

from analytics.builders import TABLES, Dialect
from analytics.models import BrokerDaily, ClientDaily, FillState, IbDaily, PaymentsDaily
from core.db import DecimalSum

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Filters:
    """What a dashboard or export is narrowed to. Empty strings mean "all"."""

    first: date
    last: date
    currency: str = "USD"
    country: str = ""
    provider: str = ""
    server: str = ""
    extra: dict = field(default_factory=dict)


def _money(value) -> Decimal:
    return (value or Decimal(0)).quantize(CENT)


def currencies() -> list[str]:
    """Currencies that appear in the tables (USD first), for the currency picker."""
    found = set(BrokerDaily.objects.values_list("currency", flat=True).distinct())
    found |= set(PaymentsDaily.objects.values_list("currency", flat=True).distinct())
    return sorted(found | {"USD"}, key=lambda code: (code != "USD", code))


def choices() -> dict[str, list[str]]:
    """Values the filters offer: countries and providers seen in the tables, and the trade servers."""
    from mt5bridge.models import TradeServer

    return {
        "currencies": currencies(),
        "countries": sorted(PaymentsDaily.objects.values_list("country", flat=True).distinct()),
        "providers": sorted(PaymentsDaily.objects.values_list("provider", flat=True).distinct()),
        "servers": list(TradeServer.objects.order_by("name").values_list("name", flat=True)),
    }


# --- Broker overview ------------------------------------------------------------------------------------------

SERIES_FIELDS = ("deposits_amount", "withdrawals_amount", "net_deposit", "lots", "client_pl", "broker_pl")


def daily_series(filters: Filters) -> list[dict]:
    """One row per trading day with the broker's figures in `filters.currency`.

    Without a country filter this reads BrokerDaily; with one it sums that country's ClientDaily rows (first-time
    depositors are not kept by country, so `ftd_count` is None there).
    """
    if not filters.country:
        rows = BrokerDaily.objects.filter(
            day__gte=filters.first, day__lte=filters.last, currency=filters.currency
        ).order_by("day")
        return [
            {
                "day": row.day,
                "deposits_count": row.deposits_count,
                "deposits_amount": row.deposits_amount,
                "withdrawals_count": row.withdrawals_count,
                "withdrawals_amount": row.withdrawals_amount,
                "net_deposit": row.net_deposit,
                "ftd_count": row.ftd_count,
                "ftd_amount": row.ftd_amount,
                "active_traders": row.active_traders,
                "trades": row.trades,
                "lots": row.lots,
                "client_pl": row.client_pl,
                "broker_pl": row.broker_pl,
            }
            for row in rows
        ]
    rows = (
        ClientDaily.objects.filter(
            day__gte=filters.first, day__lte=filters.last, currency=filters.currency, country=filters.country
        )
        .values("day")
        .annotate(
            deposits_count_sum=Sum("deposits_count"),
            deposits_amount_sum=DecimalSum("deposits_amount"),
            withdrawals_count_sum=Sum("withdrawals_count"),
            withdrawals_amount_sum=DecimalSum("withdrawals_amount"),
            net_sum=DecimalSum("net_deposit"),
            active=Count(Case(When(trades__gt=0, then=1), output_field=IntegerField())),
            trades_sum=Sum("trades"),
            lots_sum=DecimalSum("lots"),
            pl_sum=DecimalSum("realised_pl"),
            commission_sum=DecimalSum("commission"),
            swap_sum=DecimalSum("swap"),
        )
        .order_by("day")
    )
    out = []
    for row in rows:
        client_pl = _money(row["pl_sum"]) + _money(row["commission_sum"]) + _money(row["swap_sum"])
        out.append(
            {
                "day": row["day"],
                "deposits_count": row["deposits_count_sum"],
                "deposits_amount": _money(row["deposits_amount_sum"]),
                "withdrawals_count": row["withdrawals_count_sum"],
                "withdrawals_amount": _money(row["withdrawals_amount_sum"]),
                "net_deposit": _money(row["net_sum"]),
                "ftd_count": None,
                "ftd_amount": None,
                "active_traders": row["active"],
                "trades": row["trades_sum"],
                "lots": _money(row["lots_sum"]),
                "client_pl": client_pl,
                "broker_pl": -client_pl,
            }
        )
    return out


def kpis(series: list[dict]) -> dict:
    """Totals over the series. Active traders is the busiest day's count (clients are not additive over days)."""

    def total(key: str):
        values = [row[key] for row in series]
        if any(value is None for value in values):
            return None
        return sum(values, Decimal(0) if key.endswith(("amount", "deposit", "lots", "pl")) else 0)

    return {
        "deposits_amount": total("deposits_amount"),
        "deposits_count": total("deposits_count"),
        "withdrawals_amount": total("withdrawals_amount"),
        "withdrawals_count": total("withdrawals_count"),
        "net_deposit": total("net_deposit"),
        "ftd_count": total("ftd_count"),
        "ftd_amount": total("ftd_amount"),
        "peak_active_traders": max((row["active_traders"] for row in series), default=0),
        "trades": total("trades"),
        "lots": total("lots"),
        "client_pl": total("client_pl"),
        "broker_pl": total("broker_pl"),
        "days": len(series),
    }


def chart_series(series: list[dict]) -> dict:
    """The series as plain JSON for Chart.js (amounts as numbers rounded to cents: display only)."""
    return {
        "labels": [row["day"].isoformat() for row in series],
        **{key: [float(row[key]) for row in series] for key in SERIES_FIELDS},
        "active_traders": [row["active_traders"] for row in series],
    }


# --- Payments -------------------------------------------------------------------------------------------------


def payments_queryset(filters: Filters) -> QuerySet[PaymentsDaily]:
    rows = PaymentsDaily.objects.filter(day__gte=filters.first, day__lte=filters.last, currency=filters.currency)
    if filters.country:
        rows = rows.filter(country=filters.country)
    if filters.provider:
        rows = rows.filter(provider=filters.provider)
    return rows


def payments_breakdown(filters: Filters, *, by: str) -> list[dict]:
    """Deposits and withdrawals summed by `by` (provider, method, country), with success rates."""
    if by not in ("provider", "method", "country"):
        raise ValueError(f"Cannot break payments down by {by!r}.")
    rows = (
        payments_queryset(filters)
        .values("direction", by)
        .annotate(
            total=Sum("count_total"),
            succeeded=Sum("count_succeeded"),
            failed=Sum("count_failed"),
            cancelled=Sum("count_cancelled"),
            open=Sum("count_open"),
            amount=DecimalSum("amount_total"),
            amount_ok=DecimalSum("amount_succeeded"),
            fees=DecimalSum("fees"),
        )
        .order_by("direction", by)
    )
    out = []
    for row in rows:
        decided = row["succeeded"] + row["failed"]
        rate = (Decimal(row["succeeded"]) * 100 / decided).quantize(Decimal("0.1")) if decided else None
        out.append({**row, "key": row[by], "amount": _money(row["amount"]), "amount_ok": _money(row["amount_ok"]),
                    "success_rate": rate})  # fmt: skip
    return out


# --- Clients --------------------------------------------------------------------------------------------------


def top_clients(filters: Filters, *, order: str = "net_deposit", limit: int = 25) -> list[dict]:
    """Clients over the range in one currency, ranked in the database by net deposit, lots or P/L; one query."""
    orderings = {"net_deposit": "-net", "lots": "-lots_sum", "client_pl": "-pl_total", "broker_pl": "pl_total"}
    if order not in orderings:
        raise ValueError(f"Cannot rank clients by {order!r}.")
    rows = ClientDaily.objects.filter(day__gte=filters.first, day__lte=filters.last, currency=filters.currency)
    if filters.country:
        rows = rows.filter(country=filters.country)
    money = DecimalField(max_digits=20, decimal_places=2)
    grouped = (
        rows.values("user_id", "user__email", "country")
        .annotate(
            deposits=DecimalSum("deposits_amount"),
            withdrawals=DecimalSum("withdrawals_amount"),
            net=DecimalSum("net_deposit"),
            trades_sum=Sum("trades"),
            lots_sum=DecimalSum("lots"),
            pl_total=DecimalSum(F("realised_pl") + F("commission") + F("swap"), output_field=money),
        )
        .order_by(orderings[order], "user_id")[:limit]
    )
    return [
        {
            "user_id": row["user_id"],
            "email": row["user__email"],
            "country": row["country"],
            "deposits": _money(row["deposits"]),
            "withdrawals": _money(row["withdrawals"]),
            "net": _money(row["net"]),
            "trades": row["trades_sum"],
            "lots": _money(row["lots_sum"]),
            "client_pl": _money(row["pl_total"]),
            "broker_pl": -_money(row["pl_total"]),
        }
        for row in grouped
    ]


# --- Build state ----------------------------------------------------------------------------------------------


def fill_states(filters: Filters) -> QuerySet[FillState]:
    return FillState.objects.filter(day__gte=filters.first, day__lte=filters.last).order_by("-day", "table")


def coverage(filters: Filters) -> dict:
    """How many of the range's buckets are built, complete, incomplete or left STARTED, per table."""
    days = (filters.last - filters.first).days + 1
    states = list(fill_states(filters).values("table", "state", "complete"))
    out = {}
    for name, table in TABLES.items():
        mine = [s for s in states if s["table"] == name]
        done = [s for s in mine if s["state"] == FillState.State.DONE]
        out[name] = {
            "title": table.title,
            "days": days,
            "done": len(done),
            "complete": sum(1 for s in done if s["complete"]),
            "incomplete": sum(1 for s in done if not s["complete"]),
            "started": sum(1 for s in mine if s["state"] == FillState.State.STARTED),
            "missing": days - len(mine),
        }
    return out


# --- Exposure (live, from position snapshots) -----------------------------------------------------------------


def _quote_and_base(symbol: str) -> tuple[str | None, str | None]:
    """FX-style symbols name base and quote (EURUSD, XAUUSD); anything else (indices) has no known currencies."""
    core = symbol[:6]
    if len(core) == 6 and core.isalpha() and core.isupper():
        return core[:3], core[3:]
    return None, None


def exposure(*, server: str = "") -> list[dict]:
    """Net long and short lots and notional by server and symbol, from the latest position snapshots.

    Notional is lots x contract size x current price, in the symbol's quote currency; `notional_usd` is given where
    it follows from the symbol alone (quote USD, or base USD), else None. The contract size comes from the deals
    of the position; positions whose deals are not imported yet are counted in `unsized` and left out of notional.
    """
    from mt5bridge.models import Deal, PositionSnapshot, TradeServer

    d = Dialect(connection.vendor)
    p_table, s_table, d_table = (m._meta.db_table for m in (PositionSnapshot, TradeServer, Deal))
    where, sql_params = "", []
    if server:
        where, sql_params = "WHERE sv.name = %s", [server]
    sql = f"""
SELECT sv.name, sv.kind, x.symbol,
       SUM(CASE WHEN x.action = 0 THEN {d.minor("x.volume")} ELSE 0 END),
       SUM(CASE WHEN x.action = 1 THEN {d.minor("x.volume")} ELSE 0 END),
       SUM(CASE WHEN x.action = 0 THEN 1 ELSE 0 END), SUM(CASE WHEN x.action = 1 THEN 1 ELSE 0 END),
       SUM(CASE WHEN x.cs IS NULL THEN 0 WHEN x.action = 0 THEN x.volume * x.cs * x.price_current
                ELSE -(x.volume * x.cs * x.price_current) END),
       SUM(CASE WHEN x.cs IS NULL THEN 1 ELSE 0 END), MAX(x.cs),
       SUM({d.minor("x.profit")}), MIN(x.snapshot_at), MAX(x.snapshot_at)
FROM (
    SELECT p.server_id, p.symbol, p.action, p.volume, p.price_current, p.profit, p.snapshot_at,
           (SELECT dl.contract_size FROM {d_table} dl
            WHERE dl.server_id = p.server_id AND dl.login = p.login AND dl.position_id = p.position_id
              AND dl.contract_size > 0
            ORDER BY dl.ticket LIMIT 1) AS cs
    FROM {p_table} p
) x
JOIN {s_table} sv ON sv.id = x.server_id
{where}
GROUP BY sv.name, sv.kind, x.symbol
ORDER BY sv.name, x.symbol
"""  # noqa: S608 - table names are ours, the server name is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, sql_params)
        fetched = cursor.fetchall()
    out = []
    for (
        name,
        kind,
        symbol,
        long_minor,
        short_minor,
        n_long,
        n_short,
        notional,
        unsized,
        size,
        pl_minor,
        old,
        new,
    ) in fetched:
        scale = (lambda v: Decimal(v or 0)) if d.exact else (lambda v: Decimal(int(v or 0)).scaleb(-2))
        long_lots, short_lots = scale(long_minor).quantize(CENT), scale(short_minor).quantize(CENT)
        net_lots = long_lots - short_lots
        notional_quote = Decimal(str(notional or 0)).quantize(CENT)
        base, quote = _quote_and_base(symbol)
        if quote == "USD":
            notional_usd = notional_quote
        elif base == "USD" and size is not None:
            notional_usd = (net_lots * Decimal(str(size))).quantize(CENT)
        else:
            notional_usd = None
        out.append(
            {
                "server": name,
                "kind": kind,
                "symbol": symbol,
                "long_lots": long_lots,
                "short_lots": short_lots,
                "net_lots": net_lots,
                "long_positions": n_long,
                "short_positions": n_short,
                "notional": notional_quote,
                "quote": quote or "price units",
                "notional_usd": notional_usd,
                "unsized": unsized,
                "floating_pl": scale(pl_minor).quantize(CENT),
                "oldest": _aware(old),
                "newest": _aware(new),
            }
        )
    return out


def _aware(value) -> datetime | None:
    """Raw cursors hand SQLite datetimes back as text; the ORM's converter would have made them aware UTC."""
    from datetime import UTC

    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


# --- Exports --------------------------------------------------------------------------------------------------

EXPORTS = {
    "client_daily": "Client daily",
    "broker_daily": "Broker daily",
    "payments_daily": "Payments daily",
    "exposure": "Exposure (live)",
}


def export_rows(name: str, filters: Filters) -> tuple[list[str], Iterator[list]]:
    """Header and rows of one table narrowed by `filters`, streamed from the database (constant memory)."""
    if name == "client_daily":
        columns = [f.name for f in ClientDaily._meta.concrete_fields if f.name not in ("id", "user")]
        rows = ClientDaily.objects.filter(day__gte=filters.first, day__lte=filters.last, currency=filters.currency)
        if filters.country:
            rows = rows.filter(country=filters.country)
        values = rows.order_by("day", "user_id").values_list("user_id", "user__email", *columns)
        return ["user_id", "email", *columns], (list(row) for row in values.iterator(chunk_size=2000))
    if name == "broker_daily":
        columns = [f.name for f in BrokerDaily._meta.concrete_fields if f.name != "id"]
        rows = BrokerDaily.objects.filter(day__gte=filters.first, day__lte=filters.last, currency=filters.currency)
        return columns, (list(row) for row in rows.order_by("day").values_list(*columns).iterator())
    if name == "payments_daily":
        columns = [f.name for f in PaymentsDaily._meta.concrete_fields if f.name != "id"]
        rows = payments_queryset(filters).order_by("day", "direction", "provider", "method", "country")

        def with_rate() -> Iterator[list]:
            for row in rows.iterator(chunk_size=2000):
                yield [getattr(row, column) for column in columns] + [row.success_rate]

        return [*columns, "success_rate_pct"], with_rate()
    if name == "exposure":
        columns = ["server", "kind", "symbol", "long_lots", "short_lots", "net_lots", "long_positions",
                   "short_positions", "notional", "quote", "notional_usd", "unsized", "floating_pl", "oldest",
                   "newest"]  # fmt: skip
        return columns, ([row[c] for c in columns] for row in exposure(server=filters.server))
    raise ValueError(f"Unknown export {name!r}.")


def ib_performance(filters: Filters, *, limit: int = 50) -> list[dict]:
    """IBs over the range, ranked by commission earned: funnel, own clients' money and lots. Two queries."""
    from ib.models import IntroducingBroker

    rows = list(
        IbDaily.objects.filter(day__gte=filters.first, day__lte=filters.last)
        .values("ib_id")
        .annotate(
            clicks_sum=Sum("clicks"),
            signups_sum=Sum("signups"),
            verified_sum=Sum("verified"),
            ftd_sum=Sum("ftd_count"),
            ftd_amount=DecimalSum("ftd_amount_usd"),
            net=DecimalSum("net_deposit_usd"),
            lots_sum=DecimalSum("lots"),
            earned=DecimalSum("commission_usd"),
        )
        .order_by("-earned", "ib_id")[:limit]
    )
    ibs = IntroducingBroker.objects.select_related("user", "parent").in_bulk([row["ib_id"] for row in rows])
    out = []
    for row in rows:
        ib = ibs.get(row["ib_id"])
        out.append(
            {
                "ib_id": row["ib_id"],
                "email": ib.user.email if ib else f"IB #{row['ib_id']}",
                "code": ib.referral_code if ib else "",
                "parent": ib.parent.referral_code if ib and ib.parent_id else "",
                "clicks": row["clicks_sum"],
                "signups": row["signups_sum"],
                "verified": row["verified_sum"],
                "ftds": row["ftd_sum"],
                "ftd_amount": _money(row["ftd_amount"]),
                "net": _money(row["net"]),
                "lots": _money(row["lots_sum"]),
                "earned": _money(row["earned"]),
            }
        )
    return out


def ib_series(filters: Filters) -> dict:
    """Per day over the range: commissions earned by all IBs, their clients' net deposit and signups. One query."""
    rows = {
        row["day"]: row
        for row in IbDaily.objects.filter(day__gte=filters.first, day__lte=filters.last)
        .values("day")
        .annotate(earned=DecimalSum("commission_usd"), net=DecimalSum("net_deposit_usd"), signups_sum=Sum("signups"))
    }
    labels, earned, net, signups = [], [], [], []
    day = filters.first
    while day <= filters.last:
        row = rows.get(day, {})
        labels.append(day.isoformat())
        earned.append(float(row.get("earned") or 0))
        net.append(float(row.get("net") or 0))
        signups.append(row.get("signups_sum") or 0)
        day += timedelta(days=1)
    return {"labels": labels, "earned": earned, "net": net, "signups": signups}
