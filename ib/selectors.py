"""Reads of the IB program that more than one door needs: the hierarchy (recursive CTEs), the dashboard's figures,
the statement. Every read that an IB's page makes is scoped to that IB's own downline here, not in the views."""

# ruff: noqa: S608 - the SQL here interpolates only constants of this module; values go as %s parameters.
# ruff: noqa: RUF001 - statements use the multiplication and minus signs their readers expect.
from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from core.db import DecimalSum
from core.money import currency_exponent
from ib.models import ClientReferral, Commission, CommissionPayout, IntroducingBroker, ReferralClick, ReferralLink

# Deeper than any real network; only there so a corrupted table can never make a CTE run forever.
MAX_DEPTH = 1000

_DOWNLINE_SQL = f"""
WITH RECURSIVE down(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM ib_introducingbroker WHERE id = %s
    UNION ALL
    SELECT c.id, c.parent_id, d.depth + 1 FROM ib_introducingbroker c JOIN down d ON c.parent_id = d.id
    WHERE d.depth < {MAX_DEPTH}
)
SELECT id, parent_id, depth FROM down ORDER BY depth, id
"""

_ANCESTORS_SQL = f"""
WITH RECURSIVE up(id, parent_id, level) AS (
    SELECT id, parent_id, 0 FROM ib_introducingbroker WHERE id = %s
    UNION ALL
    SELECT p.id, p.parent_id, u.level + 1 FROM ib_introducingbroker p JOIN up u ON p.id = u.parent_id
    WHERE u.level < {MAX_DEPTH}
)
SELECT id, level FROM up ORDER BY level
"""


def ib_downline(*, ib_id: int) -> list[tuple[int, int | None, int]]:
    """(id, parent_id, depth) of the IB and every IB below it, depth 0 being the IB itself. One query."""
    with connection.cursor() as cursor:
        cursor.execute(_DOWNLINE_SQL, [ib_id])
        return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


def ib_downline_ids(*, ib_id: int, include_self: bool = True) -> list[int]:
    return [row[0] for row in ib_downline(ib_id=ib_id) if include_self or row[0] != ib_id]


def ib_ancestors(*, ib_id: int) -> list[tuple[int, int]]:
    """(id, level) from the IB itself (level 0) up to the top of its tree. One query."""
    with connection.cursor() as cursor:
        cursor.execute(_ANCESTORS_SQL, [ib_id])
        return [(row[0], row[1]) for row in cursor.fetchall()]


def ib_ancestor_ids(*, ib_id: int) -> set[int]:
    """The IB and all its uplines."""
    return {row[0] for row in ib_ancestors(ib_id=ib_id)}


def ib_for_user(*, user) -> IntroducingBroker | None:
    if not user.is_authenticated:
        return None
    return IntroducingBroker.objects.select_related("plan", "parent").filter(user=user).first()


def mask_email(email: str) -> str:
    """`alice.smith@example.com` -> `al***@e***.com`: enough for the IB to recognise a client, not to contact."""
    local, _, domain = email.partition("@")
    host, dot, tld = domain.rpartition(".")
    return f"{local[:2]}***@{(host or tld)[:1]}***{dot}{tld if host else ''}"


def display_email(email: str, *, masked: bool) -> str:
    return mask_email(email) if masked else email


def money_from_minor(minor: int | None, currency: str) -> Decimal:
    return Decimal(minor or 0).scaleb(-currency_exponent(currency))


# --- The dashboard ------------------------------------------------------------------------------------------


@dataclass
class Funnel:
    clicks: int
    signups: int
    verified: int
    funded: int

    def steps(self) -> list[tuple[str, int, int | None]]:
        """(label, count, percent of the previous step)."""
        out, previous = [], None
        for label, value in (
            ("Link clicks", self.clicks),
            ("Sign-ups", self.signups),
            ("Verified", self.verified),
            ("First deposit", self.funded),
        ):
            percent = None if previous is None else (round(100 * value / previous) if previous else 0)
            out.append((label, value, percent))
            previous = value
        return out


