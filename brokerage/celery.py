"""The Celery application: queues by concern, JSON only, late acks, time limits, schedules from settings."""

from __future__ import annotations

import os
from contextlib import contextmanager

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu import Queue
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerage.settings")


class _RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, but publishing through one client per channel instead of a new one per message.

    kombu builds a `redis.Redis` for every LPUSH (its constructor fills a table of ~170 response callbacks): about
    0.2 ms of CPU per published task, more than the LPUSH itself. The client kept here draws its connection from the
    channel's pool exactly as the throwaway one did (so it is as thread- and fork-safe as the pool), and a channel
    whose pool was replaced gets a fresh client.
    """

    _publish_client = None

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client is not None:
            yield client
            return
        pool = self.pool
        kept = self._publish_client
        if kept is None or kept.connection_pool is not pool:
            kept = self._publish_client = self._create_client()
        yield kept


class RedisTransport(kombu_redis.Transport):
    """settings.CELERY_BROKER_TRANSPORT for redis:// brokers (see `_RedisChannel`)."""

    Channel = _RedisChannel


app = Celery("brokerage")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_configure.connect
def _declare_queues(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    sender.conf.task_queues = [Queue(name, routing_key=name) for name in settings.CELERY_TASK_QUEUES_NAMES]
    # Celery reads these on every publish. Through the Django-settings view each read of a setting the project leaves
    # at Celery's default misses twice (CELERY_X, then x) before it reaches the defaults: together ~0.1 ms of CPU per
    # task sent. Settings do not change at run time, so they are copied once into the first map of the view (a test
    # that assigns app.conf.<name> still overrides them).
    sender.conf.update({name: sender.conf[name] for name in _READ_ON_EVERY_PUBLISH})


_READ_ON_EVERY_PUBLISH = (
    "task_always_eager",
    "task_repr_maxlevels",
    "task_serializer",
    "task_send_sent_event",
    "task_default_priority",
    "task_default_rate_limit",
    "task_acks_late",
    "task_ignore_result",
    "broker_pool_acquire_timeout",
)


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """Around a task as around a web request: keep the connection (settings.CONN_MAX_AGE) unless it is too old or
    broken (settings.CELERY_DB_REUSE_MAX keeps Celery from closing it every time). Eager tasks run inside their
    caller's transaction, which must not be touched."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


app.autodiscover_tasks()
