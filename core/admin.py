"""The webhook inbox in the back-office: what arrived, what it did, what was refused; failed events can be replayed."""

from __future__ import annotations

from django.contrib import admin, messages

from core.models import WebhookEvent, WebhookRejection
from core.webhooks import webhook_replay


class ReadOnlyAdmin(admin.ModelAdmin):
    """Imported, machine-written or append-only records: staff look, never add, edit or delete here (actions that
    call services are the only doors that change them)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "source", "provider", "event_type", "status", "outcome", "attempts")
    list_filter = ("status", "source", "provider", "event_type")
    search_fields = ("event_id", "outcome", "last_error")
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Replay (failed or stuck events only)", permissions=["change"])
    def replay(self, request, queryset) -> None:
        for event in queryset:
            result = webhook_replay(event=event, actor=request.user)
            level = messages.SUCCESS if result.status == WebhookEvent.Status.DONE else messages.WARNING
            self.message_user(request, f"Event #{event.pk}: {result.get_status_display()} {result.outcome}", level)


@admin.register(WebhookRejection)
class WebhookRejectionAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "source", "provider", "reason", "remote_addr", "body_size")
    list_filter = ("source", "provider")
    readonly_fields = [f.name for f in WebhookRejection._meta.fields]