def ib_funnel(*, ib: IntroducingBroker) -> Funnel:
    """Clicks on the IB's links -> its direct clients -> verified (identity or better) -> with a first deposit."""
    from payments.models import Deposit

    clients = ClientReferral.objects.filter(ib=ib)
    return Funnel(
        clicks=ReferralClick.objects.filter(link__ib=ib).count(),
        signups=clients.count(),
        verified=clients.filter(client__compliance__level__rank__gte=1).count(),
        funded=clients.filter(
            client__in=Deposit.objects.filter(state__in=["credited", "completed"]).values("user_id")
        ).count(),
    )


def ib_links(*, ib: IntroducingBroker) -> QuerySet[ReferralLink]:
    return ReferralLink.objects.filter(ib=ib).annotate(click_count=Count("clicks")).order_by("created_at")


@dataclass
class Totals:
    currency: str
    lots: Decimal = Decimal("0")
    earned: Decimal = Decimal("0")
    unpaid: Decimal = Decimal("0")
    paid: Decimal = Decimal("0")


# Lots that count towards an IB's commissionable volume: a position held below the minimum time is explained by a
# zero row at the client's own IB only (uplines whose minimum it also misses have no row), so it counts at no level.
HELD_TOO_SHORT = Q(status=Commission.Status.SHORT_HOLD)
COMMISSIONABLE_DEALS = Q(batch__isnull=False) & ~HELD_TOO_SHORT


def ib_totals(*, ib: IntroducingBroker, since=None) -> list[Totals]:
    """Per currency: commissionable lots (since), earned (since), unpaid and paid (all time). Two queries."""
    rows = (
        Commission.objects.filter(ib=ib)
        .values("currency")
        .annotate(
            unpaid=Sum("amount_minor", filter=Q(payout__isnull=True)),
            paid=Sum("amount_minor", filter=Q(payout__isnull=False)),
        )
    )
    recent = Commission.objects.filter(ib=ib)
    if since is not None:
        recent = recent.filter(deal_time__gte=since)
    recent_rows = {
        row["currency"]: row
        for row in recent.values("currency").annotate(
            lots=DecimalSum("lots", filter=~HELD_TOO_SHORT), earned=Sum("amount_minor")
        )
    }
    out = []
    for row in rows:
        currency = row["currency"]
        extra = recent_rows.get(currency, {})
        out.append(
            Totals(
                currency=currency,
                lots=extra.get("lots") or Decimal("0"),
                earned=money_from_minor(extra.get("earned"), currency),
                unpaid=money_from_minor(row["unpaid"], currency),
                paid=money_from_minor(row["paid"], currency),
            )
        )
    return out


def ib_daily_series(*, ib: IntroducingBroker, days: int = 30) -> dict:
    """Lots and commission per day over the last `days` days (one currency per series), for the charts."""
    start = (timezone.now() - timedelta(days=days - 1)).date()
    rows = (
        Commission.objects.filter(ib=ib, deal_time__date__gte=start - timedelta(days=1))
        .annotate(on=Coalesce("day", TruncDate("deal_time")))
        .values("on", "currency")
        .annotate(lots=DecimalSum("lots", filter=COMMISSIONABLE_DEALS), amount=Sum("amount_minor"))
        .order_by("day")
    )
    labels = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    lots = dict.fromkeys(labels, Decimal("0"))
    amounts: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(labels, Decimal("0")))
    for row in rows:
        day = row["on"].isoformat()
        if day not in lots:
            continue
        lots[day] += row["lots"] or Decimal("0")
        amounts[row["currency"]][day] += money_from_minor(row["amount"], row["currency"])
    return {
        "labels": labels,
        "lots": [str(lots[d]) for d in labels],
        "commission": {cur: [str(series[d]) for d in labels] for cur, series in sorted(amounts.items())},
    }


@dataclass
class ClientRow:
    client_id: int
    email: str
    source: str
    attributed_at: object
    lots: Decimal
    earned: dict[str, Decimal]


