"""Transfers between the wallet and live MT5 accounts (see `payments.models.Transfer` for the money flow)."""

from __future__ import annotations

import logging

from django.db import transaction

from core.errors import ApplicationError
from core.fsm import apply_transition
from core.money import CurrencyError, quantize
from kyc.gate import Action, client_may
from mt5bridge.manager_api import MT5Error
from mt5bridge.models import BalanceOperation, TradingAccount
from mt5bridge.services import account_snapshot_refresh, balance_operation_create
from payments.ledger import Leg, client_wallet, ledger_post, mt5_float
from payments.models import Transfer

logger = logging.getLogger(__name__)


def wallet_to_account_begin(
    *, user, account: TradingAccount, amount, key: str, description: str, label: str, requested_by=None
) -> BalanceOperation:
    """Move money from the wallet to an MT5 account: the ledger posts wallet -> MT5 float now (so it cannot be spent
    twice) and MT5 is credited by an exactly-once balance operation. Call inside the caller's transaction; `key`
    names the movement (`deposit:7`, `transfer:9`) and makes both steps idempotent."""
    ledger_post(
        idempotency_key=f"{key}:out",
        kind="transfer_to_mt5",
        description=description,
        legs=[
            Leg(client_wallet(user=user, currency=account.currency), -amount),
            Leg(mt5_float(account=account), amount),
        ],
        created_by=requested_by,
    )
    return balance_operation_create(
        account=account, amount=amount, idempotency_key=f"{key}:mt5", label=label, requested_by=requested_by
    )


def wallet_to_account_settle(
    *, user, account: TradingAccount, amount, operation: BalanceOperation, key: str, description: str
) -> str | None:
    """`completed` once MT5 confirmed; `returned` once MT5 refused (the wallet gets the money back by one reversing
    posting); None while the operation is still under way."""
    if operation.state == BalanceOperation.State.CONFIRMED:
        return "completed"
    if operation.state != BalanceOperation.State.FAILED:
        return None
    ledger_post(
        idempotency_key=f"{key}:reversal",
        kind="transfer_to_mt5_reversal",
        description=description,
        legs=[
            Leg(mt5_float(account=account), -amount),
            Leg(client_wallet(user=user, currency=account.currency), amount),
        ],
    )
    return "returned"


def _check_account(user, account: TradingAccount) -> None:
    if account.user_id != user.pk:
        raise ApplicationError("This trading account is not yours.", code="not_found")
    if account.state != TradingAccount.State.PROVISIONED or account.is_demo:
        raise ApplicationError("Transfers work with open live accounts only.")


