"""Defaults every Celery task of the project shares (retry only what may succeed later, with backoff and jitter),
and the webhook inbox's tasks."""

from celery import shared_task

from core.errors import RetryableError

RETRYING = {
    "autoretry_for": (RetryableError,),
    "retry_backoff": 2,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
}

# Work that must happen once but need not happen at once (AML screening of a credited deposit, a cosmetic balance
# snapshot) is published with this priority. On Redis, kombu checks priority 0 (the default) lists of every queue
# before any lower-priority list, so under a burst it never delays the money path (webhook -> MT5 send); it runs as
# soon as that path is idle. Brokers without priorities (the embedded filesystem broker, eager mode) ignore it.
LOW_PRIORITY = 9


@shared_task(name="core.webhook_process", acks_late=True)
def webhook_process(event_id: int) -> str:
    from core.webhooks import webhook_process as process

    return process(event_id=event_id).status


@shared_task(name="core.webhook_events_sweep", acks_late=True)
def webhook_events_sweep() -> int:
    from core.webhooks import webhook_events_sweep as sweep

    return sweep()
