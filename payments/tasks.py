"""Celery doors of payments."""

from __future__ import annotations

from celery import shared_task

from core.errors import RetryableError
from core.tasks import RETRYING


@shared_task(name="payments.deposit_aml_check", **RETRYING)
def deposit_aml_check(deposit_id: int) -> int:
    from kyc.services.aml import aml_evaluate
    from payments.aml import deposit_fact_window
    from payments.models import Deposit

    return len(aml_evaluate(window=deposit_fact_window(deposit=Deposit.objects.get(pk=deposit_id))))


@shared_task(name="payments.deposits_settle_transfers")
def deposits_settle_transfers() -> dict:
    """Settle everything waiting on an MT5 balance operation: deposits to accounts and transfers."""
    from payments.services import deposits_settle_transfers as settle_deposits
    from payments.services import transfers_settle

    return {"deposits": settle_deposits(), "transfers": transfers_settle()}


@shared_task(name="payments.sandbox_deliver_webhook", **RETRYING)
def sandbox_deliver_webhook(reference: str) -> int:
    """The sandbox PSP's webhook sender: POST the signed event over HTTP, retry until the CRM says 2xx."""
    import requests

    from payments.models import SandboxPayment
    from payments.psp.sandbox import event_body, signed_headers

    payment = SandboxPayment.objects.get(reference=reference)
    body = event_body(payment)
    try:
        response = requests.post(
            payment.webhook_url,
            data=body,
            headers={"Content-Type": "application/json", **signed_headers(body)},
            timeout=10,
        )
    except requests.RequestException as exc:
        raise RetryableError(f"webhook delivery failed: {exc}") from exc
    if response.status_code >= 300:
        raise RetryableError(f"webhook answered {response.status_code}")
    return response.status_code


@shared_task(name="payments.withdrawal_pay_out", **RETRYING)
def withdrawal_pay_out(withdrawal_id: int) -> str:
    from payments.services.withdrawals import withdrawal_pay_out as pay_out

    return pay_out(withdrawal_id=withdrawal_id).state
