"""Read-only ledger browser: staff see every account, transaction and entry; nobody edits them here."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Sum

from payments.models import Deposit, LedgerAccount, LedgerEntry, LedgerTransaction


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class EntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    fields = ("account", "amount", "currency")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnly):
    list_display = ("__str__", "kind", "currency", "user", "key", "balance")
    list_filter = ("kind", "currency")
    search_fields = ("user__email", "key")
    list_select_related = ("user",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(total=Sum("entries__amount"))

    @admin.display(description="Balance", ordering="total")
    def balance(self, account: LedgerAccount):
        return account.total or 0


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnly):
    list_display = ("created_at", "kind", "description", "idempotency_key", "created_by")
    list_filter = ("kind",)
    search_fields = ("idempotency_key", "description")
    date_hierarchy = "created_at"
    inlines = [EntryInline]


@admin.register(Deposit)
class DepositAdmin(ReadOnly):
    list_display = ("id", "created_at", "user", "amount", "currency", "provider", "state", "trading_account",
                    "failure_reason")  # fmt: skip
    list_filter = ("state", "provider", "currency")
    search_fields = ("user__email", "psp_reference")
    list_select_related = ("user", "trading_account")
    date_hierarchy = "created_at"
