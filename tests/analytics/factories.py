"""Records the analytics tables are built from, made directly (no MT5 or PSP round trips): servers, accounts,
deposits, withdrawals and deals at chosen moments."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from mt5bridge.models import Deal, TradeServer, TradingAccount, TradingGroup
from payments.models import Deposit, Withdrawal
from tests.crm.factories import ClientFactory

_logins = itertools.count(700_000)
_tickets = itertools.count(1)


def at(text: str) -> datetime:
    """'2025-03-05 23:30' as an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def trade_server(name: str = "live-1", kind: str = "live", *, imported: str | None = "2099-01-01 00:00") -> TradeServer:
    return TradeServer.objects.create(
        name=name,
        kind=kind,
        url="http://127.0.0.1:9",
        manager_login=1000,
        password_env="UNUSED",
        deals_imported_at=at(imported) if imported else None,
    )


def client(country: str = "DE", **kwargs):
    user = ClientFactory(**kwargs)
    user.client_profile.country = country
    user.client_profile.legal_name = f"{user.first_name} {user.last_name}"
    user.client_profile.save()
    return user


def account(user, server: TradeServer, *, currency: str = "USD", opened: str = "2025-01-01 00:00") -> TradingAccount:
    group, _ = TradingGroup.objects.get_or_create(
        server=server,
        name=f"real\\standard-{currency.lower()}",
        defaults={"account_type": "standard", "currency": currency, "leverages": [100]},
    )
    created = TradingAccount.objects.create(
        user=user, server=server, group=group, login=next(_logins), currency=currency, leverage=100,
        state=TradingAccount.State.PROVISIONED,
    )  # fmt: skip
    TradingAccount.objects.filter(pk=created.pk).update(created_at=at(opened))
    return TradingAccount.objects.get(pk=created.pk)


def deposit(user, amount: str, when: str, *, state: str = "credited", provider: str = "sandbox", currency="USD",
            fee: str = "0"):  # fmt: skip
    made = Deposit.objects.create(
        user=user, provider=provider, amount=Decimal(amount), currency=currency, state=state, fee=Decimal(fee)
    )
    Deposit.objects.filter(pk=made.pk).update(created_at=at(when))
    return Deposit.objects.get(pk=made.pk)


def withdrawal(user, amount: str, when: str, *, state: str = "completed", method: str = "bank_wire", currency="USD",
               source=None):  # fmt: skip
    made = Withdrawal.objects.create(
        user=user, amount=Decimal(amount), currency=currency, method=method, state=state, source_deposit=source,
        destination="DE89370400440532013000" if method == "bank_wire" else "",
    )  # fmt: skip
    Withdrawal.objects.filter(pk=made.pk).update(created_at=at(when))
    return Withdrawal.objects.get(pk=made.pk)


def deal(account: TradingAccount, when: str, *, volume="1.00", profit="0", commission="0", swap="0", action=0,
         entry=0, symbol="EURUSD", position_id=0, contract_size="100000") -> Deal:  # fmt: skip
    return Deal.objects.create(
        server=account.server, ticket=next(_tickets), login=account.login, account=account, time=at(when),
        symbol=symbol, action=action, entry=entry, volume=Decimal(volume), price=Decimal("1.08500"),
        profit=Decimal(profit), commission=Decimal(commission), swap=Decimal(swap), position_id=position_id,
        contract_size=Decimal(contract_size),
    )  # fmt: skip