def transfer_create(
    *, user, trading_account: TradingAccount, amount, direction: str, target_account: TradingAccount | None = None
) -> Transfer:
    """Start a transfer. To an account, the wallet must hold the amount (checked under lock in the posting); to the
    wallet or to another account, the source's free margin is read from MT5 first, and MT5 itself refuses a debit
    beyond it. Between accounts, the target is credited only after the source's debit is confirmed, and a target
    that refuses is compensated by crediting the source back: never half done."""
    _check_account(user, trading_account)
    if direction == Transfer.Direction.BETWEEN_ACCOUNTS:
        if target_account is None or target_account.pk == trading_account.pk:
            raise ApplicationError("Choose a different account to move the money to.")
        _check_account(user, target_account)
        if target_account.currency != trading_account.currency:
            raise ApplicationError("Both accounts must be in the same currency.")
    try:
        value = quantize(amount, trading_account.currency)
    except (ValueError, TypeError, CurrencyError):
        raise ApplicationError("Enter an amount.") from None
    if value <= 0:
        raise ApplicationError("Enter an amount above zero.")
    decision = client_may(user=user, action=Action.TRANSFER)
    if not decision.allowed:
        raise ApplicationError(decision.reason, code="gate")
    if direction in (Transfer.Direction.TO_WALLET, Transfer.Direction.BETWEEN_ACCOUNTS):
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
            user=user,
            direction=direction,
            trading_account=trading_account,
            target_account=target_account if direction == Transfer.Direction.BETWEEN_ACCOUNTS else None,
            amount=value,
            currency=currency,
        )
        if direction == Transfer.Direction.TO_ACCOUNT:
            ledger_post(
                idempotency_key=f"transfer:{transfer.pk}:out",
                kind="transfer_to_mt5",
                description=f"Transfer #{transfer.pk} to account {trading_account.login}",
                legs=[
                    Leg(client_wallet(user=user, currency=currency), -value),
                    Leg(mt5_float(account=trading_account), value),
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
            if transfer.direction == Transfer.Direction.BETWEEN_ACCOUNTS:
                outcome = _settle_between(transfer)
                if outcome:
                    counts[outcome] += 1
                continue
            operation = transfer.balance_operation
            account, wallet = transfer.trading_account, client_wallet(user=transfer.user, currency=transfer.currency)
            if operation.state == BalanceOperation.State.CONFIRMED:
                if transfer.direction == Transfer.Direction.TO_WALLET:
                    ledger_post(
                        idempotency_key=f"transfer:{transfer.pk}:in",
                        kind="transfer_from_mt5",
                        description=f"Transfer #{transfer.pk} from account {account.login}",
                        legs=[Leg(mt5_float(account=account), -transfer.amount), Leg(wallet, transfer.amount)],
                    )
                apply_transition(transfer, "complete", description=f"MT5 deal {operation.ticket}")
                counts["completed"] += 1
            elif operation.state == BalanceOperation.State.FAILED:
                if transfer.direction == Transfer.Direction.TO_ACCOUNT:
                    wallet_to_account_settle(
                        user=transfer.user,
                        account=account,
                        amount=transfer.amount,
                        operation=operation,
                        key=f"transfer:{transfer.pk}",
                        description=f"Transfer #{transfer.pk} returned (MT5 refused)",
                    )
                transfer.failure_reason = (operation.last_error or "refused by the trading server")[:255]
                apply_transition(transfer, "fail", description=transfer.failure_reason)
                counts["failed"] += 1
            else:
                continue
            transfer.save()
    return counts


def _move_float(transfer: Transfer, source: TradingAccount, target: TradingAccount, suffix: str) -> None:
    """Money that left one server's MT5 and arrives on another's moves between their floats (nothing on one server)."""
    if source.server_id == target.server_id:
        return
    ledger_post(
        idempotency_key=f"transfer:{transfer.pk}:{suffix}",
        kind="transfer_between_accounts",
        description=f"Transfer #{transfer.pk} {source.login} -> {target.login}",
        legs=[Leg(mt5_float(account=source), -transfer.amount), Leg(mt5_float(account=target), transfer.amount)],
    )


def _settle_between(transfer: Transfer) -> str | None:
    """One step of an account-to-account transfer; called under the transfer's row lock. Returns what finished."""
    source = transfer.trading_account
    target = TradingAccount.objects.select_related("server").get(pk=transfer.target_account_id)
    first = transfer.balance_operation
    if transfer.second_operation_id is None:
        if first.state == BalanceOperation.State.FAILED:
            transfer.failure_reason = (first.last_error or "the source account refused the debit")[:255]
            apply_transition(transfer, "fail", description=transfer.failure_reason)
            transfer.save()
            return "failed"
        if first.state != BalanceOperation.State.CONFIRMED:
            return None
        _move_float(transfer, source, target, "float")
        transfer.second_operation = balance_operation_create(
            account=target, amount=transfer.amount, idempotency_key=f"transfer:{transfer.pk}:mt5-in", label="Transfer"
        )
        transfer.save()
        return None
    second = BalanceOperation.objects.get(pk=transfer.second_operation_id)
    if second.state == BalanceOperation.State.CONFIRMED:
        apply_transition(transfer, "complete", description=f"MT5 deals {first.ticket} and {second.ticket}")
        transfer.save()
        return "completed"
    if second.state != BalanceOperation.State.FAILED:
        return None
    if transfer.compensation_operation_id is None:
        _move_float(transfer, target, source, "float-back")
        transfer.compensation_operation = balance_operation_create(
            account=source, amount=transfer.amount, idempotency_key=f"transfer:{transfer.pk}:mt5-back", label="Refund"
        )
        transfer.failure_reason = "The target account refused the money; it is being returned to the source account."
        transfer.save()
        return None
    back = BalanceOperation.objects.get(pk=transfer.compensation_operation_id)
    if back.state == BalanceOperation.State.CONFIRMED:
        transfer.failure_reason = "The target account refused the money; it was returned to the source account."
        apply_transition(transfer, "fail", description=transfer.failure_reason)
        transfer.save()
        return "failed"
    if back.state == BalanceOperation.State.FAILED:
        logger.error("transfer %s: compensation refused by MT5; Dealing must resolve it", transfer.pk)
        transfer.failure_reason = "Returning the money failed; our dealing desk has been alerted."
        transfer.save(update_fields=["failure_reason", "updated_at"])
    return None