def ib_direct_clients(*, ib: IntroducingBroker, limit: int = 200) -> list[ClientRow]:
    """The IB's own clients with the volume and commission it earned from each (their lines at level 0, derived
    from the stored rows). Two queries."""
    from ib.services.engine import lines_sql

    referrals = list(ClientReferral.objects.filter(ib=ib).select_related("client").order_by("-attributed_at")[:limit])
    ids = [r.client_id for r in referrals]
    figures: dict[int, dict] = defaultdict(lambda: {"lots": Decimal("0"), "earned": {}})
    if ids:
        marks = ", ".join(["%s"] * len(ids))
        sql = lines_sql(rows_where="c.ib_id = %s AND c.level = 0", lines_where=f"AND s.client_id IN ({marks})")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT l.client_id, c.currency, SUM(l.volume), SUM(l.amount) FROM ({sql}) l "
                "JOIN ib_commission c ON c.id = l.row_id GROUP BY l.client_id, c.currency",
                [ib.pk, *ids],
            )
            for client_id, currency, lots, amount in cursor.fetchall():
                entry = figures[client_id]
                entry["lots"] += Decimal(str(lots or 0)).quantize(Decimal("0.01"))
                entry["earned"][currency] = money_from_minor(amount, currency)
    return [
        ClientRow(
            client_id=r.client_id,
            email=display_email(r.client.email, masked=ib.mask_client_emails),
            source=r.get_source_display(),
            attributed_at=r.attributed_at,
            lots=figures[r.client_id]["lots"],
            earned=figures[r.client_id]["earned"],
        )
        for r in referrals
    ]


@dataclass
class TreeNode:
    ib_id: int
    code: str
    email: str
    state: str
    depth: int
    clients: int = 0
    lots: Decimal = Decimal("0")
    earned: dict[str, Decimal] = field(default_factory=dict)
    children: list[TreeNode] = field(default_factory=list)


def ib_tree(*, ib: IntroducingBroker) -> TreeNode:
    """The IB and its sub-IBs as a tree, each with its client count and what the viewing IB earned through it.
    Sub-IBs' emails are always masked: they are the viewing IB's partners, not its clients. Four queries."""
    rows = ib_downline(ib_id=ib.pk)
    ids = [row[0] for row in rows]
    ibs = {x.pk: x for x in IntroducingBroker.objects.filter(pk__in=ids).select_related("user")}
    clients = dict(
        ClientReferral.objects.filter(ib_id__in=ids).values("ib_id").annotate(n=Count("id")).values_list("ib_id", "n")
    )
    through: dict[int, dict] = defaultdict(lambda: {"lots": Decimal("0"), "earned": {}})
    for row in (
        Commission.objects.filter(ib=ib, direct_ib_id__in=ids)
        .values("direct_ib_id", "currency")
        .annotate(lots=DecimalSum("lots", filter=COMMISSIONABLE_DEALS), amount=Sum("amount_minor"))
    ):
        entry = through[row["direct_ib_id"]]
        entry["lots"] += row["lots"] or Decimal("0")
        entry["earned"][row["currency"]] = money_from_minor(row["amount"], row["currency"])
    nodes: dict[int, TreeNode] = {}
    for ib_id, parent_id, depth in rows:
        other = ibs[ib_id]
        node = TreeNode(
            ib_id=ib_id,
            code=other.referral_code,
            email=other.user.email if ib_id == ib.pk else mask_email(other.user.email),
            state=other.get_state_display(),
            depth=depth,
            clients=clients.get(ib_id, 0),
            lots=through[ib_id]["lots"],
            earned=through[ib_id]["earned"],
        )
        nodes[ib_id] = node
        if depth > 0 and parent_id in nodes:
            nodes[parent_id].children.append(node)
    return nodes[ib.pk]


def ib_sub_ib(*, ib: IntroducingBroker, sub_ib_id: int) -> IntroducingBroker | None:
    """A sub-IB of `ib` (anywhere below it), or None when it is not in the IB's downline."""
    if sub_ib_id == ib.pk or sub_ib_id not in ib_downline_ids(ib_id=ib.pk):
        return None
    return IntroducingBroker.objects.select_related("user").get(pk=sub_ib_id)


