"""Celery doors of analytics (queue `analytics`, routed by the name prefix). Thin: they call services."""

from __future__ import annotations

from celery import shared_task

from core.tasks import RETRYING


@shared_task(name="analytics.nightly", **RETRYING, time_limit=3 * 3600, soft_time_limit=3 * 3600 - 300)
def nightly() -> dict:
    """Rebuild the last trading days' buckets (and any a dead process left STARTED), then the nightly AML run."""
    from analytics.services import analytics_nightly

    return analytics_nightly()


@shared_task(name="analytics.account_day_end_capture", **RETRYING, time_limit=300, expires=290)
def account_day_end_capture() -> int:
    from analytics.services import account_day_end_capture as capture

    return capture()


@shared_task(name="analytics.day_build", **RETRYING, time_limit=3600)
def day_build(day: str, tables: list[str] | None = None) -> int:
    """Rebuild one day on demand (the admin's "Rebuild" action enqueues it after commit)."""
    from datetime import date

    from analytics.services import analytics_day_build

    return len(analytics_day_build(day=date.fromisoformat(day), tables=tables))
