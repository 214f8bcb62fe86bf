"""A real Celery worker process for the tests that need one (marker `worker`): it consumes one queue from a real
broker and works on this test's PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.output = ""

    def wait_until(self, done: Callable[[], bool], *, what: str, timeout: float = 60) -> None:
        """Poll `done` until it holds; fail with the worker's output if the worker dies or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not done():
            assert self.process.poll() is None, self.process.stdout.read()
            assert time.monotonic() < deadline, f"the worker did not {what} within {timeout:.0f} s"
            time.sleep(0.2)


@contextmanager
def celery_worker(*, queue: str, broker_url: str, env: dict | None = None) -> Iterator[Worker]:
    """Run `celery -A brokerage worker` (solo pool) on `queue`; its output is in `.output` once the block ends."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "brokerage.settings",
        "DJANGO_ENV": "local",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker_url,
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "brokerage", "worker", "--queues", queue, "--pool", "solo",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker = Worker(process)
    try:
        yield worker
    finally:
        process.terminate()
        worker.output, _ = process.communicate(timeout=30)
