"""A Sumsub-shaped KYC provider: applicants, and `applicantReviewed` results delivered by signed webhooks.

Signature: `X-Payload-Digest` is the hex HMAC of the raw body with SUMSUB_WEBHOOK_SECRET; `X-Payload-Digest-Alg`
names the hash (HMAC_SHA256_HEX or HMAC_SHA512_HEX; SHA-1 is refused). Events older than
KYC_WEBHOOK_MAX_AGE_SECONDS by their own `createdAtMs` are refused as stale replays.

SIMULATED: no request goes to Sumsub from here (this workplace has no network). `case_submitted` gives the case a
local applicant id, and `manage.py kyc_simulate_review` plays Sumsub's part by posting a correctly signed webhook
to this server. A real integration adds the applicant-creation API call in `case_submitted`; the webhook side is
already the real shape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kyc.models import KycCase

ALGORITHMS = {"HMAC_SHA256_HEX": hashlib.sha256, "HMAC_SHA512_HEX": hashlib.sha512}
CLOCK_SKEW_SECONDS = 300


class WebhookInvalid(Exception):
    """The call is not a trustworthy provider event; the message is the reason recorded for the audit."""


@dataclass(frozen=True)
class ProviderEvent:
    event_id: str
    event_type: str
    occurred_at: datetime
    payload: dict


def sign(body: bytes, secret: str, algorithm: str = "HMAC_SHA256_HEX") -> str:
    return hmac.new(secret.encode(), body, ALGORITHMS[algorithm]).hexdigest()


def _parse_time(raw: str) -> datetime:
    # Sumsub writes "2026-11-23 10:15:30.123" in UTC.
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except (TypeError, ValueError):
            continue
    raise WebhookInvalid("createdAtMs is missing or malformed")


def parse_webhook(*, body: bytes, headers) -> ProviderEvent:
    """Verify and parse a webhook call; raises WebhookInvalid with the reason. Nothing is trusted before this."""
    secret = settings.SUMSUB_WEBHOOK_SECRET
    if not secret:
        raise WebhookInvalid("SUMSUB_WEBHOOK_SECRET is not configured")
    algorithm = headers.get("X-Payload-Digest-Alg", "HMAC_SHA256_HEX")
    if algorithm not in ALGORITHMS:
        raise WebhookInvalid(f"digest algorithm {algorithm!r} refused")
    digest = headers.get("X-Payload-Digest", "")
    if not digest or not hmac.compare_digest(digest.lower(), sign(body, secret, algorithm)):
        raise WebhookInvalid("bad signature")
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookInvalid("body is not JSON") from None
    if not isinstance(payload, dict) or not payload.get("type") or not payload.get("applicantId"):
        raise WebhookInvalid("type or applicantId missing")
    occurred_at = _parse_time(payload.get("createdAtMs", ""))
    age = (timezone.now() - occurred_at).total_seconds()
    if age > settings.KYC_WEBHOOK_MAX_AGE_SECONDS:
        raise WebhookInvalid(f"stale event ({int(age)} s old)")
    if age < -CLOCK_SKEW_SECONDS:
        raise WebhookInvalid("event dated in the future")
    event_id = payload.get("correlationId") or hashlib.sha256(body).hexdigest()
    return ProviderEvent(f"{event_id}:{payload['type']}", payload["type"], occurred_at, payload)


class SumsubProvider:
    name = "sumsub"

    def case_submitted(self, *, case: KycCase) -> None:
        if not case.provider_applicant_id:
            KycCase.objects.filter(pk=case.pk, provider_applicant_id="").update(provider_applicant_id=f"sim-{case.pk}")


DEFAULT_RETRY_MESSAGE = "Some of your documents could not be accepted. Please upload clearer copies."
DEFAULT_FINAL_MESSAGE = "We are unable to verify your identity."


def handle_event(event) -> str:
    """Apply a stored, verified event to its case. Returns what happened (or "ignored: why")."""
    from kyc.services import kyc_case_approve, kyc_case_reject, kyc_case_request_resubmission, kyc_case_start_review

    payload = event.payload
    case = (
        KycCase.objects.select_for_update()
        .filter(provider="sumsub", provider_applicant_id=payload["applicantId"])
        .order_by("-created_at")
        .first()
    )
    if case is None:
        return "ignored: no case for this applicant"
    if case.last_provider_event_at and event.occurred_at and event.occurred_at <= case.last_provider_event_at:
        return "ignored: older than the last event applied"
    result = payload.get("reviewResult") or {}
    answer, reject_type = result.get("reviewAnswer"), result.get("reviewRejectType")
    message = result.get("moderationComment") or result.get("clientComment") or ""
    labels = result.get("rejectLabels") or []
    state = case.state
    outcome = "ignored: nothing to do in state " + state
    if event.event_type == "applicantPending" and state == KycCase.State.SUBMITTED:
        kyc_case_start_review(case=case, reviewer=None)
        outcome = "review started"
    elif event.event_type == "applicantReviewed":
        open_states = (KycCase.State.SUBMITTED, KycCase.State.IN_REVIEW)
        if answer == "GREEN" and state in open_states:
            kyc_case_approve(case=case, reviewer=None, reason="provider: GREEN")
            outcome = "approved"
        elif answer == "RED" and reject_type == "RETRY" and state in open_states:
            kyc_case_request_resubmission(
                case=case,
                reviewer=None,
                client_message=message or DEFAULT_RETRY_MESSAGE,
                reason=f"provider: RED/RETRY {labels}",
            )
            outcome = "resubmission requested"
        elif answer == "RED" and (state in open_states or state == KycCase.State.APPROVED):
            # FINAL, or any negative result after an approval: the approval no longer stands.
            kyc_case_reject(
                case=case,
                reviewer=None,
                reason=f"provider: RED/{reject_type} {labels}",
                client_message=message or DEFAULT_FINAL_MESSAGE,
            )
            outcome = "rejected"
    if not outcome.startswith("ignored"):
        with transaction.atomic():
            KycCase.objects.filter(pk=case.pk).update(last_provider_event_at=event.occurred_at, reject_labels=labels)
    return outcome
