"""Keep the CRM's picture of MT5 current: groups, account snapshots, open positions and deals.

Every function here is safe to run twice and to interrupt: snapshots overwrite, deal import is idempotent on
(server, ticket) and moves its cursor in the same transaction as the rows it stored, so a crash resumes where the
last committed page ended.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from mt5bridge.manager_api import PAGE_SIZE, AccountState, MT5Error
from mt5bridge.models import (
    CLOSING_ENTRIES,
    TRADE_ACTIONS,
    Deal,
    PositionSnapshot,
    TradeServer,
    TradingAccount,
    TradingGroup,
)
from mt5bridge.servers import server_call, server_calls_pipelined

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 2, tzinfo=UTC)
SNAPSHOT_FIELDS = ["balance", "credit", "equity", "margin", "free_margin", "margin_level", "snapshot_at"]
# Accounts stored per UPDATE statement during a sync (8 parameters each on SQLite, whose limit is 32,766).
SNAPSHOT_WRITE_ROWS = 2000


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _group_prefix(server: TradeServer) -> str:
    return "real\\" if server.kind == TradeServer.Kind.LIVE else "demo\\"


def trade_server_sync_groups(*, server: TradeServer) -> int:
    """Mirror the server's groups that match its kind (`real\\*` on live, `demo\\*` on demo). Returns the count.

    The account type is read from the group name (`real\\pro-usd` is a Pro account); groups MT5 no longer lists are
    disabled, not deleted, because accounts still point at them.
    """
    records = [g for g in server_call(server, lambda m: m.groups()) if g.name.startswith(_group_prefix(server))]
    seen = []
    with transaction.atomic():
        for record in records:
            short = record.name.split("\\", 1)[1]
            account_type = short.split("-", 1)[0]
            if account_type not in TradingGroup.AccountType.values:
                continue
            TradingGroup.objects.update_or_create(
                server=server,
                name=record.name,
                defaults={
                    "account_type": account_type,
                    "currency": record.currency,
                    "leverages": list(record.leverages),
                    "margin_stop_out": record.margin_stop_out,
                    "commission_per_lot": record.commission_per_lot,
                    "enabled": True,
                },
            )
            seen.append(record.name)
        TradingGroup.objects.filter(server=server).exclude(name__in=seen).update(enabled=False)
    return len(seen)


def accounts_snapshot_sync(*, server: TradeServer, batch_size: int | None = None) -> int:
    """Read balance, equity and margin of every open account in batches; returns how many were updated.

    An unreachable server raises after the batches already read were stored, and accounts keep their last
    snapshot and its time, which pages show as the data's age. Batches read are stored together once they hold
    SNAPSHOT_WRITE_ROWS accounts: each statement has a fixed cost (planning, a scan, a commit), and the next batch
    is already on the wire while one is written.
    """
    size = batch_size or settings.MT5_SNAPSHOT_BATCH
    ids_by_login = dict(
        TradingAccount.objects.filter(server=server, state=TradingAccount.State.PROVISIONED).values_list("login", "pk")
    )
    calls = [lambda m, batch=logins: m.accounts_get_batch(batch) for logins in _chunks(sorted(ids_by_login), size)]
    updated = 0
    pending: list = []
    try:
        for states in server_calls_pipelined(server, calls):
            pending += states
            if len(pending) >= SNAPSHOT_WRITE_ROWS:
                updated += _write_snapshots(ids_by_login, pending)
                pending = []
    except MT5Error:
        _write_snapshots(ids_by_login, pending)  # keep what was read before the server failed
        raise
    return updated + _write_snapshots(ids_by_login, pending)


def _write_snapshots(ids_by_login: dict[int, int], states: list) -> int:
    """Store snapshots with one UPDATE statement. Returns how many accounts it covered.

    Django's bulk_update builds a CASE expression per column and row, which costs more than the MT5 calls it
    follows (measured 44x the calls' time on 2,000 accounts). PostgreSQL gets one array per column (see
    `_update_from_arrays`); SQLite (3.33+) a joined VALUES list.
    """
    rows = [(pk, s) for s in states if (pk := ids_by_login.get(s.login)) is not None]
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        _update_from_arrays(rows, timezone.now())
    else:
        _update_from_values(rows, timezone.now())
    return len(rows)


def _update_from_arrays(rows: list[tuple[int, AccountState]], now: datetime) -> None:
    """`UPDATE ... FROM unnest(ids, balances, ...)`: nine parameters whatever the batch size.

    A VALUES list of 500 rows is 4,000 parameters the driver quotes one by one and 50 kB of SQL the server parses
    and plans for every batch; an array literal per column is a few strings built here and parsed by the server's
    array input. Money goes as its exact decimal text (MT5 sends two decimals), never through float. The `id = ANY`
    filter lets the planner probe the primary key for the batch instead of hashing the whole accounts table.
    """
    table = connection.ops.quote_name(TradingAccount._meta.db_table)
    money = SNAPSHOT_FIELDS[:-1]
    ids, *columns = zip(
        *((pk, s.balance, s.credit, s.equity, s.margin, s.free_margin, s.margin_level) for pk, s in rows), strict=True
    )
    ids_array = _pg_array(ids)
    sql = (
        f"UPDATE {table} SET {', '.join(f'{c} = v.{c}' for c in money)}, snapshot_at = %s "  # noqa: S608 - names are ours
        f"FROM unnest(%s::bigint[], {', '.join(['%s::numeric[]'] * len(money))}) AS v(id, {', '.join(money)}) "
        f"WHERE {table}.id = v.id AND {table}.id = ANY(%s::bigint[])"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, ids_array, *map(_pg_array, columns), ids_array])


def _pg_array(values: Iterable) -> str:
    """A PostgreSQL array literal of numbers (ints and Decimals, whose text is exact): `{1,2,3.50}`."""
    return "{" + ",".join(map(str, values)) + "}"


def _update_from_values(rows: list[tuple[int, AccountState]], now: datetime) -> None:
    """`WITH v(...) AS (VALUES (...), ...) UPDATE ... FROM v`: one pass, bound parameters, on SQLite 3.33+."""
    now = connection.ops.adapt_datetimefield_value(now)
    table = connection.ops.quote_name(TradingAccount._meta.db_table)
    columns = ["id", *SNAPSHOT_FIELDS]
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    assignments = ", ".join(f"{c} = v.{c}" for c in SNAPSHOT_FIELDS)
    sql = (
        f"WITH v({', '.join(columns)}) AS (VALUES {placeholders}) "  # noqa: S608 - names are ours, values are params
        f"UPDATE {table} SET {assignments} FROM v WHERE {table}.id = v.id"
    )
    # MT5 sends money with two decimals already; the driver binds Decimal values as they are.
    params = [
        value
        for pk, s in rows
        for value in (pk, s.balance, s.credit, s.equity, s.margin, s.free_margin, s.margin_level, now)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def account_snapshot_refresh(*, account: TradingAccount) -> TradingAccount:
    """Read one account now (the portal's refresh button, the admin's resync action)."""
    state = server_call(account.server, lambda m: m.account_get(account.login))
    account.balance, account.credit, account.equity = state.balance, state.credit, state.equity
    account.margin, account.free_margin, account.margin_level = state.margin, state.free_margin, state.margin_level
    account.snapshot_at = timezone.now()
    TradingAccount.objects.filter(pk=account.pk).update(**{f: getattr(account, f) for f in SNAPSHOT_FIELDS})
    return account


def positions_snapshot_sync(*, server: TradeServer, batch_size: int | None = None) -> int:
    """Replace the stored open positions of the server's accounts, batch by batch. Returns positions stored."""
    size = batch_size or settings.MT5_SNAPSHOT_BATCH
    ids_by_login = dict(
        TradingAccount.objects.filter(server=server, state=TradingAccount.State.PROVISIONED).values_list("login", "pk")
    )
    stored = 0
    for logins in _chunks(sorted(ids_by_login), size):
        positions = server_call(server, lambda m, batch=logins: m.positions_get(batch))
        now = timezone.now()
        with transaction.atomic():
            PositionSnapshot.objects.filter(server=server, login__in=logins).delete()
            PositionSnapshot.objects.bulk_create(
                PositionSnapshot(
                    server=server,
                    position_id=p.position_id,
                    login=p.login,
                    account_id=ids_by_login.get(p.login),
                    symbol=p.symbol,
                    action=p.action,
                    volume=p.volume,
                    price_open=p.price_open,
                    price_current=p.price_current,
                    profit=p.profit,
                    swap=p.swap,
                    opened_at=p.opened_at,
                    snapshot_at=now,
                )
                for p in positions
            )
        stored += len(positions)
    return stored


