"""The webhook inbox every provider-facing app uses: record once, acknowledge, process in a task, replay on demand.

Handlers are named in settings.WEBHOOK_HANDLERS[source][provider] (a dotted path to `handler(event) -> str`), so
this module imports no app. A handler runs inside one transaction with the event row: either its effects and the
`done` status commit together, or neither does and the event is `failed` with the error, ready for a retry.

Webhook views marked with `webhook_door` are served by `WebhookLaneMiddleware`, which skips the browser-facing
middleware (sessions, auth, messages, CSRF, CSP, allauth, staff MFA) that a signed server-to-server call never uses.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from celery.utils import uuid
from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from core.db import insert_unless_taken
from core.models import WebhookEvent, WebhookRejection

logger = logging.getLogger(__name__)
QUEUES = {"kyc": "kyc", "psp": "payments"}
IGNORED = "ignored"  # a handler returns this (or "ignored: why") when the event needs no action


def webhook_record(
    *, source: str, provider: str, event_id: str, event_type: str, payload: dict, occurred_at: datetime | None = None
) -> tuple[WebhookEvent, bool]:
    """Store a verified event; returns (event, created). A duplicate returns the first row and schedules nothing.

    One statement, `INSERT ... ON CONFLICT DO NOTHING RETURNING` on the event's unique key (PostgreSQL, and SQLite
    >= 3.35): outside a transaction (a webhook view) it is its own transaction, committed when it returns; inside a
    caller's transaction a duplicate needs no savepoint, since nothing fails. The processing task is enqueued once the
    row is committed (at once in autocommit).
    """
    event = WebhookEvent(
        source=source,
        provider=provider,
        event_id=event_id[:200],
        event_type=event_type[:100],
        payload=payload,
        occurred_at=occurred_at,
    )
    if not insert_unless_taken(event, unique=("source", "provider", "event_id")):  # uniq_webhook_event
        return WebhookEvent.objects.get(source=source, provider=provider, event_id=event.event_id), False
    transaction.on_commit(lambda: _enqueue(event))
    return event, True


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
    """Send `core.webhook_process` for the event: the same Celery message `apply_async` sends, built and published
    by Celery's own `amqp.create_task_message` / `send_task_message` with the thread's own producer, which skips
    `apply_async`'s per-call option merging and the producer pool (the webhook door publishes once per request),
    the saferepr of the arguments and, after this process's first publish to a queue, declaring the queue again.
    Eager mode (tests, local runs without a broker) and calls from inside a task (the sweeper: its task ids belong
    in the message) go through `apply_async`."""
    from celery import current_task

    from core.tasks import webhook_process

    queue = QUEUES.get(event.source, "default")
    app = webhook_process.app
    if app.conf.task_always_eager or current_task:
        webhook_process.apply_async((event.pk,), queue=queue)
        return
    # The options `apply_async` takes from the task, and the reprs it would compute with saferepr, given as they
    # come out (tests/core/test_webhook_publish.py compares the two messages); the queue declared by this process's
    # first publish to it (Celery declares it then), not again on every publish.
    task = webhook_process
    message = app.amqp.create_task_message(
        uuid(), task.name, (event.pk,), {}, reply_to=app.thread_oid, time_limit=task.time_limit,
        soft_time_limit=task.soft_time_limit, ignore_result=task.ignore_result,
        argsrepr=f"({event.pk!r},)", kwargsrepr="{}",
    )  # fmt: skip
    declare = [] if queue in _DECLARED_QUEUES else None
    app.amqp.send_task_message(_door_producer(app), webhook_process.name, message, queue=queue, declare=declare)
    _DECLARED_QUEUES.add(queue)


_DECLARED_QUEUES: set[str] = set()
_door = threading.local()


def _door_producer(app):
    """This thread's producer for the webhook door, on a broker connection of its own (opened on first use, kept
    for the life of the process: one per serving thread). Not one of the app's pooled producers: a thread holding
    one of those for good could leave other publishers of the process waiting for the pool."""
    kept = getattr(_door, "producer", None)
    if kept is None or kept[0] != os.getpid():  # a forked child never shares its parent's socket
        kept = _door.producer = (os.getpid(), app.amqp.Producer(app.connection_for_write()))
    return kept[1]


# What processing changes; the payload is never rewritten (nor re-serialised) once stored.
_PROCESSED_FIELDS = ["status", "attempts", "last_error", "outcome", "processed_at", "updated_at"]


class _HandlerFailed(Exception):
    """Carries a handler's exception out of the transaction, so the whole transaction rolls back."""


