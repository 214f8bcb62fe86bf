"""Builders for the IB tests: IBs in a tree, plans with rules, and MT5 deals written straight to the CRM's tables
(the engine reads imported deals; how they got there is the MT5 tests' business)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from ib.models import ClientReferral, CommissionPlan, CommissionRule, IntroducingBroker, ReferralLink, SymbolGroup
from mt5bridge.models import Deal, TradeServer, TradingAccount, TradingGroup
from mt5bridge.services.sync import deals_store
from tests.crm.factories import ClientFactory

_tickets = itertools.count(10_000)
_positions = itertools.count(500)
_logins = itertools.count(700_000)
_codes = itertools.count(1)


def make_plan(
    name: str | None = None,
    *,
    model: str = CommissionPlan.OverrideModel.DIFFERENCE,
    min_hold: int = 0,
    currency: str = "USD",
    rules: dict | None = None,
) -> CommissionPlan:
    """`rules`: {group code: (kind, rate)} for level 0, or {(group code, level): (kind, rate)}."""
    plan = CommissionPlan.objects.create(
        name=name or f"Plan {next(_codes)}", override_model=model, min_hold_seconds=min_hold, currency=currency
    )
    for key, (kind, rate) in (rules or {}).items():
        group, level = key if isinstance(key, tuple) else (key, 0)
        CommissionRule.objects.create(
            plan=plan, symbol_group=SymbolGroup.objects.get(code=group), kind=kind, level=level, rate=Decimal(rate)
        )
    return plan


def rebate_plan(rate: str, *, group: str = "fx_majors", **kwargs) -> CommissionPlan:
    return make_plan(rules={group: ("rebate_per_lot", rate)}, **kwargs)


def make_ib(
    *,
    parent: IntroducingBroker | None = None,
    plan: CommissionPlan | None = None,
    user=None,
    state: str = IntroducingBroker.State.APPROVED,
    code: str | None = None,
    **fields,
) -> IntroducingBroker:
    user = user or ClientFactory()
    ib = IntroducingBroker.objects.create(
        user=user, parent=parent, plan=plan, state=state, referral_code=code or f"IB{next(_codes):05d}", **fields
    )
    if state == IntroducingBroker.State.APPROVED:
        ReferralLink.objects.create(ib=ib, code=ib.referral_code, campaign="default")
    return ib


def make_chain(plans: list[CommissionPlan]) -> list[IntroducingBroker]:
    """A line of IBs, top first: plans[0] is the master, plans[-1] the deepest sub-IB."""
    chain: list[IntroducingBroker] = []
    for plan in plans:
        chain.append(make_ib(parent=chain[-1] if chain else None, plan=plan))
    return chain


def attribute(client, ib: IntroducingBroker, source: str = ClientReferral.Source.STAFF) -> ClientReferral:
    return ClientReferral.objects.create(client=client, ib=ib, source=source, attributed_at=timezone.now())


def trade_server(name: str = "live-ib") -> TradeServer:
    server, _ = TradeServer.objects.get_or_create(
        name=name,
        defaults={"kind": "live", "url": "http://127.0.0.1:1", "manager_login": 1, "password_env": "UNUSED"},
    )
    return server


def trading_account(user, *, currency: str = "USD", server: TradeServer | None = None) -> TradingAccount:
    server = server or trade_server()
    group, _ = TradingGroup.objects.get_or_create(
        server=server,
        name=f"real\\standard-{currency.lower()}",
        defaults={"account_type": "standard", "currency": currency, "leverages": [100]},
    )
    return TradingAccount.objects.create(
        user=user,
        server=server,
        group=group,
        login=next(_logins),
        currency=currency,
        leverage=100,
        state=TradingAccount.State.PROVISIONED,
    )


def deal(
    account: TradingAccount,
    *,
    entry: int,
    action: int = 0,
    symbol: str = "EURUSD",
    lots: str = "1.00",
    time: datetime | None = None,
    position: int = 0,
    commission: str = "0",
    ticket: int | None = None,
) -> Deal:
    """A deal stored as the import stores it (`deals_store`: a closing deal gets its position as opened)."""
    made = Deal(
        server=account.server,
        ticket=ticket or next(_tickets),
        login=account.login,
        account=account,
        time=time or timezone.now(),
        symbol=symbol,
        action=action,
        entry=entry,
        volume=Decimal(lots),
        price=Decimal("1.10000"),
        profit=Decimal("0"),
        commission=Decimal(commission),
        swap=Decimal("0"),
        position_id=position,
        contract_size=Decimal("100000"),
    )
    deals_store(server=account.server, deals=[made])
    return Deal.objects.get(server=account.server, ticket=made.ticket)


def round_trip(
    account: TradingAccount,
    *,
    symbol: str = "EURUSD",
    lots: str = "1.00",
    hold_seconds: int = 600,
    closed_at: datetime | None = None,
    commission: str = "0",
) -> tuple[Deal, Deal]:
    """A position opened and closed: (opening deal, closing deal)."""
    closed_at = closed_at or timezone.now()
    position = next(_positions)
    opened = deal(
        account,
        entry=0,
        symbol=symbol,
        lots=lots,
        position=position,
        time=closed_at - timedelta(seconds=hold_seconds),
        commission=commission,
    )
    closing = deal(
        account, entry=1, action=1, symbol=symbol, lots=lots, position=position, time=closed_at, commission=commission
    )
    return opened, closing


def client_with_account(ib: IntroducingBroker, *, currency: str = "USD") -> TradingAccount:
    client = ClientFactory()
    attribute(client, ib)
    return trading_account(client, currency=currency)