# PostgreSQL advisory lock key ("deals" in ASCII) shared by every transaction that inserts deals and taken
# exclusively, for an instant, by readers that must not pass an id whose insert has not committed yet.
DEALS_INSERT_LOCK = 0x6465616C73


def deals_insert_lock(*, shared: bool) -> None:
    """Deal ids come from a sequence: a transaction that inserts deals holds ids that commit later than higher ids of
    another import. Inserting transactions hold this lock shared; a reader (the IB commission engine) takes it
    exclusively before reading the highest deal id, so every id up to that one is committed. Transaction-scoped;
    SQLite runs one writer at a time and needs none."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [DEALS_INSERT_LOCK])


def _opening_facts(server: TradeServer, deals: list[Deal]) -> None:
    """Give each closing trade deal of `deals` its position as opened: the position's opening trade deals with a
    lower ticket, stored already or among `deals`; the first one's ticket and time, their volume and commission
    summed (tickets are MT5's order of events). One query for the positions' stored opening deals."""
    closing = [d for d in deals if d.action in TRADE_ACTIONS and d.entry in CLOSING_ENTRIES and d.position_id]
    if not closing:
        return
    positions = {d.position_id for d in closing}
    # position -> ticket -> (time, volume, commission); keyed by ticket, so a deal read twice counts once.
    opens: dict[int, dict[int, tuple]] = defaultdict(dict)
    for position_id, ticket, time, volume, commission in _stored_opening_deals(server, positions):
        opens[position_id][ticket] = (time, volume, commission)
    for d in deals:
        if d.entry == 0 and d.action in TRADE_ACTIONS and d.position_id in positions:
            opens[d.position_id][d.ticket] = (d.time, d.volume, d.commission)
    for d in closing:
        earlier = [(ticket, *facts) for ticket, facts in opens.get(d.position_id, {}).items() if ticket < d.ticket]
        if earlier:
            d.open_ticket = min(o[0] for o in earlier)
            d.open_time = min(o[1] for o in earlier)
            d.open_volume = sum((o[2] for o in earlier), Decimal(0))
            d.open_commission = sum((o[3] for o in earlier), Decimal(0))


def _stored_opening_deals(server: TradeServer, positions: set[int]) -> Iterable[tuple]:
    """(position, ticket, time, volume, commission) of the stored opening trade deals of `positions`. On PostgreSQL
    one index probe per position (`deal_position_entry`) whatever the table's statistics say: planned as a join or
    an IN list, a deal table that grew since it was last analysed was read whole for every 1,000 deals imported
    (an import of 1M deals into an empty table took twice as long)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT d.position_id, d.ticket, d.time, d.volume, d.commission "
                "FROM unnest(%s::bigint[]) AS p(position_id) CROSS JOIN LATERAL ("
                "  SELECT * FROM mt5bridge_deal d WHERE d.server_id = %s AND d.position_id = p.position_id"
                "  AND d.entry = 0 AND d.action = ANY(%s) OFFSET 0) d",  # OFFSET 0: a probe per position, never a join
                [sorted(positions), server.pk, list(TRADE_ACTIONS)],
            )
            return cursor.fetchall()
    return (
        Deal.objects.filter(server=server, position_id__in=positions, entry=0, action__in=TRADE_ACTIONS)
        .order_by()
        .values_list("position_id", "ticket", "time", "volume", "commission")
    )


