from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from crm.services import client_register, sessions_clear_expired
from tests.crm.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_client_register_is_idempotent_and_keeps_the_first_referral_code():
    user = UserFactory()

    first = client_register(user=user, referral_code="FIRST-CODE")
    second = client_register(user=user, referral_code="OTHER-CODE")

    assert first.pk == second.pk
    second.refresh_from_db()
    assert second.referral_code == "FIRST-CODE"


def test_sessions_clear_expired_deletes_only_expired_sessions():
    now = timezone.now()
    Session.objects.create(session_key="a" * 32, session_data="", expire_date=now - timedelta(seconds=1))
    Session.objects.create(session_key="b" * 32, session_data="", expire_date=now + timedelta(hours=1))

    assert sessions_clear_expired() == 1
    assert sessions_clear_expired() == 0
    assert list(Session.objects.values_list("session_key", flat=True)) == ["b" * 32]


def test_sessions_clear_expired_task_runs_the_service(celery_eager):
    from crm.tasks import sessions_clear_expired as task

    Session.objects.create(session_key="c" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1))

    assert task.delay().get() == 1
    assert Session.objects.count() == 0
