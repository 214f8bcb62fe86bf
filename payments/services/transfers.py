"""Transfers between the wallet and live MT5 accounts (see `payments.models.Transfer` for the money flow)."""

from __future__ import annotations

from django.db import transaction

from core.errors import ApplicationError
from core.fsm import apply_transition
from core.money import CurrencyError, quantize
from kyc.gate import Action, client_may
from mt5bridge.manager_api import MT5Error
from mt5bridge.models import BalanceOperation, TradingAccount
from mt5bridge.services import account_snapshot_refresh, balance_operation_create
from payments.ledger import Leg, client_wallet, ledger_account, ledger_post
from payments.models import LedgerAccount, Transfer


def _mt5_float(account: TradingAccount) -> LedgerAccount:
    return ledger_account(kind=LedgerAccount.Kind.MT5_FLOAT, currency=account.currency, key=account.server.name)


def transfer_create(*, user, trading_account: TradingAccount, amount, direction: str) -> Transfer:
    """Start a transfer. To an account, the wallet must hold the amount (checked under lock in the posting); to the
    wallet, the account's free margin is read from MT5 first, and MT5 itself refuses a debit beyond it."""
    if trading_account.user_id != user.pk:
        raise ApplicationError("This trading account is not yours.", code="not_found")
    if trading_account.state != TradingAccount.State.PROVISIONED or trading_account.is_demo:
        raise ApplicationError("Transfers work with open live accounts only.")
    try:
        value = quantize(amount, trading_account.currency)
    except (ValueError, TypeError, CurrencyError):
        raise ApplicationError("Enter an amount.") from None
    if value <= 0:
        raise ApplicationError("Enter an amount above zero.")
    decision = client_may(user=user, action=Action.TRANSFER)
    if not decision.allowed:
        raise ApplicationError(decision.reason, code="gate")
    if direction == Transfer.Direction.TO_WALLET:
        try:
            state = account_snapshot_refresh(account=trading_account)
        except MT5Error:
            raise ApplicationError("The trading server is not answering; please try again shortly.") from None
        if state.free_margin is None or value > state.free_margin:
            raise ApplicationError(
                f"You can move at most {state.free_margin} {trading_account.currency} (free margin)."
            )
    elif direction != Transfer.Direction.TO_ACCOUNT:
        raise ApplicationError("Choose a direction.")
    currency = trading_account.currency
    with transaction.atomic():
        transfer = Transfer.objects.create(
            user=user, direction=direction, trading_account=trading_account, amount=value, currency=currency
        )
        if direction == Transfer.Direction.TO_ACCOUNT:
            ledger_post(
                idempotency_key=f"transfer:{transfer.pk}:out",
                kind="transfer_to_mt5",
                description=f"Transfer #{transfer.pk} to account {trading_account.login}",
                legs=[
                    Leg(client_wallet(user=user, currency=currency), -value),
                    Leg(_mt5_float(trading_account), value),
                ],
                created_by=user,
            )
        signed = value if direction == Transfer.Direction.TO_ACCOUNT else -value
        transfer.balance_operation = balance_operation_create(
            account=trading_account, amount=signed, idempotency_key=f"transfer:{transfer.pk}:mt5", label="Transfer",
            requested_by=user,
        )  # fmt: skip
        transfer.save()
    return transfer


def transfers_settle() -> dict[str, int]:
    """Finish transfers whose balance operation settled. Safe to run any time; each posting has a fixed key."""
    counts = {"completed": 0, "failed": 0}
    for pk in Transfer.objects.filter(state=Transfer.State.SENT).values_list("pk", flat=True):
        with transaction.atomic():
            transfer = (
                Transfer.objects.select_for_update(of=("self",))
                .select_related("balance_operation", "trading_account__server", "user")
                .get(pk=pk)
            )
            operation = transfer.balance_operation
            account, wallet = transfer.trading_account, client_wallet(user=transfer.user, currency=transfer.currency)
            if operation.state == BalanceOperation.State.CONFIRMED:
                if transfer.direction == Transfer.Direction.TO_WALLET:
                    ledger_post(
                        idempotency_key=f"transfer:{transfer.pk}:in",
                        kind="transfer_from_mt5",
                        description=f"Transfer #{transfer.pk} from account {account.login}",
                        legs=[Leg(_mt5_float(account), -transfer.amount), Leg(wallet, transfer.amount)],
                    )
                apply_transition(transfer, "complete", description=f"MT5 deal {operation.ticket}")
                counts["completed"] += 1
            elif operation.state == BalanceOperation.State.FAILED:
                if transfer.direction == Transfer.Direction.TO_ACCOUNT:
                    ledger_post(
                        idempotency_key=f"transfer:{transfer.pk}:reversal",
                        kind="transfer_to_mt5_reversal",
                        description=f"Transfer #{transfer.pk} returned (MT5 refused)",
                        legs=[Leg(_mt5_float(account), -transfer.amount), Leg(wallet, transfer.amount)],
                    )
                transfer.failure_reason = (operation.last_error or "refused by the trading server")[:255]
                apply_transition(transfer, "fail", description=transfer.failure_reason)
                counts["failed"] += 1
            else:
                continue
            transfer.save()
    return counts
