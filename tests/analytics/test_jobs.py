"""The nightly job, the AML run over the tables, the day-end snapshot capture, the backfill command, the router."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics.aml import aml_candidates, aml_nightly_run
from analytics.models import AccountDayEnd, ClientDaily, FillState
from analytics.router import AnalyticsReplicaRouter
from analytics.services import account_day_end_capture, analytics_backfill, analytics_nightly
from kyc.models import AmlAlert
from mt5bridge.models import TradingAccount
from tests.analytics.conftest import NOW
from tests.analytics.factories import account, at, client, deal, deposit, trade_server, withdrawal

pytestmark = pytest.mark.django_db


def _in_and_out(user, *, lots: str | None):
    """Deposit 5,000 on 10 March, withdraw 4,500 on the 12th, trading `lots` in between (or nothing)."""
    first = deposit(user, "5000.00", "2025-03-10 09:00")
    if lots:
        deal(TradingAccount.objects.get(user=user), "2025-03-11 09:00", volume=lots)
    withdrawal(user, "4500.00", "2025-03-12 09:00", method="card_refund", source=first)


def test_deposit_then_withdrawal_fires_only_for_the_client_who_did_not_trade(db):
    live = trade_server("live-1")
    idle, trader = client("DE"), client("DE")
    account(idle, live)
    account(trader, live)
    _in_and_out(idle, lots=None)
    _in_and_out(trader, lots="1.50")  # enough trading (the rule's default needs less than 1 lot to fire)
    analytics_backfill(first=date(2025, 3, 1), last=date(2025, 3, 12), now=NOW)

    raised = aml_nightly_run(day=date(2025, 3, 12))

    assert sorted(aml_candidates(day=date(2025, 3, 12))) == sorted([idle.pk, trader.pk])
    assert [(a.user_id, a.rule) for a in raised] == [(idle.pk, "deposit_then_withdrawal")]
    assert "4,500.00 USD" in raised[0].summary
    # Rerunning the night raises no second alert for the same finding (kyc keeps one per dedup key); the first
    # alert made the client high risk, so other rules may now have something new to say.
    assert "deposit_then_withdrawal" not in {a.rule for a in aml_nightly_run(day=date(2025, 3, 12))}
    assert AmlAlert.objects.filter(rule="deposit_then_withdrawal").count() == 1


def test_structuring_and_velocity_are_seen_as_of_the_day_built(db):
    live = trade_server("live-1")
    splitter = client("FR")
    account(splitter, live)
    for hour in (8, 9, 10, 11):  # four deposits just under the 10,000 USD threshold on one trading day
        deposit(splitter, "9500.00", f"2025-03-14 {hour:02d}:00")
    deposit(splitter, "9600.00", "2025-03-20 10:00")  # after the day judged: not part of that night's window
    analytics_backfill(first=date(2025, 3, 13), last=date(2025, 3, 20), now=NOW)

    raised = aml_nightly_run(day=date(2025, 3, 14))

    rules = {alert.rule for alert in raised}
    assert {"structuring", "velocity_spike"} <= rules
    structuring = next(a for a in raised if a.rule == "structuring")
    assert "deposit:" in str(structuring.evidence) and "9,600.00" not in structuring.summary


def test_no_candidates_without_money_movements(db):
    trade_server("live-1")
    analytics_backfill(first=date(2025, 3, 1), last=date(2025, 3, 2), now=NOW)
    assert aml_nightly_run(day=date(2025, 3, 2)) == []


def test_nightly_rebuilds_recent_days_then_runs_aml(db, settings):
    settings.ANALYTICS_REBUILD_DAYS = 3
    trade_server("live-1")
    user = client("DE")
    deposit(user, "100.00", "2025-03-31 10:00")

    result = analytics_nightly(now=at("2025-04-02 03:00"))  # 06:00 in Athens on 2 April: yesterday is 1 April

    assert result == {"day": "2025-04-01", "buckets": 12, "alerts": 0}
    assert sorted({s.day for s in FillState.objects.all()}) == [date(2025, 3, 30), date(2025, 3, 31), date(2025, 4, 1)]
    assert ClientDaily.objects.get(user=user).deposits_amount == Decimal("100.00")


def test_day_end_capture_keeps_the_last_snapshot_of_each_trading_day(db):
    live, demo = trade_server("live-1"), trade_server("demo-1", "demo")
    user = client("DE")
    real, play = account(user, live), account(user, demo)

    def snapshot(acct, balance: str, when: str):
        TradingAccount.objects.filter(pk=acct.pk).update(
            balance=Decimal(balance), equity=Decimal(balance) + 1, snapshot_at=at(when)
        )

    snapshot(real, "100.00", "2025-03-06 20:00")
    snapshot(play, "999.00", "2025-03-06 20:00")
    assert account_day_end_capture(now=at("2025-03-06 20:01")) == 1  # demo accounts are not kept
    snapshot(real, "150.00", "2025-03-06 21:50")
    account_day_end_capture(now=at("2025-03-06 21:51"))
    snapshot(real, "175.00", "2025-03-06 22:05")  # 00:05 in Athens: already the 7th
    account_day_end_capture(now=at("2025-03-06 22:06"))
    account_day_end_capture(now=at("2025-03-06 22:07"))  # nothing newer: nothing changes

    kept = dict(AccountDayEnd.objects.values_list("day", "balance"))
    assert kept == {date(2025, 3, 6): Decimal("150.00"), date(2025, 3, 7): Decimal("175.00")}


def test_backfill_command_with_progress_and_clear_errors(db):
    trade_server("live-1")
    out, err = StringIO(), StringIO()
    call_command("analytics_backfill", "--from", "2025-03-01", "--to", "2025-03-03", stdout=out, stderr=err)
    assert "Built 12 buckets" in out.getvalue()
    assert "3/3" in err.getvalue()  # tqdm's progress bar
    assert FillState.objects.filter(state=FillState.State.DONE).count() == 12

    with pytest.raises(CommandError, match="reversed"):
        call_command("analytics_backfill", "--from", "2025-03-03", "--to", "2025-03-01", stderr=StringIO())
    with pytest.raises(CommandError, match="future"):
        call_command("analytics_backfill", "--from", "2025-03-01", "--to", "2999-01-01", stderr=StringIO())
    with pytest.raises(CommandError, match="not a date"):
        call_command("analytics_backfill", "--from", "March", "--to", "2025-03-01", stderr=StringIO())
    assert FillState.objects.count() == 12


def test_replica_router_reads_tables_there_and_writes_and_migrates_on_the_primary():
    router = AnalyticsReplicaRouter()
    assert router.db_for_read(ClientDaily) == "analytics"
    assert router.db_for_read(FillState) is None  # locked and read before writes: the primary
    assert router.db_for_read(TradingAccount) is None
    assert router.db_for_write(ClientDaily) == "default"
    assert router.allow_migrate("analytics", "analytics") is False
    assert router.allow_migrate("default", "analytics") is True


def test_the_replica_path_selects_there_and_inserts_here(month):
    """With a replica the SELECT runs on it and its rows are inserted on the primary; here both are one database,
    so the two paths must give the same bucket."""
    from django.db import connections

    from analytics import services
    from analytics.builders import TABLES, params
    from analytics.days import day_window

    day = date(2025, 3, 6)
    services.analytics_day_build(day=day, tables=["client_daily"], now=NOW)
    direct = sorted(ClientDaily.objects.filter(day=day).values_list("user_id", "currency", "deposits_amount", "lots"))
    ClientDaily.objects.filter(day=day).delete()

    start, end = day_window(day)
    connections.settings["replica-test"] = connections.settings["default"]
    connections["replica-test"] = connections["default"]
    try:
        count = services._copy_rows(
            TABLES["client_daily"], params(connections["default"], day, start, end), "replica-test"
        )
    finally:
        del connections["replica-test"]
        del connections.settings["replica-test"]
    assert count == len(direct)
    assert (
        sorted(ClientDaily.objects.filter(day=day).values_list("user_id", "currency", "deposits_amount", "lots"))
        == direct
    )
