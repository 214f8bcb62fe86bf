"""Rebuild the analytics tables for a range of trading days, with a progress bar."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from analytics.builders import TABLES
from analytics.services import analytics_backfill
from core.errors import ApplicationError


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (use YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Rebuild every analytics table (or --table ...) for the trading days FROM to TO, both included."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="first", required=True, help="First trading day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="last", required=True, help="Last trading day, YYYY-MM-DD (not after today).")
        parser.add_argument(
            "--table", dest="tables", action="append", choices=list(TABLES), help="Only this table (repeatable)."
        )

    def handle(self, *args, **options) -> None:
        first, last = _day(options["first"]), _day(options["last"])
        total = max((last - first).days + 1, 0)
        bar = tqdm(
            total=total, unit="day", desc="analytics backfill", file=self.stderr, disable=options["verbosity"] == 0
        )
        with bar:

            def advance(day: date) -> None:
                bar.set_postfix_str(day.isoformat())
                bar.update(1)

            try:
                states = analytics_backfill(first=first, last=last, tables=options["tables"], progress=advance)
            except ApplicationError as error:
                raise CommandError(error.message) from None
        incomplete = sorted({state.day.isoformat() for state in states if not state.complete})
        rows = sum(state.rows for state in states)
        self.stdout.write(f"Built {len(states)} buckets ({rows} rows) for {total} trading days.")
        if incomplete:
            shown = ", ".join(incomplete[:10]) + (" ..." if len(incomplete) > 10 else "")
            self.stdout.write(self.style.WARNING(f"Incomplete (source data missing): {shown}"))
