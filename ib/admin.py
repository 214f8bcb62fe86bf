"""The IB Manager's back-office: applications and decisions, the hierarchy, plans and symbol groups, attribution
(reassign with a reason, conflicts), commissions (read-only), adjustments with a reason, payouts and engine runs.
Every action calls a service; nothing here changes a model on its own."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdmin
from core.errors import ApplicationError
from ib import selectors
from ib.models import (
    PLAN_CURRENCIES,
    AttributionConflict,
    AttributionEvent,
    ClientReferral,
    Commission,
    CommissionAdjustment,
    CommissionBatch,
    CommissionPayout,
    CommissionPlan,
    CommissionRule,
    CommissionRun,
    IntroducingBroker,
    ReferralClick,
    ReferralLink,
    SymbolGroup,
    SymbolGroupMember,
)
from ib.services import (
    client_attribute_staff,
    client_attribution_check,
    commission_adjust,
    commission_adjust_check,
    conflict_resolve,
    ib_approve,
    ib_reinstate,
    ib_reject,
    ib_set_parent,
    ib_suspend,
    ib_terms_update,
)
from ib.services.engine import commissions_audit


def _each(modeladmin, request, queryset, action, done: str) -> None:
    for item in queryset:
        try:
            action(item)
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{item}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{item}: {done}.", messages.SUCCESS)


@admin.register(IntroducingBroker)
class IntroducingBrokerAdmin(admin.ModelAdmin):
    """Applications arrive as `applied`; approve (a plan is required), reject, suspend or reinstate with the
    actions. Moving an IB under another upline is checked for cycles."""

    list_display = (
        "referral_code",
        "user",
        "state",
        "parent",
        "plan",
        "payout_schedule",
        "review_window_days",
        "created_at",
    )
    list_filter = ("state", "plan", "payout_schedule")
    search_fields = ("referral_code", "user__email")
    list_select_related = ("user", "parent", "plan")
    autocomplete_fields = ("parent",)
    fields = (
        "user",
        "referral_code",
        "state",
        "parent",
        "plan",
        "payout_schedule",
        "review_window_days",
        "mask_client_emails",
        "application_note",
        "decided_by",
        "decided_at",
    )
    readonly_fields = ("user", "referral_code", "state", "application_note", "decided_by", "decided_at")
    actions = ["approve", "reject", "suspend", "reinstate"]

    def has_add_permission(self, request) -> bool:
        return False  # clients apply from the portal

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if "parent" in form.changed_data:
            try:
                ib_set_parent(ib=obj, parent=obj.parent, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                obj.parent_id = IntroducingBroker.objects.get(pk=obj.pk).parent_id
        try:
            ib_terms_update(
                ib=obj, actor=request.user, plan=obj.plan, payout_schedule=obj.payout_schedule,
                review_window_days=obj.review_window_days, mask_client_emails=obj.mask_client_emails,
            )  # fmt: skip
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description="Approve (needs a plan)", permissions=["approve"])
    def approve(self, request, queryset) -> None:
        _each(self, request, queryset, lambda ib: ib_approve(ib=ib, actor=request.user), "approved")

    @admin.action(description="Reject", permissions=["approve"])
    def reject(self, request, queryset) -> None:
        reason = f"rejected by {request.user.email}"
        _each(self, request, queryset, lambda ib: ib_reject(ib=ib, actor=request.user, reason=reason), "rejected")

    @admin.action(description="Suspend (payouts stop, accruals continue)", permissions=["approve"])
    def suspend(self, request, queryset) -> None:
        reason = f"suspended by {request.user.email}"
        _each(self, request, queryset, lambda ib: ib_suspend(ib=ib, actor=request.user, reason=reason), "suspended")

    @admin.action(description="Reinstate", permissions=["approve"])
    def reinstate(self, request, queryset) -> None:
        _each(self, request, queryset, lambda ib: ib_reinstate(ib=ib, actor=request.user), "reinstated")

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("ib.approve_introducingbroker")


class RuleInline(admin.TabularInline):
    model = CommissionRule
    extra = 0
    fields = (
        "kind",
        "symbol_group",
        "level",
        "rate",
        "min_monthly_lots",
        "cpa_min_deposit",
        "cpa_min_lots",
        "cpa_within_days",
    )


@admin.register(CommissionPlan)
class CommissionPlanAdmin(admin.ModelAdmin):
    """Rules are validated on save: overlapping rules (two that would apply to one deal) are refused."""

    list_display = ("name", "currency", "override_model", "min_hold_seconds")
    search_fields = ("name",)
    inlines = [RuleInline]


@admin.register(CommissionRule)
class CommissionRuleAdmin(admin.ModelAdmin):
    list_display = ("plan", "kind", "symbol_group", "level", "rate", "min_monthly_lots")
    list_filter = ("plan", "kind", "symbol_group")
    list_select_related = ("plan", "symbol_group")


class MemberInline(admin.TabularInline):
    model = SymbolGroupMember
    extra = 1


@admin.register(SymbolGroup)
class SymbolGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "spread_markup_per_lot", "markup_currency")
    inlines = [MemberInline]


@admin.register(SymbolGroupMember)
class SymbolGroupMemberAdmin(admin.ModelAdmin):
    list_display = ("symbol", "group")
    list_filter = ("group",)
    search_fields = ("symbol",)


class ReferralForm(forms.ModelForm):
    reason = forms.CharField(max_length=255, help_text="Why this client belongs to this IB (kept in the log).")

    class Meta:
        model = ClientReferral
        fields = ("client", "ib")

    def clean(self):
        data = super().clean()
        client = data.get("client") or (self.instance.client if self.instance.pk else None)
        if client is not None and data.get("ib") is not None:
            if self.instance.pk and self.instance.ib_id == data["ib"].pk:
                raise ValidationError(f"The client already belongs to {data['ib'].referral_code}.")
            try:
                client_attribution_check(client=client, ib=data["ib"])
            except ApplicationError as exc:
                raise ValidationError(exc.message) from None
        return data


@admin.register(ClientReferral)
class ClientReferralAdmin(admin.ModelAdmin):
    """Attribute a client, or change its IB: always with a reason, logged as an attribution event."""

    form = ReferralForm
    list_display = ("client", "ib", "source", "attributed_at", "reassigned_reason")
    list_filter = ("source",)
    search_fields = ("client__email", "ib__referral_code")
    list_select_related = ("client", "ib")
    autocomplete_fields = ("ib",)
    raw_id_fields = ("client",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return ("client",) if obj else ()

    def save_model(self, request, obj, form, change) -> None:
        saved = client_attribute_staff(
            client=form.cleaned_data.get("client") or obj.client,
            ib=obj.ib,
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )
        obj.pk = saved.pk


@admin.register(AttributionEvent)
class AttributionEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "client", "from_ib", "to_ib", "source", "reason", "actor")
    list_filter = ("source",)
    search_fields = ("client__email",)
    list_select_related = ("client", "from_ib", "to_ib", "actor")


@admin.register(AttributionConflict)
class AttributionConflictAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "client", "current_ib", "claimant_ib", "reason", "state", "resolved_by")
    list_filter = ("state",)
    search_fields = ("client__email",)
    list_select_related = ("client", "current_ib", "claimant_ib", "resolved_by")
    actions = ["keep_current", "give_to_claimant"]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("ib.change_attributionconflict")  # for the actions; fields stay read-only

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AttributionConflict._meta.fields]

    @admin.action(description="Resolve: keep the current IB", permissions=["change"])
    def keep_current(self, request, queryset) -> None:
        def keep(conflict) -> None:
            conflict_resolve(conflict=conflict, give_to_claimant=False, actor=request.user)

        _each(self, request, queryset, keep, "kept")

    @admin.action(description="Resolve: give the client to the claimant (logged reassignment)", permissions=["change"])
    def give_to_claimant(self, request, queryset) -> None:
        def give(conflict) -> None:
            conflict_resolve(conflict=conflict, give_to_claimant=True, actor=request.user)

        _each(self, request, queryset, give, "reassigned")


@admin.register(ReferralLink)
class ReferralLinkAdmin(ReadOnlyAdmin):
    list_display = ("code", "ib", "campaign", "landing_path", "created_at")
    search_fields = ("code", "ib__referral_code", "campaign")
    list_select_related = ("ib",)


@admin.register(ReferralClick)
class ReferralClickAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "link", "utm_source", "utm_medium", "utm_campaign", "ip_hash")
    list_filter = ("utm_source",)
    search_fields = ("link__code", "ip_hash")
    list_select_related = ("link",)


LINES_SHOWN = 200


@admin.register(Commission)
class CommissionAdmin(ReadOnlyAdmin):
    list_display = (
        "deal_time",
        "ib",
        "level",
        "kind",
        "status",
        "day",
        "direct_ib",
        "symbol",
        "deals",
        "lots",
        "rate",
        "amount",
        "currency",
        "payout",
    )
    list_filter = ("kind", "status", "currency")
    search_fields = ("ib__referral_code", "symbol")
    list_select_related = ("ib", "rule", "rule__symbol_group", "direct_ib")
    readonly_fields = ("explanation", "deal_lines")
    show_full_result_count = False

    @admin.display(description="Explanation")
    def explanation(self, obj: Commission) -> str:
        return selectors.explain(obj)

    @admin.display(description="Deal lines (derived from the deals, as the engine summed them)")
    def deal_lines(self, obj: Commission) -> str:
        lines = selectors.commission_lines(row=obj, limit=LINES_SHOWN)
        if not lines:
            return "-"
        items = format_html_join("", "<li>{}</li>", ((selectors.explain(line),) for line in lines))
        more = f" (the first {LINES_SHOWN} of {obj.deals})" if obj.deals > LINES_SHOWN else ""
        return format_html("<ol>{}</ol>{}", items, more)


class AdjustmentForm(forms.ModelForm):
    amount = forms.DecimalField(max_digits=20, decimal_places=2, help_text="Negative takes commission back.")
    currency = forms.ChoiceField(choices=PLAN_CURRENCIES)

    class Meta:
        model = CommissionAdjustment
        fields = ("ib", "currency", "note")
        labels = {"note": "Reason"}

    def clean(self):
        """The service's own refusals, shown on the form (so a refused adjustment is never reported as added)."""
        data = super().clean()
        if data.get("ib") and data.get("amount") is not None and data.get("currency"):
            try:
                commission_adjust_check(
                    ib=data["ib"], amount=data["amount"], currency=data["currency"], reason=data.get("note") or ""
                )
            except ApplicationError as exc:
                field = {"reason_required": "note", "invalid_amount": "amount"}.get(exc.code)
                self.add_error(field, exc.message)
        return data


