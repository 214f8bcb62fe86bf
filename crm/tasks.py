from celery import shared_task

from core.tasks import RETRYING


@shared_task(name="crm.sessions_clear_expired", queue="default", **RETRYING)
def sessions_clear_expired() -> int:
    from crm.services import sessions_clear_expired as clear

    return clear()
