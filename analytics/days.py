"""The broker's trading day: a calendar day in `settings.BROKER_TIME_ZONE` (EET/EEST by default, as MT5 servers keep).

Builders never compute days in SQL: a day becomes two UTC instants here, so every query is a plain range scan on an
indexed time column and behaves the same on SQLite and PostgreSQL, across daylight-saving changes too (a trading day
is 23 or 25 hours long twice a year).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def broker_zone() -> ZoneInfo:
    return ZoneInfo(settings.BROKER_TIME_ZONE)


def day_window(day: date) -> tuple[datetime, datetime]:
    """The trading day as [start, end) in UTC."""
    zone = broker_zone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def trading_day(moment: datetime) -> date:
    """The trading day an aware moment belongs to (23:30 UTC on the 5th is the 6th in Athens)."""
    if moment.utcoffset() is None:
        raise ValueError(f"{moment!r} is naive; trading days are computed from aware moments only.")
    return moment.astimezone(broker_zone()).date()


def broker_today(now: datetime | None = None) -> date:
    return trading_day(now or timezone.now())


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
