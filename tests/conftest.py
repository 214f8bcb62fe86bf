"""Fixtures shared by the whole suite.

Services this machine may or may not run (Redis, PostgreSQL, Chromium) are probed once. Tests that need one skip
with the reason on a newcomer's laptop; CI sets REQUIRE_SERVICES=1 so that there a missing service fails the run
instead of quietly skipping the tests that matter most.
"""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.db import connection

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


def need(condition: bool, reason: str) -> None:
    """Skip (or fail, in CI) a test whose outside dependency is missing."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"CI requires this service: {reason}")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    need(_reachable(REDIS_URL), f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def postgres() -> None:
    need(
        connection.vendor == "postgresql",
        "needs PostgreSQL (set DATABASE_URL): other processes share its test DB",
    )


@pytest.fixture
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    need(bool(path), "Debian's chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture
def celery_eager(settings):
    """Run Celery tasks inline for this test only."""
    from brokerage.celery import app

    app.set_current()  # shared tasks resolve through the current app; make sure it is the project's
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and used TOTP codes live in the cache; no test may inherit another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
