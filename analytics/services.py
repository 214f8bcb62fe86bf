"""Building the nightly tables: one day bucket of one table per transaction, with a fill-state row around it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from analytics.builders import TABLES, Dialect, Table, build_order, insert_sql, params
from analytics.days import broker_today, day_window, days_between
from analytics.models import AccountDayEnd, FillState
from analytics.router import REPLICA
from core.errors import ApplicationError

logger = logging.getLogger(__name__)

MAX_BACKFILL_DAYS = 3660


def source_alias(table: Table) -> str:
    """Where the table's SELECT runs: the read replica when one is configured and the table reads only other apps'
    tables; the primary otherwise (and always for tables built from this build's own output)."""
    if table.sources == "replica" and REPLICA in settings.DATABASES:
        return REPLICA
    return DEFAULT_DB_ALIAS


def _check_day(day: date, *, now: datetime | None) -> None:
    if day > broker_today(now):
        raise ApplicationError(
            f"{day.isoformat()} is in the future (the broker's trading day is {broker_today(now).isoformat()}).",
            code="future_day",
        )


def _fill_started(table: Table, day: date, now: datetime) -> None:
    """Committed on its own, before the build's transaction: if the process dies mid-build, this row stays
    STARTED (the data rolls back) and the next run sees it."""
    with transaction.atomic():
        FillState.objects.update_or_create(
            table=table.name,
            day=day,
            defaults={"state": FillState.State.STARTED, "started_at": now, "finished_at": None},
        )


def _copy_rows(table: Table, sql_params: dict, source: str) -> int:
    """The bucket's rows: INSERT ... SELECT on the primary, or (reading a replica) the SELECT there and a bulk
    INSERT of its result rows here. Either way the aggregate runs in the database, never row by row in Python."""
    target = connections[DEFAULT_DB_ALIAS]
    if source == DEFAULT_DB_ALIAS and target.vendor == "postgresql":
        # PostgreSQL never plans INSERT ... SELECT in parallel, but it does CREATE TABLE AS: the aggregate runs on
        # every core into a temporary table, and the (small) result is appended to the bucket in one more statement.
        columns = ", ".join(table.columns)
        select = table.select(Dialect("postgresql"))
        create = f"CREATE TEMPORARY TABLE analytics_bucket ({columns}) ON COMMIT DROP AS {select}"
        append = f"INSERT INTO {table.model._meta.db_table} ({columns}) SELECT {columns} FROM analytics_bucket"  # noqa: S608
        with target.cursor() as cursor:
            cursor.execute(create, sql_params)
            cursor.execute(append)
            rows = max(cursor.rowcount, 0)
            cursor.execute("DROP TABLE analytics_bucket")
            return rows
    if source == DEFAULT_DB_ALIAS:
        with target.cursor() as cursor:
            cursor.execute(insert_sql(table, Dialect(target.vendor)), sql_params)
            return max(cursor.rowcount, 0)
    replica = connections[source]
    with replica.cursor() as cursor:
        cursor.execute(table.select(Dialect(replica.vendor)), sql_params)
        rows = cursor.fetchall()
    if rows:
        placeholders = ", ".join(["%s"] * len(table.columns))
        sql = f"INSERT INTO {table.model._meta.db_table} ({', '.join(table.columns)}) VALUES ({placeholders})"  # noqa: S608
        with target.cursor() as cursor:
            cursor.executemany(sql, rows)
    return len(rows)


@contextmanager
def _aggregate_memory(connection) -> Iterator[None]:
    """Room for the aggregate, for this build only. PostgreSQL: work_mem by SET LOCAL (inside the transaction), so
    the hash aggregate over a day's deals stays in memory. SQLite: a larger page cache and in-memory temporary
    b-trees for the GROUP BY sorter; PRAGMAs are per connection, so they are put back afterwards."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.ANALYTICS_WORK_MEM])
        yield
        return
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        cache_size = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA cache_size = -262144")  # KiB: 256 MB
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {cache_size}")


def analytics_bucket_build(*, table: str, day: date, now: datetime | None = None) -> FillState:
    """Rebuild one day bucket of one table: delete it and insert it again by one SQL statement, in one transaction.

    Guarantees: the bucket is replaced whole or not at all (a failure rolls back and leaves the fill state STARTED,
    which the next run redoes); two builds of the same bucket queue on the fill-state row lock; a rebuild over
    unchanged sources gives identical rows. Missing source data does not stop the build: the bucket holds what
    exists and its fill state says `complete=False` and what was missing.
    """
    now = now or timezone.now()
    spec = TABLES.get(table)
    if spec is None:
        raise ApplicationError(f"Unknown analytics table {table!r}. Known: {', '.join(TABLES)}.", code="unknown_table")
    _check_day(day, now=now)
    start, end = day_window(day)
    _dependencies_built(spec, day)  # before STARTED is recorded: a refused build leaves no stalled bucket behind
    _fill_started(spec, day, now)
    started = time.perf_counter()
    connection = connections[DEFAULT_DB_ALIAS]
    with transaction.atomic():
        state = FillState.objects.select_for_update().get(table=spec.name, day=day)
        missing: list[str] = []
        for upstream in _dependencies_built(spec, day):
            missing += [f"{TABLES[upstream.table].title}: {note}" for note in upstream.missing]
        with _aggregate_memory(connection):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {spec.model._meta.db_table} WHERE day = %s",  # noqa: S608
                    [connection.ops.adapt_datefield_value(day)],
                )
            source = source_alias(spec)
            rows = _copy_rows(spec, params(connections[source], day, start, end), source)
        missing += spec.missing(day, start, end)
        if end > now:
            missing.append(f"The trading day has not ended yet (it ends at {end:%Y-%m-%d %H:%M} UTC).")
        state.state = FillState.State.DONE
        state.finished_at = timezone.now()
        state.rows = rows
        state.duration_ms = int((time.perf_counter() - started) * 1000)
        state.complete = not missing
        state.missing = missing
        state.runs += 1
        state.save()
    return state


def _dependencies_built(spec: Table, day: date) -> list[FillState]:
    """The fill states of the tables `spec` is built from, for `day`; refuses when one is not built yet."""
    states = []
    for dependency in spec.depends_on:
        upstream = FillState.objects.filter(table=dependency, day=day).first()
        if upstream is None or upstream.state != FillState.State.DONE:
            raise ApplicationError(
                f"{spec.title} for {day.isoformat()} is built from {TABLES[dependency].title}, "
                "which is not built for that day yet.",
                code="dependency_missing",
            )
        states.append(upstream)
    return states


def analytics_day_build(*, day: date, tables: list[str] | None = None, now: datetime | None = None) -> list[FillState]:
    """Every table's bucket of one day, dependencies first. Each table is its own transaction."""
    try:
        order = build_order(tables)
    except ValueError as error:
        raise ApplicationError(str(error), code="unknown_table") from None
    return [analytics_bucket_build(table=table.name, day=day, now=now) for table in order]


def analytics_backfill(
    *,
    first: date,
    last: date,
    tables: list[str] | None = None,
    now: datetime | None = None,
    progress: Callable[[date], None] | None = None,
) -> list[FillState]:
    """Rebuild every day from `first` to `last` (both included). Refuses a reversed range or one that reaches into
    the future before anything is built. Safe to rerun: each bucket is replaced whole."""
    now = now or timezone.now()
    if first > last:
        raise ApplicationError(
            f"The range is reversed: {first.isoformat()} is after {last.isoformat()}.", code="reversed_range"
        )
    today = broker_today(now)
    if last > today:
        raise ApplicationError(
            f"The range reaches into the future: {last.isoformat()} is after today's trading day "
            f"({today.isoformat()}).",
            code="future_range",
        )
    if (last - first).days + 1 > MAX_BACKFILL_DAYS:
        raise ApplicationError(f"At most {MAX_BACKFILL_DAYS} days at a time.", code="range_too_long")
    try:
        build_order(tables)
    except ValueError as error:
        raise ApplicationError(str(error), code="unknown_table") from None
    states = []
    for day in days_between(first, last):
        states += analytics_day_build(day=day, tables=tables, now=now)
        if progress:
            progress(day)
    return states


def stalled_buckets(*, now: datetime | None = None) -> list[FillState]:
    """Fill states left STARTED longer than `ANALYTICS_STALLED_MINUTES`: builds whose process died."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ANALYTICS_STALLED_MINUTES)
    return list(FillState.objects.filter(state=FillState.State.STARTED, started_at__lt=cutoff).order_by("day"))


def analytics_nightly(*, now: datetime | None = None) -> dict:
    """The nightly job: rebuild the last `ANALYTICS_REBUILD_DAYS` trading days (late settlements are counted) and
    any bucket a dead process left STARTED, then run the look-back AML rules for the previous day. Idempotent."""
    from analytics.aml import aml_nightly_run

    now = now or timezone.now()
    yesterday = broker_today(now) - timedelta(days=1)
    days = set(days_between(yesterday - timedelta(days=settings.ANALYTICS_REBUILD_DAYS - 1), yesterday))
    days |= {state.day for state in stalled_buckets(now=now)}
    built = 0
    for day in sorted(days):
        built += len(analytics_day_build(day=day, now=now))
    alerts = aml_nightly_run(day=yesterday)
    return {"day": yesterday.isoformat(), "buckets": built, "alerts": len(alerts)}


def account_day_end_capture(*, now: datetime | None = None) -> int:
    """Copy each live account's current snapshot into its trading day's day-end row, if it is newer than the one
    kept. Run every few minutes, the last capture of a day is the account's state at the day's end. One statement
    per day window (today's, and yesterday's for snapshots read just before midnight); returns rows written."""
    from mt5bridge.models import TradeServer, TradingAccount

    now = now or timezone.now()
    connection = connections[DEFAULT_DB_ALIAS]
    table = AccountDayEnd._meta.db_table
    sql = f"""
INSERT INTO {table} (day, account_id, balance, equity, snapshot_at)
SELECT %(day)s, a.id, a.balance, a.equity, a.snapshot_at
FROM {TradingAccount._meta.db_table} a
JOIN {TradeServer._meta.db_table} sv ON sv.id = a.server_id AND sv.kind = 'live'
WHERE a.snapshot_at >= %(start)s AND a.snapshot_at < %(end)s AND a.balance IS NOT NULL AND a.equity IS NOT NULL
ON CONFLICT (day, account_id) DO UPDATE
SET balance = excluded.balance, equity = excluded.equity, snapshot_at = excluded.snapshot_at
WHERE excluded.snapshot_at > {table}.snapshot_at
"""  # noqa: S608 - table names are ours, values are parameters
    today = broker_today(now)
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for day in (today - timedelta(days=1), today):
            start, end = day_window(day)
            cursor.execute(sql, params(connection, day, start, end))
            written += max(cursor.rowcount, 0)
    return written
