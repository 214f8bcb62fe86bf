"""Deposits: open a checkout at the PSP, apply the PSP's signed outcome once, credit the wallet through the ledger,
and move the money to the chosen MT5 account exactly once.

Network calls never happen inside a transaction: the deposit is recorded first, the PSP is called, and the result
is recorded in a second short transaction.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from core.db import DecimalSum
from core.errors import ApplicationError
from core.fsm import apply_transition
from core.money import CurrencyError, quantize
from kyc.gate import Action, client_may
from mt5bridge.models import TradingAccount
from payments.ledger import Leg, client_wallet, ledger_account, ledger_post
from payments.models import Deposit, LedgerAccount
from payments.psp import PspEvent, provider_for
from payments.services.transfers import wallet_to_account_begin, wallet_to_account_settle

logger = logging.getLogger(__name__)


def _clearing(deposit: Deposit) -> LedgerAccount:
    return ledger_account(kind=LedgerAccount.Kind.PSP_CLEARING, currency=deposit.currency, key=deposit.provider)


def deposited_so_far(*, user, currency: str) -> Decimal:
    done = [Deposit.State.CREDITED, Deposit.State.COMPLETED]
    total = Deposit.objects.filter(user=user, currency=currency, state__in=done).aggregate(t=DecimalSum("amount"))["t"]
    return total or Decimal(0)


def deposit_create(
    *, user, amount, currency: str, provider: str = "sandbox", trading_account: TradingAccount | None = None,
    base_url: str,
) -> Deposit:  # fmt: skip
    """Open a deposit: validate, ask the KYC gate (with the level's total limit), record it, open the PSP checkout.

    Returns the deposit in `pending` with the URL to send the client to. A PSP that cannot open a checkout leaves
    the deposit `failed` with the reason and raises a readable error.
    """
    if currency not in settings.PAYMENTS_CURRENCIES:
        raise ApplicationError(f"We accept deposits in {', '.join(settings.PAYMENTS_CURRENCIES)}.")
    try:
        value = quantize(amount, currency)
    except (ValueError, TypeError, CurrencyError):
        raise ApplicationError("Enter an amount.") from None
    if value < settings.PAYMENTS_MIN_DEPOSIT or value > settings.PAYMENTS_MAX_DEPOSIT:
        raise ApplicationError(
            f"A deposit is between {settings.PAYMENTS_MIN_DEPOSIT} and {settings.PAYMENTS_MAX_DEPOSIT} {currency}."
        )
    if trading_account is not None:
        if trading_account.user_id != user.pk:
            raise ApplicationError("This trading account is not yours.", code="not_found")
        if trading_account.state != TradingAccount.State.PROVISIONED or trading_account.is_demo:
            raise ApplicationError("Deposits go to open live accounts only.")
        if trading_account.currency != currency:
            raise ApplicationError(f"Account {trading_account.login} is in {trading_account.currency}.")
    decision = client_may(
        user=user, action=Action.DEPOSIT, amount=value, deposited_before=deposited_so_far(user=user, currency=currency)
    )
    if not decision.allowed:
        raise ApplicationError(decision.reason, code="gate")
    psp = provider_for(provider)
    deposit = Deposit.objects.create(
        user=user, provider=provider, amount=value, currency=currency, trading_account=trading_account
    )
    try:
        checkout = psp.create_deposit(
            deposit=deposit,
            return_url=base_url + reverse("portal:deposit_detail", args=[deposit.pk]),
            webhook_url=base_url + reverse("psp-webhook", args=[provider]),
        )
    except Exception as exc:  # any PSP failure: record it on the deposit, tell the client plainly
        logger.exception("PSP %s could not open a checkout for deposit %s", provider, deposit.pk)
        with transaction.atomic():
            locked = Deposit.objects.select_for_update().get(pk=deposit.pk)
            locked.failure_reason = f"checkout failed: {type(exc).__name__}"
            apply_transition(locked, "fail", description=locked.failure_reason)
            locked.save()
        raise ApplicationError("The payment page could not be opened. Nothing was charged; please try again.") from exc
    with transaction.atomic():
        locked = Deposit.objects.select_for_update().get(pk=deposit.pk)
        locked.psp_reference, locked.checkout_url = checkout.reference, checkout.redirect_url
        apply_transition(locked, "redirect_to_psp", by=user, description=f"checkout {checkout.reference}")
        locked.save()
    return locked


def deposit_apply_psp_event(*, provider: str, event: PspEvent) -> str:
    """Apply one verified PSP event. Returns what happened. Safe under duplicates and replays: a deposit is credited
    only from `pending` (the state machine), and the ledger posting has its own idempotency key."""
    deposit = (
        Deposit.objects.select_for_update(of=("self",))
        .select_related("trading_account__server")
        .filter(provider=provider, psp_reference=event.reference)
        .first()
    )
    if deposit is None:
        return "ignored: no deposit for this payment"
    if event.status == "declined":
        if deposit.state not in (Deposit.State.CREATED, Deposit.State.PENDING):
            return f"ignored: deposit already {deposit.state}"
        deposit.failure_reason = "declined by the payment provider"
        apply_transition(deposit, "fail", description=deposit.failure_reason)
        deposit.save()
        return "failed"
    if event.status != "succeeded":
        return f"ignored: status {event.status}"
    if deposit.state != Deposit.State.PENDING:
        return f"ignored: deposit already {deposit.state}"
    if (event.amount, event.currency) != (deposit.amount, deposit.currency):
        deposit.failure_reason = f"PSP reported {event.amount} {event.currency}; held for Finance"
        deposit.save(update_fields=["failure_reason", "updated_at"])
        logger.error("deposit %s amount mismatch: %s", deposit.pk, deposit.failure_reason)
        return "ignored: amount mismatch reported"
    deposit.payer_name = event.payer_name[:150]
    apply_transition(deposit, "succeed", description=f"PSP event {event.event_id}")
    ledger_post(
        idempotency_key=f"deposit:{deposit.pk}:credit",
        kind="deposit",
        description=f"Deposit #{deposit.pk} by card",
        legs=[Leg(_clearing(deposit), -deposit.amount), Leg(client_wallet(user=deposit.user, currency=deposit.currency),
                                                            deposit.amount)],
    )  # fmt: skip
    apply_transition(deposit, "credit", description="wallet credited")
    if deposit.trading_account_id:
        _send_to_mt5(deposit)
    deposit.save()
    return "credited"


def _send_to_mt5(deposit: Deposit) -> None:
    deposit.balance_operation = wallet_to_account_begin(
        user=deposit.user,
        account=deposit.trading_account,
        amount=deposit.amount,
        key=f"deposit:{deposit.pk}",
        description=f"Deposit #{deposit.pk} to account {deposit.trading_account.login}",
        label="Deposit",
    )


def deposits_settle_transfers() -> dict[str, int]:
    """Finish deposits whose MT5 transfer settled: confirmed -> `completed`; failed -> the money goes back to the
    wallet (a reversing ledger posting, once) and the deposit stays `credited` with the reason. Safe to run any time."""
    counts = {"completed": 0, "returned": 0}
    waiting = Deposit.objects.filter(state=Deposit.State.CREDITED, balance_operation__isnull=False).values_list(
        "pk", flat=True
    )
    for pk in waiting:
        with transaction.atomic():
            deposit = (
                Deposit.objects.select_for_update(of=("self",))
                .select_related("balance_operation", "trading_account__server", "user")
                .get(pk=pk)
            )
            outcome = wallet_to_account_settle(
                user=deposit.user,
                account=deposit.trading_account,
                amount=deposit.amount,
                operation=deposit.balance_operation,
                key=f"deposit:{deposit.pk}",
                description=f"Deposit #{deposit.pk}: returned to wallet (MT5 refused)",
            )
            if outcome == "completed":
                apply_transition(deposit, "complete", description=f"MT5 deal {deposit.balance_operation.ticket}")
            elif outcome == "returned":
                deposit.failure_reason = "The trading account could not be funded; the money is in your wallet."
                deposit.balance_operation = None
            else:
                continue
            deposit.save()
            counts[outcome] += 1
    return counts


def deposit_confirm_wire(*, deposit: Deposit, actor) -> str:
    """Finance saw the wire on the bank statement: credit it through the same service a PSP confirmation uses."""
    import uuid

    from django.utils import timezone

    if not actor.has_perm("payments.change_deposit"):
        raise ApplicationError("You may not confirm deposits.", code="permission")
    if deposit.provider != "wire":
        raise ApplicationError("Only bank wire deposits are confirmed by hand.")
    event = PspEvent(
        event_id=f"wire-confirm:{uuid.uuid4().hex}", event_type="wire.received", reference=deposit.psp_reference,
        status="succeeded", amount=deposit.amount, currency=deposit.currency, payer_name="",
        occurred_at=timezone.now(), payload={"confirmed_by": actor.pk},
    )  # fmt: skip
    with transaction.atomic():
        outcome = deposit_apply_psp_event(provider="wire", event=event)
    logger.info("wire deposit %s confirmed by %s: %s", deposit.pk, actor.pk, outcome)
    return outcome