def deals_store(*, server: TradeServer, deals: list[Deal]) -> None:
    """Store deals read from `server` (unsaved `Deal` objects), each closing deal with its position as opened
    (`Deal.open_*`), in the caller's transaction. A deal already stored (same ticket) is left as it is."""
    with transaction.atomic():
        deals_insert_lock(shared=True)
        _opening_facts(server, deals)
        Deal.objects.bulk_create(deals, ignore_conflicts=True, batch_size=1000)


def deals_import(*, server: TradeServer, max_pages: int | None = None, pages_per_commit: int = 10) -> int:
    """Import new deals after the server's cursor, page by page (100 a page, as MT5 serves them).

    Rows and the cursor are committed together every `pages_per_commit` pages, and rows are inserted with
    ON CONFLICT DO NOTHING on (server, ticket): a deal seen twice is stored once, and a crash loses no more than
    the uncommitted pages, which the next run reads again. Memory stays flat whatever the number of deals.
    """
    server.refresh_from_db(fields=["deal_cursor_ticket"])
    cursor = server.deal_cursor_ticket
    accounts = dict(TradingAccount.objects.filter(server=server).values_list("login", "pk"))
    imported = pages = 0
    pending: list[Deal] = []
    date_to = timezone.now() + timedelta(days=2)  # servers keep their own (often EET) clock

    def flush() -> None:
        nonlocal pending
        if not pending:
            return
        with transaction.atomic():
            deals_store(server=server, deals=pending)
            TradeServer.objects.filter(pk=server.pk).update(deal_cursor_ticket=cursor, deals_imported_at=timezone.now())
        pending = []

    while max_pages is None or pages < max_pages:
        try:
            page = server_call(
                server,
                lambda m, after=cursor: m.deals_page(
                    date_from=EPOCH, date_to=date_to, group="*", after_ticket=after, total=PAGE_SIZE
                ),
            )
        except MT5Error:
            flush()  # keep what was read; the next run resumes from here
            raise
        pages += 1
        if not page:
            break
        pending += [
            Deal(
                server=server,
                ticket=d.ticket,
                login=d.login,
                account_id=accounts.get(d.login),
                time=d.time,
                symbol=d.symbol,
                action=d.action,
                entry=d.entry,
                volume=d.volume,
                price=d.price,
                profit=d.profit,
                commission=d.commission,
                swap=d.swap,
                comment=d.comment[:64],
                position_id=d.position_id,
                contract_size=d.contract_size,
            )
            for d in page
        ]
        if page[-1].ticket <= cursor:
            flush()
            raise MT5Error("The trade server ignored the ticket cursor; stopping instead of reading the same page.")
        imported += len(page)
        cursor = page[-1].ticket
        if pages % pages_per_commit == 0:
            flush()
        if len(page) < PAGE_SIZE:
            break
    flush()
    return imported


def trade_server_ping(*, server: TradeServer) -> bool:
    """Keep the manager session alive and the health fields current. Returns whether the server answered."""
    try:
        server_call(server, lambda m: m.ping())
    except MT5Error as exc:
        logger.warning("trade server %s did not answer: %s", server.name, exc)
        return False
    return True
