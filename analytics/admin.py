"""Fill states in the back-office: what was built, what was missing, and a rebuild action (queued, after commit)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction

from analytics.models import FillState
from core.admin import ReadOnlyAdmin


@admin.register(FillState)
class FillStateAdmin(ReadOnlyAdmin):
    list_display = ("day", "table", "state", "complete", "rows", "duration_ms", "runs", "finished_at")
    list_filter = ("table", "state", "complete")
    date_hierarchy = "day"
    readonly_fields = [f.name for f in FillState._meta.fields]
    actions = ["rebuild"]

    @admin.action(description="Rebuild these day buckets (queued)", permissions=["view"])
    def rebuild(self, request, queryset) -> None:
        from analytics.tasks import day_build

        wanted = sorted(set(queryset.values_list("day", "table")))
        by_day: dict = {}
        for day, table in wanted:
            by_day.setdefault(day, []).append(table)
        for day, tables in by_day.items():
            transaction.on_commit(lambda d=day, t=tables: day_build.delay(d.isoformat(), t))
        self.message_user(request, f"Queued {len(wanted)} rebuild(s) on the analytics queue.", messages.SUCCESS)
