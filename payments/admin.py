"""Read-only ledger browser: staff see every account, transaction and entry; nobody edits them here."""

from __future__ import annotations

from django.contrib import admin, messages

from core.admin import ReadOnlyAdmin
from core.db import DecimalSum
from core.errors import ApplicationError
from payments.models import (
    Deposit,
    DepositReversal,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    ManualAdjustment,
    ReconciliationReport,
    SandboxPayment,
    Transfer,
    Withdrawal,
)
from payments.services import withdrawal_approve, withdrawal_reject
from payments.services.adjustments import adjustment_approve, adjustment_propose, adjustment_reject
from payments.services.deposits import deposit_confirm_wire


class EntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    fields = ("account", "amount", "currency")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "currency", "user", "key", "balance")
    list_filter = ("kind", "currency")
    search_fields = ("user__email", "key")
    list_select_related = ("user",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(total=DecimalSum("entries__amount"))

    @admin.display(description="Balance", ordering="total")
    def balance(self, account: LedgerAccount):
        return account.total or 0


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "description", "idempotency_key", "created_by")
    list_filter = ("kind",)
    search_fields = ("idempotency_key", "description")
    date_hierarchy = "created_at"
    inlines = [EntryInline]


class DepositReversalInline(admin.TabularInline):
    model = DepositReversal
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "psp_reference", "amount", "from_wallet", "from_mt5", "unrecovered", "state")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdmin):
    actions = ["confirm_wire", "sandbox_refund", "sandbox_chargeback"]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("payments.change_deposit")  # for the action; fields stay read-only

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Deposit._meta.fields]

    @admin.action(description="Confirm bank wire received (credits the client)")
    def confirm_wire(self, request, queryset) -> None:
        for deposit in queryset:
            try:
                outcome = deposit_confirm_wire(deposit=deposit, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"#{deposit.pk}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"#{deposit.pk}: {outcome}", messages.INFO)

    def _sandbox(self, request, queryset, simulate, what: str) -> None:
        """Demo and test doors of the built-in sandbox PSP: what a real PSP's own console or a card holder's bank
        would do. The CRM hears of it only through the PSP's signed webhook, as it would from a real PSP."""
        for deposit in queryset:
            if deposit.provider != "sandbox":
                self.message_user(request, f"#{deposit.pk}: only sandbox PSP payments simulate.", messages.ERROR)
                continue
            try:
                reference = simulate(deposit)
            except (ValueError, SandboxPayment.DoesNotExist) as exc:
                self.message_user(request, f"#{deposit.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"#{deposit.pk}: {what} {reference} sent by the sandbox PSP.", messages.INFO)

    @admin.action(description="Sandbox PSP: the merchant refunds the payment at the PSP (test money)")
    def sandbox_refund(self, request, queryset) -> None:
        from payments.psp.sandbox import sandbox_refund_at_psp

        self._sandbox(
            request, queryset,
            lambda d: sandbox_refund_at_psp(reference=d.psp_reference, amount=d.amount - d.reversed_amount), "refund",
        )  # fmt: skip

    @admin.action(description="Sandbox PSP: the card holder's bank charges the payment back (test money)")
    def sandbox_chargeback(self, request, queryset) -> None:
        from payments.psp.sandbox import sandbox_charge_back

        self._sandbox(request, queryset, lambda d: sandbox_charge_back(reference=d.psp_reference), "dispute")

    list_display = ("id", "created_at", "user", "amount", "currency", "provider", "fee", "state", "trading_account",
                    "reversed_amount", "failure_reason")  # fmt: skip
    list_filter = ("state", "provider", "currency")
    search_fields = ("user__email", "psp_reference", "psp_payment_id")
    list_select_related = ("user", "trading_account")
    date_hierarchy = "created_at"
    inlines = [DepositReversalInline]


@admin.register(DepositReversal)
class DepositReversalAdmin(ReadOnlyAdmin):
    """Refunds made at the PSP, chargebacks and won disputes: created by PSP events only, never edited."""

    list_display = ("id", "created_at", "deposit", "kind", "psp_reference", "amount", "currency", "from_wallet",
                    "from_mt5", "unrecovered", "state")  # fmt: skip
    list_filter = ("kind", "state", "currency")
    search_fields = ("psp_reference", "deposit__user__email")
    list_select_related = ("deposit",)
    date_hierarchy = "created_at"


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    """The approval queue: filter on *Awaiting approval*; approving twice by two different people approves."""

    list_display = ("id", "created_at", "user", "amount", "currency", "method", "state", "first_approver",
                    "second_approver")  # fmt: skip
    list_filter = ("state", "method", "currency")
    search_fields = ("user__email", "payout_reference")
    list_select_related = ("user", "first_approver", "second_approver")
    actions = ["approve", "reject"]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("payments.approve_withdrawal")  # actions need it; fields stay read-only

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Withdrawal._meta.fields]

    @admin.action(description="Approve (four eyes)")
    def approve(self, request, queryset) -> None:
        for item in queryset:
            try:
                result = withdrawal_approve(withdrawal=item, approver=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"#{item.pk}: {exc.message}", messages.ERROR)
            else:
                note = "approved" if result.state == Withdrawal.State.APPROVED else "first approval recorded"
                self.message_user(request, f"#{item.pk}: {note}.", messages.SUCCESS)

    @admin.action(description="Reject and return the money to the wallet")
    def reject(self, request, queryset) -> None:
        for item in queryset:
            try:
                withdrawal_reject(withdrawal=item, actor=request.user, reason=f"rejected by {request.user.email}")
            except ApplicationError as exc:
                self.message_user(request, f"#{item.pk}: {exc.message}", messages.ERROR)


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "user", "direction", "trading_account", "amount", "currency", "state")
    list_filter = ("state", "direction", "currency")
    search_fields = ("user__email",)
    list_select_related = ("user", "trading_account")


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "kind", "scope", "checked", "mended", "discrepancies", "created_by")
    list_filter = ("kind", "scope")
    readonly_fields = ("kind", "scope", "started_at", "checked", "mended", "discrepancies", "created_by", "items")
    actions = ["export_csv"]

    @admin.action(description="Export findings as CSV")
    def export_csv(self, request, queryset):
        import csv

        from django.http import HttpResponse

        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="reconciliation.csv"'
        writer = csv.writer(response)
        writer.writerow(["report", "kind", "scope", "started_at", "what", "reference", "ours", "theirs", "action"])
        for report in queryset:
            for item in report.items:
                writer.writerow(
                    [
                        report.pk,
                        report.kind,
                        report.scope,
                        report.started_at.isoformat(),
                        item.get("what"),
                        item.get("reference"),
                        item.get("ours"),
                        item.get("theirs"),
                        item.get("action"),
                    ]
                )
        return response


