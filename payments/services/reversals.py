"""Refunds made at the PSP, chargebacks and won disputes: the money goes back through the ledger, once per PSP id.

Where the money is matters. A reversal takes from the client's wallet what it holds; the rest is a receivable from
the client (a suspense account of theirs). If the deposit went to a trading account, the receivable is asked back
from MT5 by an exactly-once balance operation (MT5 refuses a debit beyond free margin); what MT5 refuses stays owed.
Every reversal raises an AML alert for Compliance; a chargeback also places a withdrawal hold on the client.

All functions here run inside the caller's transaction with the deposit row locked (the webhook inbox's processing).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction

from core.errors import RetryableError
from core.fsm import apply_transition
from core.money import quantize
from kyc.aml.rules import RuleHit
from kyc.services.aml import aml_alerts_raise
from kyc.services.compliance import compliance_hold_place
from mt5bridge.models import BalanceOperation
from mt5bridge.services import balance_operation_create
from payments.ledger import Leg, account_balance, client_wallet, ledger_account, ledger_post, mt5_float
from payments.models import Deposit, DepositReversal, LedgerAccount
from payments.psp import PspEvent

logger = logging.getLogger(__name__)

REVERSIBLE = (Deposit.State.CREDITED, Deposit.State.COMPLETED)


def client_receivable(*, user, currency: str) -> LedgerAccount:
    """What a client owes the broker after a reversal their wallet could not cover (negative = owed)."""
    return ledger_account(kind=LedgerAccount.Kind.SUSPENSE, currency=currency, user=user, key="receivable")


def _clearing(deposit: Deposit) -> LedgerAccount:
    return ledger_account(kind=LedgerAccount.Kind.PSP_CLEARING, currency=deposit.currency, key=deposit.provider)


def fx_legs(*, paid_currency: str, paid: Decimal, wallet_currency: str, credited: Decimal) -> list[Leg]:
    """The conversion desk's side of a converted movement: it takes `paid` in one currency and gives `credited` in
    the other, so each currency balances on its own. Signs follow the money into the wallet; negate to reverse."""
    return [
        Leg(ledger_account(kind=LedgerAccount.Kind.FX, currency=paid_currency, key="conversion"), paid),
        Leg(ledger_account(kind=LedgerAccount.Kind.FX, currency=wallet_currency, key="conversion"), -credited),
    ]


def _in_wallet_currency(deposit: Deposit, value: Decimal, *, whole_rest: bool) -> Decimal:
    if not deposit.wallet_currency:
        return value
    if whole_rest:  # the last reversal takes exactly what is left, so rounding never strands a cent
        done = Decimal(0)
        for reversal in deposit.reversals.all():
            back = reversal.kind == DepositReversal.Kind.REINSTATEMENT
            done += -reversal.wallet_amount if back else reversal.wallet_amount
        return deposit.credit_amount - done
    return quantize(value * deposit.fx_rate, deposit.wallet_currency)


def _alert(deposit: Deposit, reversal: DepositReversal, severity: str, summary: str, *, what: str = "") -> None:
    aml_alerts_raise(
        hits=[
            RuleHit(
                code=reversal.kind,
                client_id=deposit.user_id,
                severity=severity,
                score={"high": 80, "medium": 50, "low": 20}[severity],
                summary=summary,
                evidence={
                    "deposit": deposit.pk,
                    "provider": deposit.provider,
                    "psp_reference": reversal.psp_reference,
                    "amount": str(reversal.amount),
                    "currency": reversal.currency,
                    "from_wallet": str(reversal.from_wallet),
                    "from_mt5": str(reversal.from_mt5),
                    "unrecovered": str(reversal.unrecovered),
                },
                references=(f"deposit:{deposit.pk}",),
                dedup_key=f"{reversal.kind}:{reversal.pk}{what}",
            )
        ]
    )


def deposit_reverse(*, deposit: Deposit, event: PspEvent) -> str:
    """Apply a refund made at the PSP or a chargeback (`event.status` "refunded" / "charged_back")."""
    kind = DepositReversal.Kind.CHARGEBACK if event.status == "charged_back" else DepositReversal.Kind.REFUND
    allowed = REVERSIBLE + ((Deposit.State.REFUNDED,) if kind == DepositReversal.Kind.CHARGEBACK else ())
    if deposit.state not in allowed:
        return f"ignored: deposit {deposit.state}, nothing credited to reverse"
    if not event.reversal_id:
        return "ignored: the event names no refund or dispute"
    if DepositReversal.objects.filter(deposit=deposit, kind=kind, psp_reference=event.reversal_id).exists():
        return "ignored: already reversed"
    operation = deposit.balance_operation
    settled = (BalanceOperation.State.CONFIRMED, BalanceOperation.State.FAILED)
    if deposit.state == Deposit.State.CREDITED and operation and operation.state not in settled:
        # The money is on its way to MT5; reversing now could take it from both places. The inbox retries later.
        raise RetryableError(f"deposit {deposit.pk}: MT5 transfer still in flight, reversal deferred")
    room = deposit.amount - deposit.reversed_amount
    value = min(quantize(event.amount, deposit.currency), room) if event.amount > 0 else room
    if value <= 0:
        return "ignored: nothing left to reverse"
    wallet_value = _in_wallet_currency(deposit, value, whole_rest=value == room)
    wallet = client_wallet(user=deposit.user, currency=deposit.credit_currency)
    LedgerAccount.objects.select_for_update().get(pk=wallet.pk)  # no withdrawal spends it while we read it
    from_wallet = max(min(account_balance(wallet), wallet_value), Decimal(0))
    rest = wallet_value - from_wallet
    # Only money that really reached MT5 is asked back from it.
    on_mt5 = operation is not None and operation.state == BalanceOperation.State.CONFIRMED
    account = deposit.trading_account if on_mt5 and rest else None
    reversal = DepositReversal.objects.create(
        state=DepositReversal.State.RECOVERING if account else DepositReversal.State.SETTLED,
        deposit=deposit,
        kind=kind,
        psp_reference=event.reversal_id,
        amount=value,
        currency=deposit.currency,
        wallet_amount=wallet_value,
        from_wallet=from_wallet,
        from_mt5=rest if account else Decimal(0),
        unrecovered=Decimal(0) if account else rest,
        event_id=event.event_id,
    )
    legs = [Leg(_clearing(deposit), value)]
    if deposit.wallet_currency:
        legs += [
            Leg(leg.account, -leg.amount)
            for leg in fx_legs(
                paid_currency=deposit.currency, paid=value, wallet_currency=deposit.wallet_currency,
                credited=wallet_value,
            )
        ]  # fmt: skip
    if from_wallet:
        legs.append(Leg(wallet, -from_wallet))
    if rest:
        legs.append(Leg(client_receivable(user=deposit.user, currency=deposit.credit_currency), -rest))
    ledger_post(
        idempotency_key=f"reversal:{reversal.pk}",
        kind=kind,
        description=f"{reversal.get_kind_display()} {event.reversal_id} of deposit #{deposit.pk}",
        legs=legs,
    )
    if account:
        reversal.balance_operation = balance_operation_create(
            account=account, amount=-rest, idempotency_key=f"reversal:{reversal.pk}:mt5",
            label="Chargeback" if kind == DepositReversal.Kind.CHARGEBACK else "Refund",
        )  # fmt: skip
        reversal.save(update_fields=["balance_operation", "updated_at"])
    deposit.reversed_amount += value
    if kind == DepositReversal.Kind.CHARGEBACK:
        apply_transition(deposit, "charge_back", description=f"dispute {event.reversal_id}: {value} {deposit.currency}")
        compliance_hold_place(
            user=deposit.user,
            reason=f"Chargeback on deposit #{deposit.pk} ({value} {deposit.currency}); review before paying out.",
            placed_by=None,
        )
    elif deposit.reversed_amount >= deposit.amount:
        apply_transition(deposit, "refund", description=f"refund {event.reversal_id}: {value} {deposit.currency}")
    deposit.save()
    where = f"{from_wallet} from the wallet"
    if rest:
        where += f", {rest} asked back from MT5 account {account.login}" if account else f", {rest} owed by the client"
    _alert(
        deposit,
        reversal,
        "high" if kind == DepositReversal.Kind.CHARGEBACK else "medium",
        f"{reversal.get_kind_display()} of {value} {deposit.currency} on deposit #{deposit.pk} via {deposit.provider}"
        f" ({where}).",
    )
    return "charged back" if kind == DepositReversal.Kind.CHARGEBACK else "refunded"


def deposit_reinstate(*, deposit: Deposit, event: PspEvent) -> str:
    """The broker won a dispute: the PSP pays the money back, and the wallet gets it again (the receivable first)."""
    if deposit.state != Deposit.State.CHARGED_BACK:
        return f"ignored: deposit {deposit.state}"
    chargeback = deposit.reversals.filter(kind=DepositReversal.Kind.CHARGEBACK, psp_reference=event.reversal_id).first()
    if chargeback is None:
        return "ignored: no chargeback under this dispute"
    reinstated, created = DepositReversal.objects.get_or_create(
        deposit=deposit,
        kind=DepositReversal.Kind.REINSTATEMENT,
        psp_reference=event.reversal_id,
        defaults={
            "amount": chargeback.amount, "currency": chargeback.currency, "wallet_amount": chargeback.wallet_amount,
            "event_id": event.event_id,
        },
    )  # fmt: skip
    if not created:
        return "ignored: already reinstated"
    legs = [Leg(_clearing(deposit), -chargeback.amount)]
    if deposit.wallet_currency:
        legs += fx_legs(
            paid_currency=deposit.currency, paid=chargeback.amount, wallet_currency=deposit.wallet_currency,
            credited=chargeback.wallet_amount,
        )  # fmt: skip
    legs.append(Leg(client_wallet(user=deposit.user, currency=deposit.credit_currency), chargeback.wallet_amount))
    ledger_post(
        idempotency_key=f"reversal:{reinstated.pk}",
        kind="reinstatement",
        description=f"Dispute {event.reversal_id} won: deposit #{deposit.pk} reinstated to the wallet",
        legs=legs,
    )
    deposit.reversed_amount -= chargeback.amount
    deposit.balance_operation = None  # the money now sits in the wallet; the original transfer is history
    apply_transition(deposit, "reinstate", description=f"dispute {event.reversal_id} won")
    deposit.save()
    return "reinstated"


def deposit_reversals_settle() -> dict[str, int]:
    """Finish reversals waiting for MT5: a confirmed debit clears the receivable; a refused one leaves it owed and
    raises an alert. Safe to run any time (fixed posting keys, row locks)."""
    counts = {"recovered": 0, "unrecovered": 0}
    waiting = DepositReversal.objects.filter(state=DepositReversal.State.RECOVERING).values_list("pk", flat=True)
    for pk in waiting:
        with transaction.atomic():
            reversal = (
                DepositReversal.objects.select_for_update(of=("self",))
                .select_related("balance_operation", "deposit__trading_account__server", "deposit__user")
                .get(pk=pk)
            )
            operation, deposit = reversal.balance_operation, reversal.deposit
            if reversal.state != DepositReversal.State.RECOVERING or operation is None:
                continue
            if operation.state == BalanceOperation.State.CONFIRMED:
                ledger_post(
                    idempotency_key=f"reversal:{reversal.pk}:recovered",
                    kind="reversal_recovered",
                    description=f"Deposit #{deposit.pk}: {reversal.from_mt5} taken back from MT5",
                    legs=[
                        Leg(mt5_float(account=deposit.trading_account), -reversal.from_mt5),
                        Leg(client_receivable(user=deposit.user, currency=deposit.credit_currency), reversal.from_mt5),
                    ],
                )
                apply_transition(reversal, "settle", description=f"MT5 deal {operation.ticket}")
                counts["recovered"] += 1
            elif operation.state == BalanceOperation.State.FAILED:
                reversal.unrecovered = reversal.from_mt5
                apply_transition(reversal, "settle", description=f"MT5 refused: {operation.last_error}"[:255])
                counts["unrecovered"] += 1
            else:
                continue
            reversal.save()
            if reversal.unrecovered:
                _alert(
                    deposit,
                    reversal,
                    "high",
                    f"{reversal.unrecovered} {deposit.credit_currency} of the {reversal.get_kind_display().lower()} on"
                    f" deposit #{deposit.pk} could not be taken back from MT5 account"
                    f" {deposit.trading_account.login}; the client owes it.",
                    what=":unrecovered",
                )
    return counts
