"""Play the Sumsub-shaped provider: post a signed review result for a case to this server's webhook."""

from __future__ import annotations

import json
import uuid

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kyc.models import KycCase
from kyc.providers.sumsub import sign


class Command(BaseCommand):
    help = "Send a signed applicantReviewed webhook (GREEN, or RED with RETRY/FINAL) for a Sumsub case."

    def add_arguments(self, parser) -> None:
        parser.add_argument("case_id", type=int)
        parser.add_argument("--answer", choices=["GREEN", "RED"], default="GREEN")
        parser.add_argument("--reject-type", choices=["RETRY", "FINAL"], default="RETRY")
        parser.add_argument("--comment", default="")
        parser.add_argument("--url", default=f"{settings.SITE_URL}/webhooks/kyc/sumsub/")

    def handle(self, *args, case_id: int, answer: str, reject_type: str, comment: str, url: str, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError("The provider simulator does not run in production.")
        case = KycCase.objects.filter(pk=case_id, provider="sumsub").exclude(provider_applicant_id="").first()
        if case is None:
            raise CommandError(f"No submitted Sumsub case #{case_id}.")
        result = {"reviewAnswer": answer}
        if answer == "RED":
            result |= {
                "reviewRejectType": reject_type,
                "rejectLabels": ["DOCUMENT_PAGE_MISSING"],
                "moderationComment": comment or "Please upload both sides of your ID.",
            }
        body = json.dumps(
            {
                "applicantId": case.provider_applicant_id,
                "externalUserId": f"case-{case.pk}",
                "correlationId": uuid.uuid4().hex,
                "type": "applicantReviewed",
                "reviewStatus": "completed",
                "createdAtMs": timezone.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                "reviewResult": result,
            }
        ).encode()
        response = requests.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Payload-Digest": sign(body, settings.SUMSUB_WEBHOOK_SECRET),
                "X-Payload-Digest-Alg": "HMAC_SHA256_HEX",
            },
            timeout=10,
        )
        self.stdout.write(f"{response.status_code} {response.text}")
