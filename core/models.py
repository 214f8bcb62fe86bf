"""The shared base model."""

from django.db import models


class TimeStampedModel(models.Model):
    """Every business record knows when it was created and last changed."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class WebhookEvent(TimeStampedModel):
    """An inbound provider event, stored before it is acknowledged and processed once.

    Shared by every provider-facing app (KYC providers, PSPs): verify -> record (unique per source, provider and
    event id) -> answer 2xx -> process in a task. A replay of the same event finds the row and does nothing.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    source = models.CharField(max_length=16, help_text="Which app handles it: kyc, psp.")
    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    occurred_at = models.DateTimeField(null=True, blank=True, help_text="The provider's own time for the event.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    outcome = models.CharField(max_length=200, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["source", "provider", "event_id"], name="uniq_webhook_event")]
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


class WebhookRejection(models.Model):
    """A webhook call that failed verification (bad signature, stale, malformed). Kept for the audit trail;
    never processed and never trusted."""

    source = models.CharField(max_length=16)
    provider = models.CharField(max_length=32)
    reason = models.CharField(max_length=200)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    body_sha256 = models.CharField(max_length=64)
    body_size = models.PositiveIntegerField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.provider}: {self.reason}"
