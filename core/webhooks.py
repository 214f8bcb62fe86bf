"""The webhook inbox every provider-facing app uses: record once, acknowledge, process in a task, replay on demand.

Handlers are named in settings.WEBHOOK_HANDLERS[source][provider] (a dotted path to `handler(event) -> str`), so
this module imports no app. A handler runs inside one transaction with the event row: either its effects and the
`done` status commit together, or neither does and the event is `failed` with the error, ready for a retry.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from core.models import WebhookEvent, WebhookRejection

logger = logging.getLogger(__name__)
QUEUES = {"kyc": "kyc", "psp": "payments"}
IGNORED = "ignored"  # a handler returns this (or "ignored: why") when the event needs no action


def webhook_record(
    *, source: str, provider: str, event_id: str, event_type: str, payload: dict, occurred_at: datetime | None = None
) -> tuple[WebhookEvent, bool]:
    """Store a verified event; returns (event, created). A duplicate returns the first row and schedules nothing."""
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                source=source,
                provider=provider,
                event_id=event_id[:200],
                event_type=event_type[:100],
                payload=payload,
                occurred_at=occurred_at,
            )
            transaction.on_commit(lambda: _enqueue(event))
            return event, True
    except IntegrityError:
        return WebhookEvent.objects.get(source=source, provider=provider, event_id=event_id[:200]), False


def webhook_reject(*, source: str, provider: str, reason: str, body: bytes, remote_addr: str | None) -> None:
    logger.warning("webhook %s/%s rejected: %s", source, provider, reason)
    WebhookRejection.objects.create(
        source=source,
        provider=provider,
        reason=reason[:200],
        remote_addr=remote_addr,
        body_sha256=hashlib.sha256(body).hexdigest(),
        body_size=len(body),
    )


def _enqueue(event: WebhookEvent) -> None:
    from core.tasks import webhook_process

    webhook_process.apply_async((event.pk,), queue=QUEUES.get(event.source, "default"))


def webhook_process(*, event_id: int) -> WebhookEvent:
    """Process one stored event exactly once. Safe to call again: done and ignored events are left alone."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        if event.status in (WebhookEvent.Status.DONE, WebhookEvent.Status.IGNORED):
            return event
        handler = import_string(settings.WEBHOOK_HANDLERS[event.source][event.provider])
        try:
            with transaction.atomic():
                outcome = handler(event) or "done"
        except Exception as exc:  # recorded on the event; the sweeper retries it and staff can replay it
            event.status, event.last_error = WebhookEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"[:4000]
            event.attempts += 1
            event.save()
            logger.exception("webhook event %s failed", event.pk)
            return event
        event.attempts += 1
        event.status = WebhookEvent.Status.IGNORED if outcome.startswith(IGNORED) else WebhookEvent.Status.DONE
        event.outcome, event.last_error, event.processed_at = outcome[:200], "", timezone.now()
        event.save()
    return event


def webhook_replay(*, event: WebhookEvent, actor) -> WebhookEvent:
    """Staff action: process a failed (or stuck) event again."""
    if event.status in (WebhookEvent.Status.DONE, WebhookEvent.Status.IGNORED):
        return event
    WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED)
    logger.info("webhook event %s replayed by %s", event.pk, getattr(actor, "pk", None))
    return webhook_process(event_id=event.pk)


def webhook_events_sweep(*, max_attempts: int = 8) -> int:
    """Re-queue events left received (lost task) or failed (transient error) for a while. Returns how many."""
    cutoff = timezone.now() - timedelta(minutes=1)
    stuck = WebhookEvent.objects.filter(
        status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED, WebhookEvent.Status.PROCESSING],
        updated_at__lt=cutoff,
        attempts__lt=max_attempts,
    )
    count = 0
    for event in stuck:
        _enqueue(event)
        count += 1
    return count
