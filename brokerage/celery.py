"""The Celery application: queues by concern, JSON only, late acks, time limits, schedules from settings."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerage.settings")

app = Celery("brokerage")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_configure.connect
def _declare_queues(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    sender.conf.task_queues = [Queue(name, routing_key=name) for name in settings.CELERY_TASK_QUEUES_NAMES]


app.autodiscover_tasks()
