"""The nightly tables on a fixture month: exact numbers, the trading day in Athens, reruns, crashes, missing data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import services
from analytics.days import day_window, trading_day
from analytics.models import AccountDayEnd, BrokerDaily, ClientDaily, FillState, PaymentsDaily
from analytics.services import analytics_backfill, analytics_bucket_build, analytics_day_build, stalled_buckets
from core.errors import ApplicationError
from tests.analytics.conftest import NOW
from tests.analytics.factories import account, at, client, deposit, trade_server

pytestmark = pytest.mark.django_db

MARCH = (date(2025, 3, 1), date(2025, 3, 31))
D = Decimal


def _build_march():
    return analytics_backfill(first=MARCH[0], last=MARCH[1], now=NOW)


def _client_row(user, day: int, currency: str = "USD") -> ClientDaily:
    return ClientDaily.objects.get(user=user, day=date(2025, 3, day), currency=currency)


def _table_contents(day: date | None = None) -> dict:
    def rows(model):
        fields = [f.attname for f in model._meta.concrete_fields if f.name != "id"]
        found = model.objects.filter(day=day) if day else model.objects.all()
        return sorted(found.values_list(*fields), key=str)

    return {model.__name__: rows(model) for model in (ClientDaily, BrokerDaily, PaymentsDaily)}


def test_trading_day_follows_athens_across_the_dst_switch():
    assert trading_day(at("2025-03-05 21:59")) == date(2025, 3, 5)
    assert trading_day(at("2025-03-05 22:00")) == date(2025, 3, 6)
    assert day_window(date(2025, 3, 6)) == (at("2025-03-05 22:00"), at("2025-03-06 22:00"))
    # 30 March 2025 is 23 hours long in Athens; the 31st starts at 21:00 UTC.
    assert day_window(date(2025, 3, 30)) == (at("2025-03-29 22:00"), at("2025-03-30 21:00"))
    with pytest.raises(ValueError, match="naive"):
        trading_day(at("2025-03-05 21:59").replace(tzinfo=None))


def test_client_daily_exact_numbers_with_the_day_boundary(month):
    _build_march()
    alice, bob, carol = month["alice"], month["bob"], month["carol"]

    assert _client_row(alice, 3).deposits_amount == D("1000.10")
    four = _client_row(alice, 4)
    assert (four.deposits_count, four.deposits_amount, four.net_deposit) == (2, D("0.30"), D("0.30"))

    five = _client_row(alice, 5)  # 21:59 UTC on the 5th only
    assert (five.trades, five.lots, five.realised_pl, five.commission, five.swap) == (
        1, D("0.50"), D("12.34"), D("-1.75"), D("-0.10"),
    )  # fmt: skip
    assert five.deposits_count == 0 and five.balance_end is None

    six = _client_row(alice, 6)  # the 22:30 deposit and the 23:30 deal of the 5th (UTC), the day-end snapshot
    assert (six.deposits_count, six.deposits_amount, six.trades, six.lots) == (1, D("250.00"), 1, D("1.25"))
    assert (six.realised_pl, six.commission, six.swap) == (D("-5.55"), D("-4.38"), D("0.00"))
    assert (six.balance_end, six.equity_end, six.country) == (D("1234.56"), D("1200.01"), "DE")
    eur = _client_row(alice, 6, "EUR")
    assert (eur.trades, eur.lots, eur.realised_pl, eur.commission, eur.swap) == (
        1, D("0.30"), D("7.01"), D("-1.05"), D("-0.33"),
    )  # fmt: skip
    assert eur.balance_end is None  # the EUR account had no snapshot that day: unknown, not zero

    twelve = _client_row(bob, 12)
    assert (twelve.withdrawals_count, twelve.withdrawals_amount, twelve.net_deposit) == (1, D("1500.00"), D("-1500.00"))
    assert _client_row(bob, 29).lots == D("0.01")
    assert _client_row(bob, 30).lots == D("0.00")
    assert _client_row(bob, 31).lots == D("0.02")

    # Carol has no account: rows only on the days she moved money, country unknown as ZZ.
    assert list(ClientDaily.objects.filter(user=carol).values_list("day", "country", "deposits_amount")) == [
        (date(2025, 3, 21), "ZZ", D("200.00")),
        (date(2025, 3, 20), "ZZ", D("300.00")),
    ]
    # Demo deals never reach the tables.
    assert not ClientDaily.objects.filter(realised_pl=D("999.00")).exists()


def test_broker_daily_rolls_up_with_first_time_depositors(month):
    _build_march()
    six = BrokerDaily.objects.get(day=date(2025, 3, 6), currency="USD")
    assert (six.deposits_count, six.deposits_amount, six.ftd_count, six.active_traders) == (1, D("250.00"), 0, 1)
    assert (six.trades, six.lots, six.realised_pl, six.commission, six.swap) == (
        1, D("1.25"), D("-5.55"), D("-4.38"), D("0.00"),
    )  # fmt: skip
    assert (six.client_pl, six.broker_pl) == (D("-9.93"), D("9.93"))

    ftds = dict(BrokerDaily.objects.filter(ftd_count__gt=0).values_list("day", "ftd_amount"))
    assert ftds == {date(2025, 3, 3): D("1000.10"), date(2025, 3, 10): D("2000.00"), date(2025, 3, 20): D("300.00")}
    twelve = BrokerDaily.objects.get(day=date(2025, 3, 12), currency="USD")
    assert (twelve.withdrawals_amount, twelve.net_deposit) == (D("1500.00"), D("-1500.00"))
    month_total = sum(BrokerDaily.objects.filter(currency="USD").values_list("net_deposit", flat=True), D(0))
    assert month_total == D("1000.10") + D("0.30") + D("250.00") + D("2000.00") - D("1500.00") + D("500.00")
    eur = BrokerDaily.objects.get(day=date(2025, 3, 6), currency="EUR")
    assert (eur.client_pl, eur.broker_pl) == (D("5.63"), D("-5.63"))


def test_payments_daily_counts_by_status_and_success_rate(month):
    _build_march()
    six = PaymentsDaily.objects.get(day=date(2025, 3, 6), direction="deposit", provider="sandbox")
    assert (six.method, six.currency, six.country) == ("card", "USD", "DE")
    assert (six.count_total, six.count_succeeded, six.count_failed, six.count_open) == (3, 1, 1, 1)
    assert (six.amount_total, six.amount_succeeded, six.fees) == (D("825.00"), D("250.00"), D("7.55"))
    assert six.success_rate == D("50.0")

    wire_in = PaymentsDaily.objects.get(day=date(2025, 3, 10), direction="deposit")
    assert (wire_in.provider, wire_in.method, wire_in.country, wire_in.success_rate) == (
        "wire", "bank_wire", "GR", D("100.0"),
    )  # fmt: skip
    out = PaymentsDaily.objects.get(day=date(2025, 3, 12), direction="withdrawal")
    assert (out.provider, out.method, out.count_total, out.count_succeeded) == ("wire", "bank_wire", 3, 1)
    assert (out.count_failed, out.count_cancelled, out.count_open) == (1, 1, 0)
    assert (out.amount_total, out.amount_succeeded, out.success_rate) == (D("1650.00"), D("1500.00"), D("50.0"))


def test_rebuild_gives_identical_tables(month):
    _build_march()
    first = _table_contents()
    states = _build_march()

    assert _table_contents() == first
    assert all(state.runs == 2 for state in states)


def test_a_crash_mid_build_rolls_back_and_the_rerun_redoes_it(month, monkeypatch):
    day = date(2025, 3, 6)
    analytics_day_build(day=day, now=NOW)
    before = _table_contents()
    real_copy = services._copy_rows

    def crash_after_insert(table, params, source):
        rows = real_copy(table, params, source)
        if table.name == "broker_daily":
            raise RuntimeError("worker killed")
        return rows

    monkeypatch.setattr(services, "_copy_rows", crash_after_insert)
    with pytest.raises(RuntimeError):
        analytics_day_build(day=day, now=at("2025-04-03 12:00"))

    # The delete and insert rolled back: the old bucket is still there, whole; the fill state says STARTED.
    assert _table_contents() == before
    state = FillState.objects.get(table="broker_daily", day=day)
    assert state.state == FillState.State.STARTED
    assert stalled_buckets(now=at("2025-04-03 13:00")) == [state]

    monkeypatch.setattr(services, "_copy_rows", real_copy)
    services.analytics_nightly(now=at("2025-04-03 13:00"))  # the next night picks the stalled bucket up

    state.refresh_from_db()
    assert state.state == FillState.State.DONE and state.runs == 2
    assert _table_contents(day) == before


def test_missing_sources_mark_the_bucket_incomplete_but_build_what_exists(month):
    month["live"].deals_imported_at = at("2025-03-06 12:00")
    month["live"].save()

    state = analytics_bucket_build(table="client_daily", day=date(2025, 3, 6), now=NOW)

    assert not state.complete
    assert any("live-1: imported only up to 2025-03-06 12:00 UTC" in note for note in state.missing)
    assert any("no snapshot for 2 of 3 live accounts." in note for note in state.missing)
    assert _client_row(month["alice"], 6).deposits_amount == D("250.00")  # what exists is built

    broker = analytics_bucket_build(table="broker_daily", day=date(2025, 3, 6), now=NOW)
    assert not broker.complete and broker.missing[0].startswith("Client daily: ")


def test_a_complete_day(db):
    live = trade_server("live-1")
    user = client("FR")
    acct = account(user, live)
    AccountDayEnd.objects.create(
        day=date(2025, 3, 6), account=acct, balance=D("10"), equity=D("11"), snapshot_at=at("2025-03-06 21:00")
    )
    states = analytics_day_build(day=date(2025, 3, 6), now=NOW)
    assert [(s.table, s.complete, s.missing, s.rows) for s in states] == [
        ("client_daily", True, [], 1),
        ("broker_daily", True, [], 1),
        ("payments_daily", True, [], 0),
        ("ib_daily", True, [], 0),
    ]


def test_today_is_built_but_marked_unfinished_and_the_future_refused(db):
    trade_server("live-1")
    now = at("2025-03-06 12:00")
    state = analytics_bucket_build(table="payments_daily", day=date(2025, 3, 6), now=now)
    assert not state.complete and "has not ended yet" in state.missing[-1]

    with pytest.raises(ApplicationError, match="in the future"):
        analytics_bucket_build(table="payments_daily", day=date(2025, 3, 7), now=now)
    assert not FillState.objects.filter(day=date(2025, 3, 7)).exists()


def test_broker_daily_needs_client_daily_first_and_unknown_tables_are_refused(db):
    with pytest.raises(ApplicationError, match="not built for that day"):
        analytics_bucket_build(table="broker_daily", day=date(2025, 3, 6), now=NOW)
    assert not BrokerDaily.objects.exists()
    with pytest.raises(ApplicationError, match="not built for that day"):
        analytics_bucket_build(table="ib_daily", day=date(2025, 3, 6), now=NOW)
    assert not FillState.objects.exists()  # a refused build records nothing (no bucket left STARTED, "stalled")
    with pytest.raises(ApplicationError, match="Unknown analytics table"):
        analytics_bucket_build(table="sales_daily", day=date(2025, 3, 6), now=NOW)


def test_backfill_refuses_reversed_and_future_ranges_before_building(db):
    with pytest.raises(ApplicationError, match="reversed"):
        analytics_backfill(first=date(2025, 3, 10), last=date(2025, 3, 1), now=NOW)
    with pytest.raises(ApplicationError, match="future"):
        analytics_backfill(first=date(2025, 3, 30), last=date(2025, 4, 3), now=NOW)
    assert not FillState.objects.exists()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.decimals(min_value="0.01", max_value="99999.99", places=2), min_size=1, max_size=12))
def test_money_sums_are_exact_on_every_backend(db, amounts):
    user = client("IT")
    for minute, amount in enumerate(amounts):
        deposit(user, str(amount), f"2025-03-06 10:{minute:02d}")

    analytics_day_build(day=date(2025, 3, 6), now=NOW)

    assert ClientDaily.objects.get(user=user).deposits_amount == sum(amounts, D(0))
    assert BrokerDaily.objects.get(day=date(2025, 3, 6)).deposits_amount == sum(amounts, D(0))
    ClientDaily.objects.all().delete()
    BrokerDaily.objects.all().delete()
    user.deposits.all().delete()
