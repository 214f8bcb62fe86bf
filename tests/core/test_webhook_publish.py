"""The webhook door publishes its task with Celery's own message builder, bypassing `apply_async`: the message must be
the one `apply_async` would send, and a real worker must run it."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from core import webhooks
from core.models import WebhookEvent
from core.tasks import webhook_process
from tests.workers import celery_worker


def _take(app, queue: str):
    """The next message on `queue`, read back through kombu (whatever the configured transport)."""
    with app.connection_for_read() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            message = simple.get(block=True, timeout=5)
            message.ack()
            return message
        finally:
            simple.close()


@pytest.fixture
def fresh_door(monkeypatch):
    """The door's per-process state as a new process has it."""
    monkeypatch.setattr(webhooks, "_door", threading.local())
    monkeypatch.setattr(webhooks, "_DECLARED_QUEUES", set())


def test_the_door_sends_the_message_apply_async_would(monkeypatch, fresh_door):
    app = webhook_process.app
    assert not app.conf.task_always_eager
    door, reference = f"door-{uuid.uuid4().hex[:8]}", f"ref-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(webhooks.QUEUES, "psp", door)
    event = WebhookEvent(pk=424242, source="psp", provider="sandbox", event_id="evt_1")

    webhooks._enqueue(event)  # the first publish declares the queue
    webhooks._enqueue(event)  # later ones skip declaring it
    with app.connection_for_write() as conn:
        webhook_process.apply_async((event.pk,), queue=reference, connection=conn)

    sent = [_take(app, door), _take(app, door)]
    expected = _take(app, reference)
    for message in sent:
        assert message.decode() == expected.decode() == [[424242], {}, {"callbacks": None, "errbacks": None,
                                                                        "chain": None, "chord": None}]  # fmt: skip
        ids = ("id", "root_id")
        assert {k: v for k, v in message.headers.items() if k not in ids} == {
            k: v for k, v in expected.headers.items() if k not in ids
        }
        assert message.headers["argsrepr"] == "(424242,)" and message.headers["kwargsrepr"] == "{}"
        assert message.content_type == expected.content_type == "application/json"
        assert {k: v for k, v in message.properties.items() if k not in ("correlation_id", "delivery_tag")} == {
            k: v for k, v in expected.properties.items() if k not in ("correlation_id", "delivery_tag")
        } | {"delivery_info": message.properties["delivery_info"]}
        assert message.delivery_info["routing_key"] == door
    assert sent[0].headers["id"] != sent[1].headers["id"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_runs_what_the_door_published_through_redis(postgres, redis_url, monkeypatch, fresh_door):
    app = webhook_process.app
    queue = f"payments-test-{os.getpid()}"
    monkeypatch.setitem(webhooks.QUEUES, "psp", queue)
    for name, value in (("broker_url", redis_url), ("broker_transport", "brokerage.celery:RedisTransport")):
        monkeypatch.setitem(app.conf, name, value)  # restored (or removed) after the test
    event = WebhookEvent.objects.create(
        source="psp", provider="sandbox", event_id=f"evt_{uuid.uuid4().hex}", event_type="payment.succeeded",
        payload={"id": "x", "type": "payment.succeeded", "data": {"reference": "sbx_nobody", "status": "succeeded",
                 "amount": "10.00", "currency": "USD"}},
    )  # fmt: skip
    webhooks._enqueue(event)

    with celery_worker(queue=queue, broker_url=redis_url) as worker:
        worker.wait_until(
            lambda: WebhookEvent.objects.get(pk=event.pk).status != WebhookEvent.Status.RECEIVED, what="process it"
        )
    output = worker.output

    event.refresh_from_db()
    assert event.attempts == 1 and event.status in (WebhookEvent.Status.IGNORED, WebhookEvent.Status.FAILED), output
    assert "core.webhook_process" in output and "succeeded" in output
