"""Defaults every Celery task of the project shares (retry only what may succeed later, with backoff and jitter),
and the webhook inbox's tasks."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from celery import shared_task
from django.conf import settings

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


_FOLLOW_UP_HERE: ContextVar[bool] = ContextVar("follow_up_here", default=False)


@contextmanager
def follow_up_here() -> Iterator[None]:
    """Mark a task body whose own follow-up work may run in this process, right after its transaction commits,
    instead of in one more task. Services ask `may_follow_up_here()` and decide what that means for them (an MT5
    balance operation is then claimed in the creating transaction and sent by this worker: see
    mt5bridge.services.balance). Only a Celery task's body opens this: a web request must never wait on that work."""
    token = _FOLLOW_UP_HERE.set(True)
    try:
        yield
    finally:
        _FOLLOW_UP_HERE.reset(token)


def may_follow_up_here() -> bool:
    return _FOLLOW_UP_HERE.get()


# A webhook's follow-up may be an MT5 balance operation's send, and the MT5 sweeper takes any send still `sent` after
# settings.MT5_SEND_TIME_LIMIT for one whose worker died: this task must not outlive that limit either.
_FOLLOW_UP_TIME_LIMIT = getattr(settings, "MT5_SEND_TIME_LIMIT", 120)


@shared_task(
    name="core.webhook_process",
    acks_late=True,
    time_limit=_FOLLOW_UP_TIME_LIMIT,
    soft_time_limit=_FOLLOW_UP_TIME_LIMIT - 10,
)
def webhook_process(event_id: int) -> str:
    """One stored event; the money path it starts (a deposit's MT5 balance operation) continues here, after commit,
    rather than behind every other message in the queue."""
    from core.webhooks import webhook_process as process

    with follow_up_here():
        return process(event_id=event_id).status


@shared_task(name="core.webhook_events_sweep", acks_late=True)
def webhook_events_sweep() -> int:
    from core.webhooks import webhook_events_sweep as sweep

    return sweep()
