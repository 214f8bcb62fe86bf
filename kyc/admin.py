"""Compliance screens: the KYC review queue with document previews and decisions, alerts, holds, levels.

Decisions are made on a review page per case and call the same services the API will; nothing here writes models.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django_fsm_log.models import StateLog

from core.errors import ApplicationError
from kyc.models import (
    AmlAlert,
    AmlAlertNote,
    ClientCompliance,
    ComplianceHold,
    KycCase,
    KycDocument,
    VerificationLevel,
)
from kyc.services import (
    compliance_hold_place,
    compliance_hold_release,
    kyc_case_approve,
    kyc_case_reject,
    kyc_case_request_resubmission,
)
from kyc.services.aml import aml_alert_add_note, aml_alert_close, aml_alert_escalate, aml_alert_investigate


class AgeFilter(admin.SimpleListFilter):
    title = "waiting"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("1", "over 1 day"), ("3", "over 3 days"), ("7", "over a week")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(submitted_at__lt=timezone.now() - timezone.timedelta(days=int(self.value())))
        return queryset


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("resubmit", "Ask for new documents"), ("reject", "Reject")],
        widget=forms.RadioSelect,
    )
    client_message = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the client reads (required unless approving).",
    )
    internal_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class KycDocumentInline(admin.TabularInline):
    model = KycDocument
    extra = 0
    can_delete = False
    fields = ("doc_type", "original_name", "content_type", "size", "expires_on", "preview")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="File")
    def preview(self, doc: KycDocument) -> str:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">open</a>', reverse("admin:kyc_document_file", args=[doc.pk])
        )


@admin.register(KycCase)
class KycCaseAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "state", "target_level", "risk", "documents_count", "submitted_at", "review_link")
    list_filter = ("state", AgeFilter, "target_level", "user__compliance__risk_level", "provider")
    search_fields = ("user__email", "provider_applicant_id")
    date_hierarchy = "submitted_at"
    list_select_related = ("user", "target_level", "user__compliance")
    readonly_fields = [f.name for f in KycCase._meta.fields]
    inlines = [KycDocumentInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(documents_total=Count("documents"))

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Risk", ordering="user__compliance__risk_level")
    def risk(self, case: KycCase) -> str:
        compliance = getattr(case.user, "compliance", None)
        return compliance.get_risk_level_display() if compliance else "—"

    @admin.display(description="Documents", ordering="documents_total")
    def documents_count(self, case: KycCase) -> int:
        return case.documents_total

    @admin.display(description="")
    def review_link(self, case: KycCase) -> str:
        if case.state in (KycCase.State.SUBMITTED, KycCase.State.IN_REVIEW):
            return format_html(
                '<a class="button" href="{}">Review</a>', reverse("admin:kyc_case_review", args=[case.pk])
            )
        return ""

    def get_urls(self):
        urls = [
            path("<int:case_id>/review/", self.admin_site.admin_view(self.review_view), name="kyc_case_review"),
            path(
                "document/<int:document_id>/file/",
                self.admin_site.admin_view(self.document_file),
                name="kyc_document_file",
            ),
        ]
        return urls + super().get_urls()

    def review_view(self, request: HttpRequest, case_id: int) -> HttpResponse:
        if not request.user.has_perm("kyc.change_kyccase"):
            raise PermissionDenied
        case = get_object_or_404(KycCase.objects.select_related("user", "target_level"), pk=case_id)
        form = DecisionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["decision"] == "approve":
                    kyc_case_approve(case=case, reviewer=request.user, reason=data["internal_reason"])
                elif data["decision"] == "resubmit":
                    kyc_case_request_resubmission(
                        case=case,
                        reviewer=request.user,
                        client_message=data["client_message"],
                        reason=data["internal_reason"],
                    )
                else:
                    kyc_case_reject(
                        case=case,
                        reviewer=request.user,
                        reason=data["internal_reason"],
                        client_message=data["client_message"],
                    )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Case #{case.pk}: decision recorded.", messages.SUCCESS)
                return redirect("admin:kyc_kyccase_changelist")
        profile = getattr(case.user, "client_profile", None)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Review KYC case #{case.pk}",
            "case": case,
            "profile": profile,
            "compliance": getattr(case.user, "compliance", None),
            "documents": case.documents.all(),
            "history": StateLog.objects.for_(case).select_related("by").order_by("timestamp"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/kyc/review.html", context)

    def document_file(self, request: HttpRequest, document_id: int) -> FileResponse:
        """Stream one identity document to a permitted officer; never cached, never rendered as active content."""
        if not request.user.has_perm("kyc.view_document_file"):
            raise PermissionDenied
        document = get_object_or_404(KycDocument, pk=document_id)
        response = FileResponse(document.file.open("rb"), content_type=document.content_type)
        response["Content-Disposition"] = f'inline; filename="document-{document.pk}{document.file.name[-4:]}"'
        response["Cache-Control"] = "private, no-store"
        response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; object-src 'self'"
        response["X-Content-Type-Options"] = "nosniff"
        return response


@admin.register(VerificationLevel)
class VerificationLevelAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "rank",
        "may_deposit",
        "may_withdraw",
        "may_open_live_account",
        "max_deposit_total",
        "max_withdrawal",
        "auto_approve_withdrawal_up_to",
    )


@admin.register(ClientCompliance)
class ClientComplianceAdmin(admin.ModelAdmin):
    list_display = ("user", "level", "risk_level", "questionnaire_score", "leverage_cap", "screening_status")
    list_filter = ("level", "risk_level", "screening_status")
    search_fields = ("user__email",)
    list_select_related = ("user", "level")
    readonly_fields = [f.name for f in ClientCompliance._meta.fields if f.name not in ("risk_level",)]


@admin.register(ComplianceHold)
class ComplianceHoldAdmin(admin.ModelAdmin):
    """Holds are placed and released only through the services, so every one records who and why."""

    list_display = ("user", "reason", "blocks_withdrawals", "blocks_deposits", "placed_by", "created_at", "released_at")
    list_filter = ("released_at", "blocks_withdrawals")
    search_fields = ("user__email",)
    fields = (
        "user",
        "reason",
        "blocks_withdrawals",
        "blocks_deposits",
        "blocks_trading",
        "placed_by",
        "released_at",
        "released_by",
        "release_reason",
    )
    autocomplete_fields = ()
    actions = ["release"]

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj else ("placed_by", "released_at", "released_by", "release_reason")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return  # nothing is edited in place
        placed = compliance_hold_place(
            user=obj.user,
            reason=obj.reason,
            placed_by=request.user,
            blocks_withdrawals=obj.blocks_withdrawals,
            blocks_deposits=obj.blocks_deposits,
            blocks_trading=obj.blocks_trading,
        )
        obj.pk = placed.pk

    @admin.action(description="Release the selected holds", permissions=["change"])
    def release(self, request, queryset) -> None:
        for hold in queryset.filter(released_at__isnull=True):
            try:
                compliance_hold_release(
                    hold=hold, released_by=request.user, reason=f"released in the back-office by {request.user.email}"
                )
            except ApplicationError as exc:
                self.message_user(request, f"Hold #{hold.pk}: {exc.message}", messages.ERROR)


class AmlAlertNoteInline(admin.TabularInline):
    model = AmlAlertNote
    extra = 0
    can_delete = False
    readonly_fields = ("author", "text", "created_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AmlAlert)
class AmlAlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "rule", "severity", "score", "state", "summary")
    list_filter = ("state", "severity", "rule")
    search_fields = ("user__email", "summary")
    list_select_related = ("user",)
    readonly_fields = [f.name for f in AmlAlert._meta.fields]
    inlines = [AmlAlertNoteInline]
    actions = ["investigate", "close", "escalate"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def _act(self, request, queryset, service, label: str) -> None:
        reason = request.POST.get("reason") or f"{label} from the alert queue"
        for alert in queryset:
            try:
                service(alert=alert, actor=request.user, reason=reason)
            except ApplicationError as exc:
                self.message_user(request, f"Alert #{alert.pk}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{label}: done.", messages.SUCCESS)

    @admin.action(description="Take for investigation", permissions=["change"])
    def investigate(self, request, queryset):
        self._act(request, queryset, aml_alert_investigate, "Investigating")

    @admin.action(description="Close (no further action)", permissions=["change"])
    def close(self, request, queryset):
        self._act(request, queryset, aml_alert_close, "Closed")

    @admin.action(description="Escalate to the MLRO", permissions=["change"])
    def escalate(self, request, queryset):
        self._act(request, queryset, aml_alert_escalate, "Escalated")

    def save_formset(self, request, form, formset, change):  # notes are added through the service only
        return None

    def response_change(self, request, obj):
        note = request.POST.get("new_note", "").strip()
        if note:
            aml_alert_add_note(alert=obj, author=request.user, text=note)
        return super().response_change(request, obj)
