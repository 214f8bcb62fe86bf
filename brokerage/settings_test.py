"""Test settings: the normal settings with a fast hasher, local memory cache and mail, and a broker in memory.

Tasks are not eager here: a test that wants a task to run asks for it (see tests/conftest.py), so the suite also
proves that work is enqueued after commit rather than done inline by accident.
"""

import os

os.environ.setdefault("DJANGO_ENV", "test")

from brokerage.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
