"""The PSPs' door: `/webhooks/psp/<provider>/`. Verify -> record once -> 200 -> process in a task."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from core.webhooks import webhook_door, webhook_record, webhook_reject
from payments.psp import WebhookInvalid, provider_for

MAX_BODY = 256 * 1024


@webhook_door
@require_POST
def psp_webhook(request: HttpRequest, provider: str) -> JsonResponse:
    try:
        psp = provider_for(provider)
    except ValueError:
        return JsonResponse({"error": "unknown provider"}, status=404)
    body = request.body
    remote = request.META.get("REMOTE_ADDR")
    if len(body) > MAX_BODY:
        webhook_reject(
            source="psp", provider=provider, reason="body too large", body=body[:MAX_BODY], remote_addr=remote
        )
        return JsonResponse({"error": "too large"}, status=413)
    try:
        event = psp.parse_webhook(body=body, headers=request.headers)
    except WebhookInvalid as exc:
        webhook_reject(source="psp", provider=provider, reason=str(exc), body=body, remote_addr=remote)
        return JsonResponse({"error": "rejected"}, status=400)
    stored, created = webhook_record(
        source="psp",
        provider=provider,
        event_id=event.event_id,
        event_type=event.event_type,
        payload=event.payload,
        occurred_at=event.occurred_at,
    )
    return JsonResponse({"status": "accepted" if created else "duplicate", "id": stored.pk})


def handle_event(stored) -> str:
    """Inbox handler (settings.WEBHOOK_HANDLERS): apply a stored PSP event to its deposit; a credited deposit is
    screened (AML) after commit, once, on the low-priority path (see `deposit_apply_psp_event`)."""
    from payments.services import deposit_apply_psp_event

    event = provider_for(stored.provider).event_from_payload(stored.payload)
    return deposit_apply_psp_event(provider=stored.provider, event=event, screen_aml=True)
