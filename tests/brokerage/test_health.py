from __future__ import annotations

import pytest

from brokerage import health

pytestmark = pytest.mark.django_db


def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_dependency(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {name: "ok" for name in health.READINESS_CHECKS}


def test_readyz_names_what_is_down_with_503_and_no_stack_trace(client, monkeypatch):
    def broker_down() -> None:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setitem(health.READINESS_CHECKS, "broker", broker_down)

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["checks"]["broker"] == "down: ConnectionRefusedError"
    assert body["checks"]["database"] == "ok"
    assert "Traceback" not in response.content.decode()


def test_readyz_sees_an_unreachable_redis_broker(client, settings):
    from brokerage.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = original

    assert response.status_code == 503
    assert response.json()["down"] == ["broker"]
