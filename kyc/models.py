"""Compliance records: verification levels, KYC cases and documents, the client's compliance state, holds and AML
alerts. Every state change goes through a logged transition (who, when, why)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q
from django_fsm import FSMField

from core.fsm import logged_transition
from core.models import TimeStampedModel

MONEY = {"max_digits": 18, "decimal_places": 2}


class PrivateDocumentStorage(FileSystemStorage):
    """Documents live outside MEDIA_ROOT and have no URL: only the permission-checked staff view streams them.

    The folder is read from settings on every use (not frozen at import), so each deployment and each test can
    point it elsewhere.
    """

    @property
    def base_location(self):
        return settings.KYC_DOCUMENT_ROOT

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)

    @property
    def base_url(self):
        return None


def private_document_storage() -> FileSystemStorage:
    return PrivateDocumentStorage()


class VerificationLevel(models.Model):
    """What a client may do and up to which amounts, as data (seeded by migration, editable by Compliance)."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    rank = models.PositiveSmallIntegerField(unique=True, help_text="Higher ranks include everything below.")
    may_deposit = models.BooleanField(default=False)
    may_withdraw = models.BooleanField(default=False)
    may_open_live_account = models.BooleanField(default=False)
    may_trade = models.BooleanField(default=False)
    currency = models.CharField(max_length=3, default="USD")
    max_deposit_total = models.DecimalField(**MONEY, null=True, blank=True, help_text="Empty means no limit.")
    max_withdrawal = models.DecimalField(**MONEY, null=True, blank=True, help_text="Per withdrawal; empty: no limit.")
    auto_approve_withdrawal_up_to = models.DecimalField(**MONEY, default=0)
    required_documents = models.JSONField(
        default=list, blank=True, help_text="Document groups needed for this level, e.g. ['identity', 'address']."
    )

    class Meta:
        ordering = ["rank"]

    def __str__(self) -> str:
        return self.name


class ClientCompliance(TimeStampedModel):
    """The compliance view of one client: verification level, risk, questionnaire outcome, disclosure."""

    class Risk(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="compliance")
    level = models.ForeignKey(VerificationLevel, on_delete=models.PROTECT, related_name="+")
    risk_level = models.CharField(max_length=8, choices=Risk.choices, default=Risk.LOW)
    risk_reasons = models.JSONField(default=list, blank=True)
    questionnaire_score = models.PositiveSmallIntegerField(null=True, blank=True)
    questionnaire_version = models.CharField(max_length=16, blank=True)
    questionnaire_at = models.DateTimeField(null=True, blank=True)
    leverage_cap = models.PositiveIntegerField(null=True, blank=True, help_text="Highest leverage the client may use.")
    disclosure_version = models.CharField(max_length=16, blank=True)
    disclosure_accepted_at = models.DateTimeField(null=True, blank=True)
    screening_status = models.CharField(max_length=16, default="not_run")
    screening_matches = models.JSONField(default=list, blank=True)
    screened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "client compliance"

    def __str__(self) -> str:
        return f"{self.user} ({self.level})"


