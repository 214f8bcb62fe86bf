"""Errors every app may raise. Doors turn them into a message a person can act on, never a stack trace."""

from __future__ import annotations


class ApplicationError(Exception):
    """A business rule said no. `message` is safe to show to the user who asked; `extra` is for logs and APIs."""

    def __init__(self, message: str, *, code: str = "invalid", extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}


class RetryableError(Exception):
    """A call to the outside world failed in a way that may succeed later (network, timeout, 5xx).

    Celery tasks built with `core.tasks.RETRYING` retry on it with exponential backoff and jitter; any other error
    is terminal and fails the task at once.
    """
