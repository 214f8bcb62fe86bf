"""The project package: settings, URLs, the Celery app, WSGI/ASGI. It imports the apps; no app imports it."""

from brokerage.celery import app as celery_app

__all__ = ["celery_app"]
