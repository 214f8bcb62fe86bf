"""The KYC providers' door: `/webhooks/kyc/<provider>/`. Verify -> record -> 200 -> process in a task."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.webhooks import webhook_record, webhook_reject
from kyc.providers import sumsub

PARSERS = {"sumsub": sumsub.parse_webhook}
MAX_BODY = 1024 * 1024


@csrf_exempt
@require_POST
def kyc_webhook(request: HttpRequest, provider: str) -> JsonResponse:
    parse = PARSERS.get(provider)
    if parse is None:
        return JsonResponse({"error": "unknown provider"}, status=404)
    body = request.body[: MAX_BODY + 1]
    if len(body) > MAX_BODY:
        webhook_reject(
            source="kyc",
            provider=provider,
            reason="body too large",
            body=body,
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
        return JsonResponse({"error": "too large"}, status=413)
    try:
        event = parse(body=body, headers=request.headers)
    except sumsub.WebhookInvalid as exc:
        webhook_reject(
            source="kyc", provider=provider, reason=str(exc), body=body, remote_addr=request.META.get("REMOTE_ADDR")
        )
        # The reason goes to the audit log, not to the caller: a forger learns nothing from it.
        return JsonResponse({"error": "rejected"}, status=400)
    stored, created = webhook_record(
        source="kyc",
        provider=provider,
        event_id=event.event_id,
        event_type=event.event_type,
        payload=event.payload,
        occurred_at=event.occurred_at,
    )
    return JsonResponse({"status": "accepted" if created else "duplicate", "id": stored.pk})
