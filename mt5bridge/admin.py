"""Dealing desk screens: servers with their health, accounts, balance operations, deals and positions.

Actions call services; nothing here changes a model by itself.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from core.errors import ApplicationError, RetryableError
from mt5bridge.manager_api import MT5Error
from mt5bridge.models import BalanceOperation, Deal, PositionSnapshot, TradeServer, TradingAccount, TradingGroup
from mt5bridge.servers import breaker_is_open
from mt5bridge.services import (
    account_snapshot_refresh,
    balance_operation_resolve,
    trade_server_ping,
    trade_server_sync_groups,
)


@admin.register(TradeServer)
class TradeServerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "url", "health", "last_ok_at", "consecutive_failures", "deal_cursor_ticket")
    readonly_fields = (
        "last_ok_at",
        "last_error",
        "last_error_at",
        "consecutive_failures",
        "breaker_open_until",
        "deal_cursor_ticket",
        "deals_imported_at",
        "next_login",
    )
    actions = ["ping_and_sync_groups"]

    @admin.display(description="Health")
    def health(self, server: TradeServer) -> str:
        if not server.is_active:
            return format_html('<span class="health-off">{}</span>', "inactive")
        if breaker_is_open(server):
            return format_html('<span class="health-bad">{}</span>', "circuit open")
        if server.consecutive_failures:
            return format_html('<span class="health-warn">{} failures</span>', server.consecutive_failures)
        if server.last_ok_at and (timezone.now() - server.last_ok_at).total_seconds() < 180:
            return format_html('<span class="health-ok">{}</span>', "ok")
        return "unknown"

    @admin.action(description="Ping and re-read groups")
    def ping_and_sync_groups(self, request, queryset) -> None:
        for server in queryset:
            if not trade_server_ping(server=server):
                self.message_user(request, f"{server.name} did not answer.", messages.ERROR)
                continue
            count = trade_server_sync_groups(server=server)
            self.message_user(request, f"{server.name}: answered, {count} groups.", messages.SUCCESS)


@admin.register(TradingGroup)
class TradingGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "server", "account_type", "currency", "leverages", "commission_per_lot", "enabled")
    list_filter = ("server", "account_type", "currency", "enabled")
    readonly_fields = ("server", "name", "currency", "leverages", "margin_stop_out", "commission_per_lot")


@admin.register(TradingAccount)
class TradingAccountAdmin(admin.ModelAdmin):
    list_display = ("login", "server", "user", "group", "leverage", "state", "balance", "equity", "snapshot_at")
    list_filter = ("state", "server", "group__account_type", "currency")
    search_fields = ("=login", "user__email")
    list_select_related = ("server", "user", "group")
    readonly_fields = [f.name for f in TradingAccount._meta.fields if f.name != "pending_password"]
    exclude = ("pending_password",)
    actions = ["resync"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # accounts are opened through the portal or API, which run the gates

    @admin.action(description="Resync balance and equity from MT5")
    def resync(self, request, queryset) -> None:
        done = 0
        for account in queryset.select_related("server").filter(state=TradingAccount.State.PROVISIONED):
            try:
                account_snapshot_refresh(account=account)
                done += 1
            except MT5Error as exc:
                self.message_user(request, f"{account.login}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} account(s) resynced.", messages.SUCCESS)


@admin.register(BalanceOperation)
class BalanceOperationAdmin(ReadOnlyAdmin):
    list_display = ("reference", "account", "amount", "kind", "state", "ticket", "attempts", "created_at")
    list_filter = ("state", "server", "kind")
    search_fields = ("reference", "idempotency_key", "=account__login", "=ticket")
    list_select_related = ("account", "account__server")
    actions = ["resolve"]

    @admin.action(description="Resolve: look the deal up on MT5 (unknown operations only)")
    def resolve(self, request, queryset) -> None:
        for operation in queryset.filter(state=BalanceOperation.State.UNKNOWN):
            try:
                result = balance_operation_resolve(operation_id=operation.pk)
            except (ApplicationError, RetryableError, MT5Error) as exc:
                self.message_user(request, f"{operation.reference}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{operation.reference}: {result.get_state_display()}", messages.INFO)


@admin.register(Deal)
class DealAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "server", "login", "time", "symbol", "action", "entry", "volume", "price", "profit")
    list_filter = ("server", "action", "entry", "symbol")
    search_fields = ("=ticket", "=login", "comment")
    date_hierarchy = "time"
    show_full_result_count = False


@admin.register(PositionSnapshot)
class PositionSnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "position_id",
        "server",
        "login",
        "symbol",
        "action",
        "volume",
        "price_open",
        "profit",
        "snapshot_at",
    )
    list_filter = ("server", "symbol")
    search_fields = ("=login", "=position_id")
