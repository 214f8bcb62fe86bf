"""Deposits: open a checkout at the PSP, apply the PSP's signed outcome once, credit the wallet through the ledger,
and move the money to the chosen MT5 account exactly once.

Network calls never happen inside a transaction: the deposit is recorded first, the PSP is called, and the result
is recorded in a second short transaction.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from core.db import DecimalSum
from core.errors import ApplicationError
from core.fsm import apply_transition
from core.money import CurrencyError, quantize
from kyc.aml.rules import RuleHit
from kyc.gate import Action, client_may
from kyc.services.aml import aml_alerts_raise
from mt5bridge.models import TradingAccount
from payments.fx import fx_quote
from payments.ledger import Leg, client_wallet, ledger_account, ledger_post
from payments.models import Deposit, LedgerAccount
from payments.psp import PspEvent, provider_for
from payments.routing import deposit_route
from payments.services.reversals import deposit_reinstate, deposit_reverse, fx_legs
from payments.services.transfers import wallet_to_account_begin, wallet_to_account_settle

logger = logging.getLogger(__name__)


def _clearing(deposit: Deposit) -> LedgerAccount:
    return ledger_account(kind=LedgerAccount.Kind.PSP_CLEARING, currency=deposit.currency, key=deposit.provider)


def deposited_so_far(*, user, currency: str) -> Decimal:
    done = [Deposit.State.CREDITED, Deposit.State.COMPLETED]
    total = Deposit.objects.filter(user=user, currency=currency, state__in=done).aggregate(t=DecimalSum("amount"))["t"]
    return total or Decimal(0)


def deposit_create(
    *, user, amount, currency: str, provider: str = "sandbox", method: str | None = None,
    trading_account: TradingAccount | None = None, base_url: str,
) -> Deposit:  # fmt: skip
    """Open a deposit: validate, route it (`method`: a route of settings.PAYMENTS_ROUTES, eligible for the client's
    country, the currency and the amount; or a `provider` directly, for staff tools and tests), ask the KYC gate
    (with the level's total limit), quote the conversion when the trading account's currency differs from the
    payment's, record it, open the PSP checkout.

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
    fee = Decimal(0)
    if method is not None:
        route = deposit_route(user=user, method=method, currency=currency, amount=value)
        provider, fee = route.provider, route.fee(value, currency)
    quote = None
    if trading_account is not None:
        if trading_account.user_id != user.pk:
            raise ApplicationError("This trading account is not yours.", code="not_found")
        if trading_account.state != TradingAccount.State.PROVISIONED or trading_account.is_demo:
            raise ApplicationError("Deposits go to open live accounts only.")
        if trading_account.currency != currency:
            quote = fx_quote(source_currency=currency, target_currency=trading_account.currency)
    decision = client_may(
        user=user, action=Action.DEPOSIT, amount=value, deposited_before=deposited_so_far(user=user, currency=currency)
    )
    if not decision.allowed:
        raise ApplicationError(decision.reason, code="gate")
    psp = provider_for(provider)
    deposit = Deposit.objects.create(
        user=user, provider=provider, amount=value, currency=currency, trading_account=trading_account, fee=fee,
        **(
            {"wallet_currency": quote.target_currency, "wallet_amount": quote.convert(value), "fx_rate": quote.rate,
             "fx_source": quote.source[:64]}
            if quote else {}
        ),
    )  # fmt: skip
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


def _find(provider: str, event: PspEvent) -> Deposit | None:
    """The deposit an event is about: by the checkout reference, else by the PSP's payment id, else by our own id
    echoed in the PSP's metadata (an event about the payment can arrive before the checkout's)."""
    locked = Deposit.objects.select_for_update(of=("self",)).select_related(
        "user", "trading_account__server", "balance_operation"
    )
    deposit = locked.filter(provider=provider, psp_reference=event.reference).first()
    if deposit is None and event.payment_id:
        deposit = locked.filter(provider=provider, psp_payment_id=event.payment_id).first()
    if deposit is None and event.deposit_hint.isdigit():
        deposit = locked.filter(provider=provider, pk=int(event.deposit_hint)).first()
    return deposit


def credit_legs(deposit: Deposit) -> list[Leg]:
    """PSP clearing -> wallet for a paid deposit: less the PSP's fee (the broker's cost, never the client's), and
    through the conversion desk when the wallet's currency differs, at the rate quoted and recorded on the deposit."""
    clearing = _clearing(deposit)
    legs = [Leg(clearing, -(deposit.amount - deposit.fee))]
    if deposit.fee:
        fees = ledger_account(kind=LedgerAccount.Kind.FEES, currency=deposit.currency, key=f"psp:{deposit.provider}")
        legs.append(Leg(fees, -deposit.fee))
    wallet = client_wallet(user=deposit.user, currency=deposit.credit_currency)
    if deposit.wallet_currency:
        legs += fx_legs(
            paid_currency=deposit.currency, paid=deposit.amount, wallet_currency=deposit.wallet_currency,
            credited=deposit.wallet_amount,
        )  # fmt: skip
    legs.append(Leg(wallet, deposit.credit_amount))
    return legs


def _arrived_differently(deposit: Deposit, event: PspEvent) -> str | None:
    """Crypto under/over-payment: the deposit takes the amount that arrived. Returns a refusal, or None."""
    if event.currency != deposit.currency or event.amount <= 0:
        return f"PSP reported {event.amount} {event.currency}"
    if event.amount != deposit.amount:
        word = "Under-paid" if event.amount < deposit.amount else "Over-paid"
        deposit.requested_amount, deposit.amount = deposit.amount, event.amount
        deposit.note = (
            f"{word}: {event.amount} of {deposit.requested_amount} {deposit.currency} arrived and was credited."
        )
        if deposit.fx_rate is not None:
            deposit.wallet_amount = quantize(event.amount * deposit.fx_rate, deposit.wallet_currency)
    return None


def deposit_apply_psp_event(*, provider: str, event: PspEvent, screen_aml: bool = False) -> str:
    """Apply one verified PSP event. Returns what happened. Safe under duplicates and replays: a deposit is credited
    only from `pending` (the state machine), reversals are unique per PSP refund or dispute id, and every ledger
    posting has its own idempotency key.

    `screen_aml`: once a deposit is credited, schedule its AML screening after commit (once: crediting happens
    once), at low priority so it never delays the money's way to MT5."""
    deposit = _find(provider, event)
    if deposit is None:
        return "ignored: no deposit for this payment"
    if event.payment_id and not deposit.psp_payment_id:
        deposit.psp_payment_id = event.payment_id
        deposit.save(update_fields=["psp_payment_id", "updated_at"])
    if event.status in ("refunded", "charged_back"):
        parts = event.reversals or ((event.reversal_id, event.amount),)
        outcomes = [deposit_reverse(deposit=deposit, event=replace(event, reversal_id=i, amount=a)) for i, a in parts]
        # The inbox reads a leading "ignored" as nothing done; anything applied must lead.
        return "; ".join(sorted(outcomes, key=lambda o: o.startswith("ignored"))) or "ignored: no refunds listed"
    if event.status == "dispute_won":
        return deposit_reinstate(deposit=deposit, event=event)
    if event.status == "dispute_opened":
        return deposit_dispute_opened(deposit=deposit, event=event)
    if event.status == "declined":
        if deposit.state not in (Deposit.State.CREATED, Deposit.State.PENDING):
            return f"ignored: deposit already {deposit.state}"
        deposit.failure_reason = "declined by the payment provider"
        apply_transition(deposit, "fail", description=deposit.failure_reason)
        deposit.save()
        return "failed"
    if event.status != "succeeded":
        if event.confirmations is not None and deposit.state == Deposit.State.PENDING:
            deposit.confirmations = event.confirmations
            deposit.save(update_fields=["confirmations", "updated_at"])
        return f"ignored: status {event.status}"
    if deposit.state != Deposit.State.PENDING:
        return f"ignored: deposit already {deposit.state}"
    if event.amount_may_differ:
        refusal = _arrived_differently(deposit, event)
    elif (event.amount, event.currency) != (deposit.amount, deposit.currency):
        refusal = f"PSP reported {event.amount} {event.currency}"
    else:
        refusal = None
    if refusal:
        deposit.failure_reason = f"{refusal}; held for Finance"
        deposit.save(update_fields=["failure_reason", "updated_at"])
        logger.error("deposit %s amount mismatch: %s", deposit.pk, deposit.failure_reason)
        return "ignored: amount mismatch reported"
    deposit.payer_name = event.payer_name[:150]
    if event.confirmations is not None:
        deposit.confirmations = event.confirmations
    apply_transition(deposit, "succeed", description=f"PSP event {event.event_id}")
    ledger_post(
        idempotency_key=f"deposit:{deposit.pk}:credit",
        kind="deposit",
        description=f"Deposit #{deposit.pk} via {deposit.provider}",
        legs=credit_legs(deposit),
    )
    apply_transition(deposit, "credit", description="wallet credited")
    if deposit.trading_account_id:
        _send_to_mt5(deposit)
    deposit.save()
    if screen_aml:
        from payments.tasks import deposit_aml_check_schedule

        deposit_aml_check_schedule(deposit.pk)
    return "credited"


def deposit_dispute_opened(*, deposit: Deposit, event: PspEvent) -> str:
    """A dispute was opened: nothing moves yet (the money leaves when the PSP withdraws it), but Compliance hears."""
    if deposit.state not in (Deposit.State.CREDITED, Deposit.State.COMPLETED):
        return f"ignored: deposit {deposit.state}"
    aml_alerts_raise(
        hits=[
            RuleHit(
                code="dispute_opened", client_id=deposit.user_id, severity="medium", score=50,
                summary=f"The payer opened a dispute ({event.reversal_id}) on deposit #{deposit.pk} of"
                f" {deposit.amount} {deposit.currency} via {deposit.provider}.",
                evidence={"deposit": deposit.pk, "dispute": event.reversal_id, "amount": str(event.amount)},
                references=(f"deposit:{deposit.pk}",), dedup_key=f"dispute_opened:{deposit.pk}:{event.reversal_id}",
            )
        ]
    )  # fmt: skip
    return "dispute recorded"


def _send_to_mt5(deposit: Deposit) -> None:
    deposit.balance_operation = wallet_to_account_begin(
        user=deposit.user,
        account=deposit.trading_account,
        amount=deposit.credit_amount,
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
                amount=deposit.credit_amount,
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
        outcome = deposit_apply_psp_event(provider="wire", event=event, screen_aml=True)
    logger.info("wire deposit %s confirmed by %s: %s", deposit.pk, actor.pk, outcome)
    return outcome
