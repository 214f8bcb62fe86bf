"""Trading accounts: open (request, then provision by a task), change leverage, reset and reveal passwords."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from core.crypto import decrypt, encrypt
from core.errors import ApplicationError
from core.fsm import apply_transition
from kyc.gate import Action, client_may, leverage_cap
from mt5bridge.manager_api import MT5TerminalError, Retcode, mt5_password_generate
from mt5bridge.models import TradeServer, TradingAccount, TradingGroup
from mt5bridge.servers import server_call

logger = logging.getLogger(__name__)

MAX_ACCOUNTS_PER_KIND = 5


def _display_name(user) -> str:
    return (f"{user.first_name} {user.last_name}".strip() or user.email)[:64]


def _check_leverage_cap(user, leverage: int) -> None:
    cap = leverage_cap(user=user)
    if cap is not None and leverage > cap:
        raise ApplicationError(f"Your appropriateness test limits your leverage to 1:{cap}.", code="leverage_cap")


def _server_for(kind: str) -> TradeServer:
    server = TradeServer.objects.filter(kind=kind, is_active=True).order_by("name").first()
    if server is None:
        raise ApplicationError(f"No {kind} trade server is available right now. Please try again later.")
    return server


def trading_account_open(
    *, user, kind: str, account_type: str, currency: str, leverage: int, actor=None
) -> TradingAccount:
    """Record a request for a new MT5 account and provision it after commit.

    Gates: live accounts ask `kyc.gate` and respect the appropriateness test's leverage cap; leverage must be one
    the group offers; at most five accounts of a kind per client. The login is allocated here under a lock on the
    server row, so a retried provisioning creates nothing twice. The first password is generated here and kept
    encrypted until the client has seen it once.
    """
    if kind not in TradeServer.Kind.values:
        raise ApplicationError("Choose a live or a demo account.")
    if kind == TradeServer.Kind.LIVE:
        decision = client_may(user=user, action=Action.OPEN_LIVE_ACCOUNT)
        if not decision.allowed:
            raise ApplicationError(decision.reason, code="gate")
    server = _server_for(kind)
    group = TradingGroup.objects.filter(
        server=server, account_type=account_type, currency=currency, enabled=True
    ).first()
    if group is None:
        raise ApplicationError(f"We do not offer {account_type} {currency} {kind} accounts.")
    if leverage not in group.leverages:
        offered = ", ".join(f"1:{value}" for value in group.leverages)
        raise ApplicationError(f"Leverage 1:{leverage} is not offered for this account. Choose one of {offered}.")
    if kind == TradeServer.Kind.LIVE:
        _check_leverage_cap(user, leverage)
    with transaction.atomic():
        locked = TradeServer.objects.select_for_update().get(pk=server.pk)
        # Counted under the server lock so two concurrent requests cannot both pass the cap.
        open_count = TradingAccount.objects.filter(user=user, server__kind=kind).exclude(
            state__in=[TradingAccount.State.FAILED, TradingAccount.State.DISABLED]
        )
        if open_count.count() >= MAX_ACCOUNTS_PER_KIND:
            raise ApplicationError(f"You already have {MAX_ACCOUNTS_PER_KIND} {kind} accounts.")
        login = locked.next_login
        locked.next_login = login + 1
        locked.save(update_fields=["next_login", "updated_at"])
        account = TradingAccount.objects.create(
            user=user,
            server=locked,
            group=group,
            login=login,
            currency=group.currency,
            leverage=leverage,
            pending_password=encrypt(mt5_password_generate()),
        )
        from mt5bridge.tasks import trading_account_provision as task

        transaction.on_commit(lambda: task.delay(account.pk))
    logger.info("trading account %s requested on %s by %s", login, server.name, (actor or user).pk)
    return account


def trading_account_provision(*, account_id: int) -> TradingAccount:
    """Create the MT5 user for a requested account. Idempotent, and exactly once on the server.

    A repeat after a lost reply finds the login taken (3004): the user is read back and accepted if it is ours.
    Retryable MT5 errors propagate (the task retries); a terminal refusal marks the account failed with the reason.
    """
    account = TradingAccount.objects.select_related("server", "group", "user").get(pk=account_id)
    if account.state != TradingAccount.State.REQUESTED:
        return account
    user = account.user
    password = decrypt(account.pending_password)

    def add(manager):
        return manager.user_add(
            login=account.login,
            group=account.group.name,
            name=_display_name(user),
            email=user.email,
            leverage=account.leverage,
            main_password=password,
            investor_password=mt5_password_generate(),
        )

    failure = ""
    try:
        server_call(account.server, add)
    except MT5TerminalError as exc:
        if exc.retcode == Retcode.USER_LOGIN_EXISTS:
            existing = server_call(account.server, lambda m: m.user_get(account.login))
            if existing.email.lower() != user.email.lower():
                failure = f"Login {account.login} already belongs to another user on {account.server.name}."
        else:
            failure = f"MT5 refused the account: {exc.message}"

    with transaction.atomic():
        account = TradingAccount.objects.select_for_update().get(pk=account.pk)
        if account.state != TradingAccount.State.REQUESTED:
            return account
        if failure:
            account.failure_reason = failure
            apply_transition(account, "fail", description=failure)
            account.save()
            return account
        apply_transition(account, "provision", description=f"created on {account.server.name}")
        account.save()
        if account.is_demo:
            from mt5bridge.services.balance import balance_operation_create

            balance_operation_create(
                account=account,
                amount=settings.MT5_DEMO_DEPOSIT,
                idempotency_key=f"demo-initial:{account.pk}",
                label="Demo funds",
            )
    return account


def _own_open_account(account: TradingAccount, user) -> None:
    if account.user_id != user.pk:
        raise ApplicationError("This account is not yours.", code="not_found")
    if account.state != TradingAccount.State.PROVISIONED:
        raise ApplicationError("This account is not open yet.")


def trading_account_reveal_password(*, account: TradingAccount, user) -> str:
    """Return the first trading password once, then erase it. A second call says it was already shown."""
    with transaction.atomic():
        locked = TradingAccount.objects.select_for_update().get(pk=account.pk)
        _own_open_account(locked, user)
        if not locked.pending_password:
            raise ApplicationError("The password was already shown. Reset it to get a new one.")
        password = decrypt(locked.pending_password)
        locked.pending_password = ""
        locked.save(update_fields=["pending_password", "updated_at"])
    return password


def trading_account_reset_password(*, account: TradingAccount, user) -> str:
    """Set a new random main password on MT5 and return it; it is never stored. Fails cleanly if MT5 is down."""
    _own_open_account(account, user)
    password = mt5_password_generate()
    server_call(account.server, lambda m: m.password_change(account.login, password))
    TradingAccount.objects.filter(pk=account.pk).update(pending_password="")
    return password


def trading_account_change_leverage(*, account: TradingAccount, user, leverage: int) -> TradingAccount:
    """Change leverage on MT5 first, then record it. Only values the account's group offers are accepted."""
    _own_open_account(account, user)
    if leverage not in account.group.leverages:
        offered = ", ".join(f"1:{value}" for value in account.group.leverages)
        raise ApplicationError(f"Leverage 1:{leverage} is not offered for this account. Choose one of {offered}.")
    if not account.is_demo:
        _check_leverage_cap(user, leverage)
    if leverage == account.leverage:
        return account
    server_call(account.server, lambda m: m.user_update(account.login, leverage=leverage))
    TradingAccount.objects.filter(pk=account.pk).update(leverage=leverage)
    account.leverage = leverage
    return account


def trading_account_disable(*, account: TradingAccount, actor, reason: str) -> TradingAccount:
    if not reason.strip():
        raise ApplicationError("Say why the account is disabled.")
    with transaction.atomic():
        locked = TradingAccount.objects.select_for_update().get(pk=account.pk)
        apply_transition(locked, "disable", by=actor, description=reason)
        locked.save()
    return locked
