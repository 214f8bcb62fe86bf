"""A real Celery worker process, a real Redis broker, and the task's effect seen in the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_worker_process_runs_a_task_from_redis_and_writes_the_database(postgres, redis_url, tmp_path):
    queue = f"default-test-{os.getpid()}"
    Session.objects.create(session_key="e" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1))
    Session.objects.create(session_key="f" * 32, session_data="", expire_date=timezone.now() + timedelta(days=1))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "brokerage.settings",
        "DJANGO_ENV": "local",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_url,
        "VAR_DIR": str(tmp_path),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "brokerage",
            "worker",
            "--queues",
            queue,
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Not the current app: shared tasks anywhere else in this process would follow it and skip eager mode.
        sender = Celery(broker=redis_url, set_as_current=False)
        sender.send_task("crm.sessions_clear_expired", queue=queue)

        deadline = time.monotonic() + 60
        while Session.objects.filter(session_key="e" * 32).exists():
            assert worker.poll() is None, worker.stdout.read()
            assert time.monotonic() < deadline, "the worker did not run the task within 60 s"
            time.sleep(0.2)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)

    assert list(Session.objects.values_list("session_key", flat=True)) == ["f" * 32]
    assert "crm.sessions_clear_expired" in output
    assert "succeeded" in output
