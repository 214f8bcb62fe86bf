"""Defaults every Celery task of the project shares: retry only what may succeed later, with backoff and jitter."""

from core.errors import RetryableError

RETRYING = {
    "autoretry_for": (RetryableError,),
    "retry_backoff": 2,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
}
