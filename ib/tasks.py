"""Thin Celery tasks of the IB program (queue: routed by the `ib.` prefix in settings). Safe to run twice."""

from celery import shared_task


@shared_task(name="ib.commissions_run", acks_late=True, time_limit=3600, soft_time_limit=3500)
def commissions_run(trigger: str = "scheduled") -> dict:
    from ib.services import commissions_run as run

    done = run(trigger=trigger)
    return {"run": done.pk, "batches": done.batches, "rows": done.rows_created, "cpa": done.cpa_rows_created}


@shared_task(name="ib.payouts_release", acks_late=True, time_limit=1800, soft_time_limit=1700)
def payouts_release() -> int:
    from ib.services import payouts_release_due

    return payouts_release_due()
