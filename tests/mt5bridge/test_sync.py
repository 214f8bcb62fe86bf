"""Snapshots, positions, deal import and the circuit breaker, against the mock trade server process."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from brokerage import health
from mt5bridge.adapters.webapi import WebAPIManager
from mt5bridge.manager_api import MT5RetryableError
from mt5bridge.models import Deal, PositionSnapshot, TradeServer, TradingAccount, TradingGroup
from mt5bridge.servers import breaker_is_open, server_call
from mt5bridge.services import (
    accounts_snapshot_sync,
    balance_operation_create,
    balance_operation_send,
    deals_import,
    deals_store,
    positions_snapshot_sync,
    sync,
    trade_server_sync_groups,
)
from tests.mt5bridge.conftest import free_port
from tests.mt5bridge.factories import open_account

pytestmark = pytest.mark.django_db


def _fund(account, amount: str) -> None:
    operation = balance_operation_create(account=account, amount=amount, idempotency_key=f"fund:{account.pk}:{amount}")
    balance_operation_send(operation_id=operation.pk)


def test_groups_are_mirrored_by_kind_and_vanished_ones_disabled(live_server_mt5):
    TradingGroup.objects.create(server=live_server_mt5, name="real\\gone-usd", account_type="standard", currency="USD")

    assert trade_server_sync_groups(server=live_server_mt5) == 3

    names = set(TradingGroup.objects.filter(server=live_server_mt5, enabled=True).values_list("name", flat=True))
    assert names == {"real\\standard-usd", "real\\standard-eur", "real\\pro-usd"}
    assert not TradingGroup.objects.get(name="real\\gone-usd").enabled


def test_account_snapshots_read_every_open_account_in_batches(mt5_mock, live_server_mt5):
    accounts = [open_account(live_server_mt5) for _ in range(5)]
    for i, account in enumerate(accounts):
        _fund(account, f"{100 * (i + 1)}")
    before = timezone.now()

    assert accounts_snapshot_sync(server=live_server_mt5, batch_size=2) == 5

    for i, account in enumerate(TradingAccount.objects.order_by("pk")):
        assert (account.balance, account.equity, account.free_margin) == (Decimal(100 * (i + 1)),) * 3
        assert account.snapshot_at >= before


def test_account_snapshots_are_stored_in_several_writes(monkeypatch, mt5_mock, live_server_mt5):
    monkeypatch.setattr(sync, "SNAPSHOT_WRITE_ROWS", 2)  # batches of one, written two, two and one at a time
    accounts = [open_account(live_server_mt5) for _ in range(5)]
    for i, account in enumerate(accounts):
        _fund(account, f"{10 * (i + 1)}.25")

    assert accounts_snapshot_sync(server=live_server_mt5, batch_size=1) == 5

    for i, account in enumerate(TradingAccount.objects.order_by("pk")):
        assert (account.balance, account.credit, account.margin) == (Decimal(f"{10 * (i + 1)}.25"), 0, 0)
        assert account.snapshot_at is not None


def test_a_server_failing_mid_sync_keeps_the_batches_already_read(monkeypatch, live_server_mt5):
    accounts = sorted((open_account(live_server_mt5) for _ in range(3)), key=lambda a: a.login)
    read = WebAPIManager.accounts_get_batch
    calls = []

    def fails_on_the_third_batch(manager, logins):
        calls.append(logins)
        if len(calls) == 3:
            raise MT5RetryableError("connection lost")
        return read(manager, logins)

    monkeypatch.setattr(WebAPIManager, "accounts_get_batch", fails_on_the_third_batch)

    with pytest.raises(MT5RetryableError):
        accounts_snapshot_sync(server=live_server_mt5, batch_size=1)
    seen = {a.login: a.snapshot_at for a in TradingAccount.objects.filter(pk__in=[a.pk for a in accounts])}
    assert [seen[a.login] is not None for a in accounts] == [True, True, False]


def test_an_unreachable_server_keeps_the_last_snapshot_and_its_age(live_server_mt5):
    account = open_account(live_server_mt5)
    accounts_snapshot_sync(server=live_server_mt5)
    seen_at = TradingAccount.objects.get(pk=account.pk).snapshot_at
    live_server_mt5.url = f"http://127.0.0.1:{free_port()}"
    live_server_mt5.save()

    with pytest.raises(MT5RetryableError):
        accounts_snapshot_sync(server=live_server_mt5)
    assert TradingAccount.objects.get(pk=account.pk).snapshot_at == seen_at


def test_positions_follow_the_trade_server(mt5_mock, live_server_mt5):
    account = open_account(live_server_mt5)
    _fund(account, "5000")
    opened = mt5_mock.control(
        "POST", "positions/open", {"login": account.login, "symbol": "EURUSD", "action": 0, "volume": 10000}
    )

    assert positions_snapshot_sync(server=live_server_mt5) == 1
    position = PositionSnapshot.objects.get()
    assert (position.position_id, position.symbol, position.volume, position.account_id) == (
        int(opened["position"]),
        "EURUSD",
        Decimal("1.00"),
        account.pk,
    )

    mt5_mock.control("POST", "positions/close", {"position": int(opened["position"])})
    assert positions_snapshot_sync(server=live_server_mt5) == 0
    assert not PositionSnapshot.objects.exists()


def test_deal_import_is_incremental_idempotent_and_resumable(mt5_mock, live_server_mt5):
    account = open_account(live_server_mt5)
    mt5_mock.control("POST", "bulk_deals", {"logins": [account.login], "count": 250, "days": 1})

    # A first run that stops after two pages (a crash after its last commit): the cursor is where it stopped.
    assert deals_import(server=live_server_mt5, max_pages=2, pages_per_commit=1) == 200
    server = TradeServer.objects.get(pk=live_server_mt5.pk)
    assert server.deal_cursor_ticket == Deal.objects.order_by("-ticket").first().ticket

    deals_import(server=live_server_mt5)
    total_mine = Deal.objects.filter(login=account.login).count()
    assert total_mine == 250
    assert Deal.objects.filter(login=account.login, account=account).count() == 250

    # Rewind the cursor as if the last commit had been lost: the re-read deals are stored once.
    TradeServer.objects.filter(pk=server.pk).update(deal_cursor_ticket=0)
    deals_import(server=live_server_mt5)
    assert Deal.objects.filter(login=account.login).count() == 250


def test_imported_deal_fields(mt5_mock, live_server_mt5):
    account = open_account(live_server_mt5)
    _fund(account, "5000")
    opened = mt5_mock.control(
        "POST", "positions/open", {"login": account.login, "symbol": "XAUUSD", "action": 1, "volume": 2000}
    )
    mt5_mock.control("POST", "positions/close", {"position": int(opened["position"])})

    deals_import(server=live_server_mt5)

    mine = list(Deal.objects.filter(login=account.login).order_by("ticket"))
    assert [(d.action, d.entry, d.symbol) for d in mine] == [(2, 0, ""), (1, 0, "XAUUSD"), (0, 1, "XAUUSD")]
    assert mine[1].volume == Decimal("0.20")
    assert mine[1].contract_size == Decimal("100")
    assert mine[2].position_id == int(opened["position"])
    # The closing deal carries its position as opened; the opening and balance deals carry nothing.
    assert (mine[2].open_ticket, mine[2].open_time) == (mine[1].ticket, mine[1].time)
    assert (mine[2].open_volume, mine[2].open_commission) == (mine[1].volume, mine[1].commission)
    assert mine[0].open_ticket is None and mine[1].open_ticket is None


def _made(server, ticket, *, entry, position, volume="1.00", commission="-3.50", minute=0, action=0):
    return Deal(
        server=server, ticket=ticket, login=1, time=timezone.now().replace(microsecond=0) + timedelta(minutes=minute),
        symbol="EURUSD", action=action, entry=entry, volume=Decimal(volume), price=Decimal("1.1"), profit=0,
        commission=Decimal(commission), swap=0, position_id=position,
    )  # fmt: skip


def test_a_closing_deal_is_stored_with_the_opening_deals_before_it(live_server_mt5):
    server = live_server_mt5
    # Stored earlier: the position's first opening deal.
    deals_store(server=server, deals=[_made(server, 10, entry=0, position=7, volume="2.00", commission="-7.00")])
    # One import: an addition, a partial close, a later addition and the final close (a netting account), a
    # re-read copy of the first opening deal, and a close whose opening deal was never seen.
    deals_store(
        server=server,
        deals=[
            _made(server, 10, entry=0, position=7, volume="2.00", commission="-7.00"),
            _made(server, 11, entry=0, position=7, volume="1.00", commission="-3.50", minute=1),
            _made(server, 12, entry=1, position=7, volume="0.50", commission="-1.75", minute=2, action=1),
            _made(server, 13, entry=0, position=7, volume="1.00", commission="-3.50", minute=3),
            _made(server, 14, entry=1, position=7, volume="3.50", commission="-12.25", minute=4, action=1),
            _made(server, 15, entry=1, position=8, minute=5, action=1),
        ],
    )
    stored = {d.ticket: d for d in Deal.objects.filter(server=server)}
    assert len(stored) == 6  # the re-read deal is stored once
    first = stored[10]
    partial, final, orphan = stored[12], stored[14], stored[15]
    assert (partial.open_ticket, partial.open_time) == (10, first.time)
    assert (partial.open_volume, partial.open_commission) == (Decimal("3.00"), Decimal("-10.50"))  # 10 and 11
    assert (final.open_volume, final.open_commission) == (Decimal("4.00"), Decimal("-14.00"))  # 10, 11 and 13
    assert (orphan.open_ticket, orphan.open_time, orphan.open_volume) == (None, None, None)


def test_the_migration_fills_deals_stored_before_it_by_the_same_rule(live_server_mt5):
    import importlib

    from django.db import connection

    server = live_server_mt5
    deals_store(
        server=server,
        deals=[
            _made(server, 20, entry=0, position=9, volume="2.00", commission="-7.00"),
            _made(server, 21, entry=1, position=9, volume="0.50", commission="-1.75", minute=2, action=1),
            _made(server, 22, entry=0, position=9, volume="1.00", commission="-3.50", minute=3),
            _made(server, 23, entry=1, position=9, volume="2.50", commission="-8.75", minute=4, action=1),
        ],
    )
    fields = ["ticket", "open_ticket", "open_time", "open_volume", "open_commission"]
    as_stored = list(Deal.objects.order_by("ticket").values_list(*fields))
    Deal.objects.update(open_ticket=None, open_time=None, open_volume=None, open_commission=None)

    class Editor:  # what the migration asks of its schema editor (SQLite's cannot open inside a test's atomic)
        def execute(self, sql):
            with connection.cursor() as cursor:
                cursor.execute(sql)

    importlib.import_module("mt5bridge.migrations.0006_deal_opening").backfill(None, Editor())

    assert list(Deal.objects.order_by("ticket").values_list(*fields)) == as_stored
    assert (as_stored[1][1], as_stored[1][3]) == (20, Decimal("2.00"))  # the partial close: ticket 20 only
    assert (as_stored[3][1], as_stored[3][3]) == (20, Decimal("3.00"))  # the final close: tickets 20 and 22


def test_breaker_opens_after_repeated_failures_and_fails_fast(settings, live_server_mt5):
    settings.MT5_BREAKER_THRESHOLD = 3
    live_server_mt5.url = f"http://127.0.0.1:{free_port()}"
    live_server_mt5.save()

    for _ in range(3):
        with pytest.raises(MT5RetryableError, match="refused"):
            server_call(live_server_mt5, lambda m: m.ping())
    server = TradeServer.objects.get(pk=live_server_mt5.pk)
    assert breaker_is_open(server)
    with pytest.raises(MT5RetryableError, match="circuit open"):
        server_call(server, lambda m: m.ping())
    assert server.consecutive_failures == 3


def test_readyz_names_a_trade_server_that_is_down(client, live_server_mt5):
    other = TradeServer.objects.create(
        name="live-dead",
        kind="live",
        url=f"http://127.0.0.1:{free_port()}",
        manager_login=1000,
        password_env="MT5_TEST_PASSWORD",
    )

    body = client.get("/readyz").json()

    assert body["down"] == ["mt5"]
    assert body["checks"]["mt5"] == f"down: not answering: {other.name}"
    assert "mt5" in health.READINESS_CHECKS


def test_the_idempotent_insert_leaves_generated_columns_to_the_database(live_server_mt5):
    from core.db import insert_unless_taken

    deal = _made(live_server_mt5, 30, entry=0, position=11, volume="0.37")
    assert insert_unless_taken(deal, unique=("server", "ticket"))
    assert not insert_unless_taken(_made(live_server_mt5, 30, entry=0, position=11), unique=("server", "ticket"))
    assert Deal.objects.get(pk=deal.pk).lots_centi == 37
