"""A real Celery worker process, a real Redis broker, and the task's effect seen in the database."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from celery import Celery
from django.contrib.sessions.models import Session
from django.utils import timezone

from tests.workers import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_worker_process_runs_a_task_from_redis_and_writes_the_database(postgres, redis_url, tmp_path):
    queue = f"default-test-{os.getpid()}"
    Session.objects.create(session_key="e" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1))
    Session.objects.create(session_key="f" * 32, session_data="", expire_date=timezone.now() + timedelta(days=1))
    with celery_worker(queue=queue, broker_url=redis_url, env={"VAR_DIR": str(tmp_path)}) as worker:
        # Not the current app: shared tasks anywhere else in this process would follow it and skip eager mode.
        sender = Celery(broker=redis_url, set_as_current=False)
        sender.send_task("crm.sessions_clear_expired", queue=queue)
        worker.wait_until(lambda: not Session.objects.filter(session_key="e" * 32).exists(), what="run the task")
    output = worker.output

    assert list(Session.objects.values_list("session_key", flat=True)) == ["f" * 32]
    assert "crm.sessions_clear_expired" in output
    assert "succeeded" in output