@admin.register(CommissionAdjustment)
class CommissionAdjustmentAdmin(admin.ModelAdmin):
    """Staff corrections with a reason: accrued at once, released with the IB's next payout."""

    form = AdjustmentForm
    list_display = ("created_at", "ib", "amount", "currency", "note", "created_by", "payout")
    list_select_related = ("ib", "created_by")
    autocomplete_fields = ("ib",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind=Commission.Kind.ADJUSTMENT)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("ib.adjust_commission")

    def save_model(self, request, obj, form, change) -> None:
        try:
            row = commission_adjust(
                ib=obj.ib,
                amount=form.cleaned_data["amount"],
                currency=obj.currency,
                reason=obj.note,
                actor=request.user,
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        for field in Commission._meta.concrete_fields:
            setattr(obj, field.attname, getattr(row, field.attname))


@admin.register(CommissionPayout)
class CommissionPayoutAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "ib",
        "amount",
        "currency",
        "rows",
        "period_start",
        "period_end",
        "state",
        "ledger_key",
    )
    list_filter = ("state", "currency")
    search_fields = ("ib__referral_code", "ledger_key")
    list_select_related = ("ib",)


@admin.register(CommissionRun)
class CommissionRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "trigger",
        "state",
        "from_deal_id",
        "last_deal_id",
        "batches",
        "rows_created",
        "cpa_rows_created",
        "finished_at",
    )
    list_filter = ("state", "trigger")


@admin.register(CommissionBatch)
class CommissionBatchAdmin(ReadOnlyAdmin):
    """The deal-id ranges the engine computed, each once; the audit recounts a batch against the deals."""

    list_display = ("lo", "hi", "deals", "lines", "run", "created_at")
    readonly_fields = ("audit",)
    show_full_result_count = False

    @admin.display(description="Audit (recounted now)")
    def audit(self, obj: CommissionBatch) -> str:
        figures = commissions_audit(batch=obj)
        same = figures["deals_then"] == figures["deals_now"] and figures["lines_recorded"] == figures["lines_now"]
        verdict = "consistent" if same else "DIFFERS: a deal committed late under an id this batch had passed"
        return (
            f"closing deals of attributed clients: {figures['deals_then']} then, {figures['deals_now']} now; "
            f"lines: {figures['lines_recorded']} recorded, {figures['lines_now']} in its rows; {verdict}"
        )