class CommissionLine:
    """One line of the statement: a deal's commission for one IB at one level (derived from its stored row), or a
    CPA or adjustment row as it is. Reads like a `Commission` for `explain`, the templates and the CSV."""

    def __init__(self, row: Commission, **deal) -> None:
        self.row = row
        self.deal_id = deal.get("deal_id")
        self.deal_time = deal.get("deal_time", row.deal_time)
        self.symbol = deal.get("symbol", row.symbol)
        self.lots = deal.get("lots", row.lots)
        self.base = deal.get("base", row.base)
        self.open_deal_id = deal.get("open_deal_id")
        self.hold_seconds = deal.get("hold_seconds")
        self.status = deal.get("status", row.status)
        self.amount_minor = deal.get("amount_minor", row.amount_minor)
        self.client_id = deal.get("client_id", row.client_id)
        # A deal line brings its client; a CPA row names its own (deal-based rows have none: no query then).
        self.client = deal.get("client", row.client if row.client_id else None)

    def __getattr__(self, name: str):
        return getattr(self.row, name)  # the row's IB, level, kind, rule, rates, currency, payout, note

    @property
    def amount(self) -> Decimal:
        return money_from_minor(self.amount_minor, self.currency)

    def get_status_display(self) -> str:
        return Commission.Status(self.status).label

    def get_kind_display(self) -> str:
        return self.row.get_kind_display()


def _lines(sql: str, params: list, rows: dict[int, Commission] | None = None) -> list[CommissionLine]:
    """Run a lines query (columns of `ib.services.engine.lines_sql`) and dress its lines with their rows."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return _dress(found, rows)


def _dress(found: list, rows: dict[int, Commission] | None = None) -> list[CommissionLine]:
    """Lines of a lines query, each with its stored row (read in one query) and its client."""
    from crm.models import User

    rows = dict(rows or {})
    missing = {f[0] for f in found} - set(rows)
    if missing:
        rows |= Commission.objects.select_related("rule", "rule__symbol_group", "direct_ib").in_bulk(missing)
    clients = User.objects.in_bulk({f[8] for f in found if f[8]})
    out = []
    for row_id, deal_id, time, symbol, volume, open_id, open_time, comm_c, client_id, status, amount in found:
        row = rows[row_id]
        time = _aware(time)
        open_time = _aware(open_time)
        out.append(
            CommissionLine(
                row,
                deal_id=deal_id,
                deal_time=time,
                symbol=symbol,
                lots=Decimal(str(volume)).quantize(Decimal("0.01")),
                base=(Decimal(comm_c) / 100 if row.kind == Commission.Kind.COMMISSION_SHARE else row.base),
                open_deal_id=open_id,
                hold_seconds=None if open_time is None else int((time - open_time).total_seconds() // 1),
                status=status,
                amount_minor=int(amount),
                client_id=client_id,
                client=clients.get(client_id),
            )
        )
    return out


def _aware(value):
    """A timestamp read by raw SQL (SQLite: naive, or text when it comes out of an aggregate) as aware UTC."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def commission_lines(*, row: Commission, limit: int | None = None) -> list[CommissionLine]:
    """The per-deal lines of one stored row, oldest first (a CPA or adjustment row is its own single line)."""
    from ib.services.engine import lines_sql

    if row.batch_id is None:
        return [CommissionLine(row)]
    sql = lines_sql(rows_where="c.id = %s")
    sql = f"SELECT * FROM ({sql}) l ORDER BY l.time, l.deal_id" + (f" LIMIT {int(limit)}" if limit else "")
    return _lines(sql, [row.pk], {row.pk: row})