def webhook_process(*, event_id: int) -> WebhookEvent:
    """Process one stored event exactly once. Safe to call again: done and ignored events are left alone.

    The handler's effects and the `done` status commit in one transaction. A handler that raises rolls that whole
    transaction back (no savepoint around the handler: it would cost two statements per event) and the failure is
    then recorded in a short transaction of its own, unless another worker has meanwhile processed the event.
    """
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.select_for_update().get(pk=event_id)
            if event.status in (WebhookEvent.Status.DONE, WebhookEvent.Status.IGNORED):
                return event
            handler = import_string(settings.WEBHOOK_HANDLERS[event.source][event.provider])
            try:
                outcome = handler(event) or "done"
            except Exception as exc:
                raise _HandlerFailed from exc
            event.attempts += 1
            event.status = WebhookEvent.Status.IGNORED if outcome.startswith(IGNORED) else WebhookEvent.Status.DONE
            event.outcome, event.last_error, event.processed_at = outcome[:200], "", timezone.now()
            event.save(update_fields=_PROCESSED_FIELDS)
        return event
    except _HandlerFailed as failed:  # recorded on the event; the sweeper retries it and staff can replay it
        exc = failed.__cause__
        logger.error("webhook event %s failed", event_id, exc_info=exc)
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        if event.status in (WebhookEvent.Status.DONE, WebhookEvent.Status.IGNORED):
            return event
        event.status, event.last_error = WebhookEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"[:4000]
        event.attempts += 1
        event.save(update_fields=_PROCESSED_FIELDS)
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


def webhook_door(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Mark a provider-facing webhook view: CSRF-exempt (the provider signs its calls instead) and served by
    `WebhookLaneMiddleware` without the browser-facing middleware. The view must not use sessions, users or messages."""
    view = csrf_exempt(view)
    view.webhook_door = True
    return view


class _ViewOnlyHandler(BaseHandler):
    """Django's own request handling (URL resolution, the view, exceptions turned into the project's error responses
    and logged) with no middleware at all."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        self._middleware_chain = convert_exception_to_response(self._get_response)

    def resolve_request(self, request: HttpRequest):
        """The match `WebhookLaneMiddleware` found already (resolving the URL again costs as much as a small view)."""
        match = request.resolver_match or super().resolve_request(request)
        request.resolver_match = match
        return match


class WebhookLaneMiddleware:
    """Serve `webhook_door` views under settings.WEBHOOK_PATH_PREFIXES without the middleware listed after this one.

    Placed after SecurityMiddleware (HTTPS redirect, security headers) and WhiteNoise, so those still apply. What a
    signed server-to-server POST skips, it never uses: sessions and auth (no cookie, no user), messages, CSRF (the
    doors are exempt anyway), CSP and X-Frame-Options (JSON, never rendered in a browser frame), allauth, and the staff
    MFA check (admin paths only). Any other view under the prefixes, or a path that does not resolve, takes the
    full chain as before. That middleware costs about as much as a bare view (see bench/webhooks.py).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefixes = tuple(getattr(settings, "WEBHOOK_PATH_PREFIXES", ("/webhooks/",)))
        self.lane = _ViewOnlyHandler()
        self.lane.load_middleware()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(self.prefixes):
            try:
                match = resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "webhook_door", False):
                request.resolver_match = match
                response = self.lane._middleware_chain(request)
                if not response.streaming and not response.has_header("Content-Length"):
                    response.headers["Content-Length"] = str(len(response.content))  # as CommonMiddleware does
                return response
        return self.get_response(request)