@admin.register(ManualAdjustment)
class ManualAdjustmentAdmin(admin.ModelAdmin):
    """Propose here (client, amount, currency, reason); a second Finance user approves with the action."""

    list_display = ("id", "created_at", "user", "amount", "currency", "state", "proposed_by", "decided_by", "reason")
    list_filter = ("state", "currency")
    search_fields = ("user__email", "reason")
    list_select_related = ("user", "proposed_by", "decided_by")
    fields = ("user", "amount", "currency", "reason", "state", "proposed_by", "decided_by")
    autocomplete_fields = ()
    actions = ["approve", "reject"]

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj else ("state", "proposed_by", "decided_by")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        try:
            proposed = adjustment_propose(user=obj.user, amount=obj.amount, currency=obj.currency, reason=obj.reason,
                                          actor=request.user)  # fmt: skip
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = proposed.pk

    @admin.action(description="Approve and post (a second person)", permissions=["change"])
    def approve(self, request, queryset) -> None:
        for item in queryset.filter(state=ManualAdjustment.State.PROPOSED):
            try:
                adjustment_approve(adjustment=item, approver=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"#{item.pk}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"#{item.pk}: posted.", messages.SUCCESS)

    @admin.action(description="Reject", permissions=["change"])
    def reject(self, request, queryset) -> None:
        for item in queryset.filter(state=ManualAdjustment.State.PROPOSED):
            adjustment_reject(adjustment=item, actor=request.user, reason=f"rejected by {request.user.email}")
