"""Celery doors of payments."""

from __future__ import annotations

from celery import shared_task

from core.errors import RetryableError
from core.tasks import LOW_PRIORITY, RETRYING


@shared_task(name="payments.deposit_aml_check", **RETRYING)
def deposit_aml_check(deposit_id: int) -> int:
    from kyc.services.aml import aml_evaluate
    from payments.aml import deposit_fact_window
    from payments.models import Deposit

    deposit = Deposit.objects.select_related("user").get(pk=deposit_id)
    return len(aml_evaluate(window=deposit_fact_window(deposit=deposit)))


def deposit_aml_check_schedule(deposit_id: int) -> None:
    """Screen a credited deposit once its transaction commits, behind the money path (core.tasks.LOW_PRIORITY)."""
    from django.db import transaction

    transaction.on_commit(lambda: deposit_aml_check.apply_async((deposit_id,), priority=LOW_PRIORITY))


@shared_task(name="payments.deposits_settle_transfers")
def deposits_settle_transfers() -> dict:
    """Settle everything waiting on an MT5 balance operation: deposits to accounts, transfers, and reversals taking
    money back from MT5."""
    from payments.services import deposit_reversals_settle, transfers_settle
    from payments.services import deposits_settle_transfers as settle_deposits

    return {"deposits": settle_deposits(), "transfers": transfers_settle(), "reversals": deposit_reversals_settle()}


@shared_task(name="payments.sandbox_deliver_webhook", **RETRYING)
def sandbox_deliver_webhook(reference: str, news: dict | None = None) -> int:
    """The sandbox PSP's webhook sender: POST the signed event over HTTP, retry until the CRM says 2xx."""
    import requests

    from payments.models import SandboxPayment
    from payments.psp.sandbox import event_body, signed_headers

    payment = SandboxPayment.objects.get(reference=reference)
    body = event_body(payment, news)
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


@shared_task(name="payments.reconcile_all", time_limit=1800)
def reconcile_all() -> dict:
    """Nightly: every PSP over the last two days, every active trade server after a deal import."""
    from django.conf import settings

    from mt5bridge.manager_api import MT5Error
    from mt5bridge.models import TradeServer
    from mt5bridge.services import deals_import
    from payments.psp import provider_for
    from payments.services.reconciliation import reconcile_mt5, reconcile_psp

    done = {}
    for provider in settings.PSP_PROVIDERS:
        try:
            provider_for(provider).fetch_status  # noqa: B018 - an unconfigured provider raises here
        except ValueError as exc:
            done[provider] = f"skipped: {exc}"
            continue
        if provider == "wire":
            done[provider] = "skipped: reconciled by Finance against the bank statement"
            continue
        done[provider] = reconcile_psp(provider=provider).discrepancies
    for server in TradeServer.objects.filter(is_active=True, kind="live"):
        try:
            deals_import(server=server)
        except MT5Error as exc:
            done[server.name] = f"deal import failed: {exc}"
            continue
        done[server.name] = reconcile_mt5(server=server).discrepancies
    return done


@shared_task(name="payments.aml_nightly", time_limit=3600)
def aml_nightly() -> int:
    """Run the AML rules over every client who moved money in the last month; returns the alerts raised.

    Not scheduled: `analytics.nightly` runs the rules after each night's build, with the clients' trading activity
    from the day tables. This one reads deposits and withdrawals only (no trading), for an on-demand run.
    """
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db.models import Q
    from django.utils import timezone

    from kyc.services.aml import aml_evaluate
    from payments.aml import client_fact_window

    since = timezone.now() - timedelta(days=31)
    users = (
        get_user_model()
        .objects.filter(Q(deposits__created_at__gte=since) | Q(withdrawals__created_at__gte=since))
        .distinct()
    )
    return sum(len(aml_evaluate(window=client_fact_window(user=user))) for user in users.iterator())