class KycCase(TimeStampedModel):
    """One verification attempt. `draft -> submitted -> in_review -> approved | rejected | resubmission_requested`,
    `resubmission_requested -> submitted`, `approved -> expired` (a document ran out) and `approved -> rejected`
    (a provider sent a later negative result)."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        RESUBMISSION_REQUESTED = "resubmission_requested", "Resubmission requested"
        EXPIRED = "expired", "Expired"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="kyc_cases")
    target_level = models.ForeignKey(VerificationLevel, on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=32, default="manual")
    provider_applicant_id = models.CharField(max_length=128, blank=True, db_index=True)
    state = FSMField(default=State.DRAFT, choices=State.choices, protected=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    internal_reason = models.TextField(blank=True, help_text="Staff-only reason for the decision.")
    client_message = models.TextField(blank=True, help_text="What the client is told (rejection or what to redo).")
    reject_labels = models.JSONField(default=list, blank=True)
    expires_at = models.DateField(null=True, blank=True, help_text="Earliest expiry among the approved documents.")
    last_provider_event_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "submitted_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(state__in=["draft", "submitted", "in_review", "resubmission_requested"]),
                name="one_open_kyc_case_per_client",
            )
        ]

    def __str__(self) -> str:
        return f"KYC #{self.pk} {self.user} ({self.get_state_display()})"

    @logged_transition(field=state, source=[State.DRAFT, State.RESUBMISSION_REQUESTED], target=State.SUBMITTED)
    def submit(self, by=None, description=None) -> None:
        """The client sent the case for review."""

    @logged_transition(field=state, source=State.SUBMITTED, target=State.IN_REVIEW)
    def start_review(self, by=None, description=None) -> None:
        """A reviewer (or the provider) picked the case up."""

    @logged_transition(field=state, source=State.IN_REVIEW, target=State.APPROVED)
    def approve(self, by=None, description=None) -> None:
        """Verified."""

    @logged_transition(field=state, source=[State.IN_REVIEW, State.APPROVED], target=State.REJECTED)
    def reject(self, by=None, description=None) -> None:
        """Refused for good (also after approval, when a provider sends a later negative result)."""

    @logged_transition(field=state, source=State.IN_REVIEW, target=State.RESUBMISSION_REQUESTED)
    def request_resubmission(self, by=None, description=None) -> None:
        """The client must replace some documents."""

    @logged_transition(field=state, source=State.APPROVED, target=State.EXPIRED)
    def expire(self, by=None, description=None) -> None:
        """A document the approval rested on has expired."""


class KycDocument(TimeStampedModel):
    class Type(models.TextChoices):
        PASSPORT = "passport", "Passport"
        NATIONAL_ID = "national_id", "National ID card"
        DRIVING_LICENCE = "driving_licence", "Driving licence"
        RESIDENCE_PERMIT = "residence_permit", "Residence permit"
        SELFIE = "selfie", "Selfie"
        UTILITY_BILL = "utility_bill", "Utility bill"
        BANK_STATEMENT = "bank_statement", "Bank statement"
        PAYMENT_PROOF = "payment_proof", "Proof of payment method"

    IDENTITY_TYPES = {Type.PASSPORT, Type.NATIONAL_ID, Type.DRIVING_LICENCE, Type.RESIDENCE_PERMIT}
    ADDRESS_TYPES = {Type.UTILITY_BILL, Type.BANK_STATEMENT}

    case = models.ForeignKey(KycCase, on_delete=models.PROTECT, related_name="documents")
    doc_type = models.CharField(max_length=32, choices=Type.choices)
    file = models.FileField(storage=private_document_storage, upload_to="documents/%Y/%m/", max_length=200)
    original_name = models.CharField(max_length=100)
    content_type = models.CharField(max_length=32)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    pages = models.PositiveSmallIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["case", "doc_type", "created_at"]
        permissions = [("view_document_file", "Can open identity document files")]

    def __str__(self) -> str:
        return f"{self.get_doc_type_display()} for case #{self.case_id}"


class ComplianceHold(TimeStampedModel):
    """A block Compliance places on a client's money movements while something is investigated."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="compliance_holds")
    reason = models.TextField()
    blocks_withdrawals = models.BooleanField(default=True)
    blocks_deposits = models.BooleanField(default=False)
    blocks_trading = models.BooleanField(default=False)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    release_reason = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "released_at"])]

    def __str__(self) -> str:
        return f"Hold on {self.user} ({'released' if self.released_at else 'active'})"


class AmlAlert(TimeStampedModel):
    """A rule hit, worked as a case: `open -> investigating -> closed | escalated`."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        INVESTIGATING = "investigating", "Investigating"
        CLOSED = "closed", "Closed"
        ESCALATED = "escalated", "Escalated"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="aml_alerts")
    rule = models.CharField(max_length=64)
    severity = models.CharField(max_length=8)
    score = models.PositiveSmallIntegerField()
    summary = models.TextField()
    evidence = models.JSONField(default=dict)
    dedup_key = models.CharField(max_length=200, unique=True)
    state = FSMField(default=State.OPEN, choices=State.choices, protected=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    hold = models.ForeignKey(ComplianceHold, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "severity"])]

    def __str__(self) -> str:
        return f"{self.rule} on {self.user}"

    @logged_transition(field=state, source=State.OPEN, target=State.INVESTIGATING)
    def investigate(self, by=None, description=None) -> None:
        """An officer took the alert."""

    @logged_transition(field=state, source=[State.OPEN, State.INVESTIGATING], target=State.CLOSED)
    def close(self, by=None, description=None) -> None:
        """No further action (the reason is logged)."""

    @logged_transition(field=state, source=[State.OPEN, State.INVESTIGATING], target=State.ESCALATED)
    def escalate(self, by=None, description=None) -> None:
        """Sent to the MLRO (a SAR may follow)."""


class AmlAlertNote(TimeStampedModel):
    alert = models.ForeignKey(AmlAlert, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Note on alert #{self.alert_id}"
