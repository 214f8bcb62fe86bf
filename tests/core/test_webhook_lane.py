"""The webhook inbox's fast paths: `webhook_record` enqueues only after its row is committed (with or without a
caller's transaction), and `WebhookLaneMiddleware` serves marked doors without the browser-facing middleware while
everything else keeps the full chain."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.test import Client
from django.urls import path

from brokerage.urls import urlpatterns as project_urlpatterns
from core import webhooks
from core.models import WebhookEvent
from core.webhooks import webhook_door, webhook_record


@webhook_door
def door(request):
    return JsonResponse({"has_user": hasattr(request, "user"), "has_session": hasattr(request, "session")})


@webhook_door
def broken_door(request):
    raise RuntimeError("boom")


def not_a_door(request):
    return JsonResponse({"has_user": hasattr(request, "user")})


def page(request):
    return HttpResponse("ok")


urlpatterns = [
    path("webhooks/test/door/", door),
    path("webhooks/test/broken/", broken_door),
    path("webhooks/test/plain/", not_a_door),
    path("elsewhere/door/", door),
    path("page/", page),
    *project_urlpatterns,  # the error pages and the allauth middleware reverse the project's names
]
handler500 = "portal.views.error_500"


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(webhooks, "_enqueue", lambda event: calls.append(event.pk))
    return calls


def _record(event_id: str = "evt_1"):
    return webhook_record(source="psp", provider="sandbox", event_id=event_id, event_type="payment.succeeded",
                          payload={"id": event_id})  # fmt: skip


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_outside_a_transaction_the_row_is_committed_then_enqueued_once(enqueued):
    event, created = _record()
    duplicate, created_again = _record()

    assert created and not created_again
    assert duplicate.pk == event.pk
    assert enqueued == [event.pk]
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_inside_a_transaction_the_task_waits_for_the_commit_and_a_rollback_sends_nothing(enqueued):
    with transaction.atomic():
        event, created = _record("evt_commit")
        duplicate, created_again = _record("evt_commit")  # nothing fails: the outer transaction stays usable
        assert created and not created_again and duplicate.pk == event.pk
        assert enqueued == []
    assert enqueued == [event.pk]

    with pytest.raises(RuntimeError), transaction.atomic():
        _record("evt_rolled_back")
        raise RuntimeError("the caller fails after recording")
    assert enqueued == [event.pk]
    assert not WebhookEvent.objects.filter(event_id="evt_rolled_back").exists()


@pytest.mark.urls(__name__)
def test_a_marked_door_skips_the_browser_middleware_but_keeps_the_security_headers(client):
    response = client.post("/webhooks/test/door/", data=b"{}", content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"has_user": False, "has_session": False}
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware runs before the lane
    assert response["Content-Length"] == str(len(response.content))
    assert "Content-Security-Policy" not in response
    assert not response.cookies


@pytest.mark.urls(__name__)
def test_other_views_keep_the_full_chain(client):
    strict = Client(enforce_csrf_checks=True)
    under_prefix = strict.post("/webhooks/test/plain/", data=b"{}", content_type="application/json")
    outside_prefix = client.post("/elsewhere/door/", data=b"{}", content_type="application/json")
    page = client.get("/page/")

    assert under_prefix.status_code == 403  # not CSRF-exempt, so the CSRF middleware still guards it
    assert outside_prefix.json() == {"has_user": True, "has_session": True}
    assert "Content-Security-Policy" in page and page["X-Frame-Options"] == "DENY"


@pytest.mark.urls(__name__)
def test_an_error_in_a_door_becomes_the_projects_500_page(client):
    client.raise_request_exception = False

    response = client.post("/webhooks/test/broken/", data=b"{}", content_type="application/json")

    assert response.status_code == 500


@pytest.mark.urls(__name__)
def test_an_unknown_path_under_the_prefix_is_a_normal_404(client):
    response = client.post("/webhooks/test/nowhere/", data=b"{}", content_type="application/json")

    assert response.status_code == 404
