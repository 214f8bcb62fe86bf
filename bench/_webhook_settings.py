"""Bench-only settings for bench/webhooks.py: the real project settings, plus the two baseline views in the URLs.

DEBUG stays off (a DEBUG process keeps every SQL query in memory and answers slower) and logging is quiet, so the
figures are those of a production-like process. Nothing else changes: same middleware, same database settings.
"""

from brokerage.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench._webhook_urls"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "level": "ERROR"}},
    "root": {"handlers": ["console"], "level": "ERROR"},
}