class Statement:
    """The IB's statement lines, newest first, filtered by month (YYYY-MM, UTC) and one of its clients: deal lines
    derived from the stored rows, plus CPA and adjustment rows. Sliceable and countable (a Paginator's
    object_list); `iterator()` streams it for the CSV export."""

    def __init__(self, *, ib: IntroducingBroker, month: str | None = None, client_id: int | None = None) -> None:
        from ib.services.engine import lines_sql

        rows_where, lines_where = ["c.ib_id = %s"], []
        rows_params, lines_params, other = [ib.pk], [], Q(ib=ib, batch__isnull=True)
        if month:
            year, mon = (int(part) for part in month.split("-"))
            start = datetime(year, mon, 1, tzinfo=UTC)
            end = datetime(year + (mon == 12), 1 if mon == 12 else mon + 1, 1, tzinfo=UTC)
            rows_where.append("c.last_deal_time >= %s AND c.deal_time < %s")
            lines_where.append("AND d.time >= %s AND d.time < %s")
            stamps = [connection.ops.adapt_datetimefield_value(t) for t in (start, end)]
            rows_params += stamps
            lines_params += stamps
            other &= Q(deal_time__gte=start, deal_time__lt=end)
        if client_id:
            lines_where.append("AND s.client_id = %s")
            lines_params.append(client_id)
            other &= Q(client_id=client_id)
        self.sql = lines_sql(rows_where=" AND ".join(rows_where), lines_where=" ".join(lines_where))
        self.params = rows_params + lines_params
        self.others = Commission.objects.filter(other).select_related("rule", "direct_ib", "client")
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT COUNT(*) FROM ({self.sql}) l", self.params)
                self._count = cursor.fetchone()[0] + self.others.count()
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step:
            raise TypeError("A statement is read in slices.")
        start, stop = key.start or 0, key.stop
        if stop is None:
            stop = self.count()
        # Newest first: the deal lines and the other rows merged by time; each side read up to `stop`.
        sql = f"SELECT * FROM ({self.sql}) l ORDER BY l.time DESC, l.deal_id DESC LIMIT {int(stop)}"
        others = [CommissionLine(r) for r in self.others.order_by("-deal_time", "-id")[:stop]]
        merged = sorted(_lines(sql, self.params) + others, key=_newest_first)
        return merged[start:stop]

    def iterator(self, chunk_size: int = 2000):
        """Every line, newest first, for the CSV: one ordered query read `chunk_size` lines at a time, merged with
        the CPA and adjustment rows."""
        others = (CommissionLine(r) for r in self.others.order_by("-deal_time", "-id").iterator(chunk_size))
        yield from heapq.merge(self._deal_lines(chunk_size), others, key=_newest_first)

    def _deal_lines(self, chunk_size: int):
        sql = f"SELECT * FROM ({self.sql}) l ORDER BY l.time DESC, l.deal_id DESC"
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, self.params)
            while chunk := cursor.fetchmany(chunk_size):
                yield from _dress(chunk)


def _newest_first(line: CommissionLine) -> tuple:
    stamp = line.deal_time.timestamp() if line.deal_time else 0.0
    return (-stamp, -(line.deal_id or 0), -line.row.pk)


def ib_statement(*, ib: IntroducingBroker, month: str | None = None, client_id: int | None = None) -> Statement:
    """The IB's own commission lines, newest first; filtered by month (YYYY-MM) and one of its clients."""
    return Statement(ib=ib, month=month, client_id=client_id)


def ib_statement_months(*, ib: IntroducingBroker) -> list[str]:
    dates = Commission.objects.filter(ib=ib).dates("deal_time", "month", order="DESC")
    return [d.strftime("%Y-%m") for d in dates]


def ib_payouts(*, ib: IntroducingBroker) -> QuerySet[CommissionPayout]:
    return CommissionPayout.objects.filter(ib=ib).order_by("-created_at")


def client_label(row: Commission, *, viewer: IntroducingBroker) -> str:
    """How a statement row names the client: masked when it is not the viewer's own client or when configured."""
    if row.client_id is None:
        return ""
    own = row.level == 0
    return display_email(row.client.email, masked=(not own) or viewer.mask_client_emails)


