"""Sumsub-shaped webhooks through HTTP: forged, stale, replayed, duplicated, out of order, RETRY after GREEN."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import WebhookEvent, WebhookRejection
from core.webhooks import webhook_process
from kyc.models import KycCase
from kyc.providers.sumsub import sign
from kyc.services import client_compliance, kyc_case_submit
from tests.kyc.conftest import onboard

pytestmark = pytest.mark.django_db
URL = "/webhooks/kyc/sumsub/"


@pytest.fixture
def sumsub_case(settings, client_user, django_capture_on_commit_callbacks, celery_eager):
    settings.KYC_PROVIDER = "sumsub"
    case = onboard(client_user)
    with django_capture_on_commit_callbacks(execute=True):
        kyc_case_submit(case=case, user=client_user)
    case = KycCase.objects.get(pk=case.pk)
    assert case.provider_applicant_id == f"sim-{case.pk}"
    return case


def _body(case, answer="GREEN", reject_type=None, *, age=timedelta(0), event_type="applicantReviewed", **extra):
    result = {"reviewAnswer": answer}
    if reject_type:
        result |= {
            "reviewRejectType": reject_type,
            "rejectLabels": ["BAD_SELFIE"],
            "moderationComment": "Retake the selfie.",
        }
    payload = {
        "applicantId": case.provider_applicant_id,
        "correlationId": uuid.uuid4().hex,
        "type": event_type,
        "reviewStatus": "completed",
        "createdAtMs": (timezone.now() - age).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        "reviewResult": result,
        **extra,
    }
    return json.dumps(payload).encode()


SECRET = "local-sumsub-secret"


def _post(client, body, *, secret=SECRET, alg="HMAC_SHA256_HEX", digest=None):
    return client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={"X-Payload-Digest": digest or sign(body, secret, alg), "X-Payload-Digest-Alg": alg},
    )


def _deliver(client, body, capture):
    with capture(execute=False) as callbacks:
        response = _post(client, body)
    for event in WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED):
        webhook_process(event_id=event.pk)
    return response, callbacks


def test_green_is_recorded_acknowledged_then_approves(client, sumsub_case, django_capture_on_commit_callbacks):
    response, callbacks = _deliver(client, _body(sumsub_case), django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert len(callbacks) == 1  # processing is a task, after the row is committed
    assert KycCase.objects.get(pk=sumsub_case.pk).state == KycCase.State.APPROVED
    assert client_compliance(user=sumsub_case.user).level.code == "identity"
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.DONE


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": "wrong-secret"}, "bad signature"),
        ({"digest": "00" * 32}, "bad signature"),
        ({"alg": "HMAC_SHA1_HEX", "digest": "ab" * 20}, "refused"),
    ],
)
def test_forged_calls_are_refused_logged_and_change_nothing(client, sumsub_case, kwargs, reason):
    response = _post(client, _body(sumsub_case), **kwargs)

    assert response.status_code == 400
    assert response.json() == {"error": "rejected"}  # the reason is for the audit log, not for the forger
    assert not WebhookEvent.objects.exists()
    assert WebhookRejection.objects.get().reason.find(reason) >= 0
    assert KycCase.objects.get(pk=sumsub_case.pk).state == KycCase.State.SUBMITTED


def test_stale_and_malformed_events_are_refused(client, sumsub_case):
    stale = _post(client, _body(sumsub_case, age=timedelta(hours=2)))
    garbage_body = b"{not json"
    garbage = _post(client, garbage_body)

    assert (stale.status_code, garbage.status_code) == (400, 400)
    assert "stale" in WebhookRejection.objects.order_by("received_at").first().reason
    assert not WebhookEvent.objects.exists()
    assert WebhookRejection.objects.count() == 2


def test_a_replayed_event_is_stored_once_and_acts_once(client, sumsub_case, django_capture_on_commit_callbacks):
    body = _body(sumsub_case)
    _deliver(client, body, django_capture_on_commit_callbacks)
    second, callbacks = _deliver(client, body, django_capture_on_commit_callbacks)

    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert callbacks == []
    assert WebhookEvent.objects.count() == 1


def test_retry_asks_for_resubmission_with_the_providers_message(
    client, sumsub_case, django_capture_on_commit_callbacks
):
    _deliver(client, _body(sumsub_case, "RED", "RETRY"), django_capture_on_commit_callbacks)

    case = KycCase.objects.get(pk=sumsub_case.pk)
    assert case.state == KycCase.State.RESUBMISSION_REQUESTED
    assert case.client_message == "Retake the selfie."
    assert case.reject_labels == ["BAD_SELFIE"]


def test_retry_after_green_withdraws_the_approval(client, sumsub_case, django_capture_on_commit_callbacks):
    _deliver(client, _body(sumsub_case, age=timedelta(seconds=30)), django_capture_on_commit_callbacks)
    _deliver(client, _body(sumsub_case, "RED", "RETRY"), django_capture_on_commit_callbacks)

    assert KycCase.objects.get(pk=sumsub_case.pk).state == KycCase.State.REJECTED
    assert client_compliance(user=sumsub_case.user).level.code == "registered"


def test_an_older_event_arriving_late_is_ignored(client, sumsub_case, django_capture_on_commit_callbacks):
    newer = _body(sumsub_case, "RED", "FINAL", age=timedelta(seconds=10))
    older = _body(sumsub_case, "GREEN", age=timedelta(seconds=60))
    _deliver(client, newer, django_capture_on_commit_callbacks)
    _deliver(client, older, django_capture_on_commit_callbacks)

    assert KycCase.objects.get(pk=sumsub_case.pk).state == KycCase.State.REJECTED
    late = WebhookEvent.objects.get(payload__reviewResult__reviewAnswer="GREEN")
    assert (late.status, late.outcome) == (WebhookEvent.Status.IGNORED, "ignored: older than the last event applied")


def test_unknown_event_types_and_applicants_are_recorded_and_ignored(
    client, sumsub_case, django_capture_on_commit_callbacks
):
    _deliver(client, _body(sumsub_case, event_type="applicantPersonalInfoChanged"), django_capture_on_commit_callbacks)

    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.IGNORED
    assert KycCase.objects.get(pk=sumsub_case.pk).state == KycCase.State.SUBMITTED


def test_a_failing_handler_marks_the_event_failed_and_a_replay_processes_it(
    client, sumsub_case, monkeypatch, django_capture_on_commit_callbacks
):
    import kyc.providers.sumsub as sumsub

    original = sumsub.handle_event
    monkeypatch.setattr(sumsub, "handle_event", lambda event: 1 / 0)
    _deliver(client, _body(sumsub_case), django_capture_on_commit_callbacks)
    event = WebhookEvent.objects.get()
    assert (event.status, event.last_error) == (WebhookEvent.Status.FAILED, "ZeroDivisionError: division by zero")
    assert KycCase.objects.get(pk=sumsub_case.pk).state == KycCase.State.SUBMITTED

    monkeypatch.setattr(sumsub, "handle_event", original)
    from core.webhooks import webhook_replay

    assert webhook_replay(event=event, actor=None).status == WebhookEvent.Status.DONE
    assert KycCase.objects.get(pk=sumsub_case.pk).state == KycCase.State.APPROVED


def test_staff_replay_from_the_admin(client, sumsub_case, monkeypatch, django_capture_on_commit_callbacks):
    import kyc.providers.sumsub as sumsub
    from tests.crm.factories import make_staff

    original = sumsub.handle_event
    monkeypatch.setattr(sumsub, "handle_event", lambda event: 1 / 0)
    _deliver(client, _body(sumsub_case), django_capture_on_commit_callbacks)
    monkeypatch.setattr(sumsub, "handle_event", original)
    officer, _ = make_staff("Compliance")
    client.force_login(officer)
    event = WebhookEvent.objects.get()

    client.post("/admin/core/webhookevent/", {"action": "replay", "_selected_action": [event.pk]})

    assert WebhookEvent.objects.get().status == WebhookEvent.Status.DONE
    assert KycCase.objects.get(pk=sumsub_case.pk).state == KycCase.State.APPROVED