def explain(row: Commission) -> str:
    """The sentence that explains a statement row: every number it is made of."""
    amount = f"{row.amount} {row.currency}"
    if row.kind == Commission.Kind.ADJUSTMENT:
        return f"Adjustment by staff: {row.note or 'no reason recorded'} = {amount}."
    where = f"level {row.level} (client of {row.direct_ib.referral_code})" if row.level else "your own client"
    rate = _figure(row.rate)
    if row.best_below is not None:
        rate = f"{_figure(row.rule_rate)} − {_figure(row.best_below)} (best rate below) = {_figure(row.rate)}"
    if row.kind == Commission.Kind.CPA:
        window = f" within {row.rule.cpa_within_days} days" if row.rule_id else ""
        return (
            f"CPA for a qualified first deposit of {_figure(row.base)} {row.currency} with {row.lots} lots "
            f"traded{window}, {where}: {rate} {row.currency} = {amount}."
        )
    group = row.rule.symbol_group.name if row.rule_id and row.rule.symbol_group_id else "?"
    if isinstance(row, Commission):
        return _explain_row(row, where=where, rate=rate, group=group)
    hold = "hold time unknown (opening deal not imported)"
    if row.hold_seconds is not None:
        hold = f"held {_duration(row.hold_seconds)}"
        if row.open_deal_id:
            hold += f" (opened by deal #{row.open_deal_id})"
    if row.kind == Commission.Kind.REBATE_PER_LOT:
        formula = f"{row.lots} lots × {rate} {row.currency}/lot"
    elif row.kind == Commission.Kind.SPREAD_SHARE:
        formula = f"{row.lots} lots × {_figure(row.base)} markup/lot × {rate} share"
    else:
        formula = f"broker commission on the round turn {_figure(row.base)} {row.currency} × {rate} share"
    head = f"Deal #{row.deal_id} {row.symbol} ({group}), {hold}, {where}: "
    if row.status == Commission.Status.SHORT_HOLD:
        return head + f"below the plan's minimum hold of {_duration(row.min_hold_seconds)}, so 0 {row.currency}."
    if row.status == Commission.Status.CURRENCY:
        return head + f"the account's currency is not the plan's ({row.currency}), so 0."
    return head + f"{formula} = {amount}."


def _explain_row(row: Commission, *, where: str, rate: str, group: str) -> str:
    """A stored row sums its deals' lines: say what it holds (the lines themselves explain each deal)."""
    deals = f"{row.deals} deal{'s' if row.deals != 1 else ''}"
    head = f"{deals} in {row.symbol} ({group}) on {row.day:%d %b %Y}, {where}: " if row.day else f"{deals}, {where}: "
    if row.status == Commission.Status.SHORT_HOLD:
        return head + f"held below the plan's minimum of {_duration(row.min_hold_seconds)}, so 0 {row.currency}."
    if row.status == Commission.Status.CURRENCY:
        return head + f"the accounts' currency is not the plan's ({row.currency}), so 0."
    if row.kind == Commission.Kind.REBATE_PER_LOT:
        formula = f"{row.lots} lots at {rate} {row.currency}/lot"
    elif row.kind == Commission.Kind.SPREAD_SHARE:
        formula = f"{row.lots} lots × {_figure(row.base)} markup/lot × {rate} share"
    else:
        formula = f"broker commissions {_figure(row.base)} {row.currency} × {rate} share"
    return head + f"{formula}, each deal rounded to the cent = {row.amount} {row.currency}."


def _figure(value: Decimal | None) -> str:
    """A rate or base as people write it: 7.35 not 7.3500, 12.3456 kept whole, at least two decimals."""
    if value is None:
        return "?"
    value = Decimal(value)
    if value == value.quantize(Decimal("0.01")):
        return f"{value.quantize(Decimal('0.01'))}"
    return f"{value.normalize():f}"


def _duration(seconds: int) -> str:
    """59 s, 12 min 34 s, 30 min, 2 h 5 min, 3 d 4 h."""
    if seconds < 120:
        return f"{seconds} s"
    for unit, size, small, small_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if seconds >= size * (2 if unit == "min" else 1):
            rest = seconds % size // small_size
            return f"{seconds // size} {unit}" + (f" {rest} {small}" if rest else "")
    return f"{seconds} s"
