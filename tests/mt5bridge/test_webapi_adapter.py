"""The Web API adapter over real HTTP against the mock trade server process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mt5bridge.adapters.webapi import WebAPIManager
from mt5bridge.manager_api import (
    BalanceKind,
    MT5AmbiguousError,
    MT5RetryableError,
    MT5TerminalError,
    Retcode,
    mt5_password_generate,
)
from tests.mt5bridge.conftest import MANAGER_PASSWORD, free_port

FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def api(mt5_mock):
    mt5_mock.clear_faults()
    manager = WebAPIManager(url=mt5_mock.url, login=1000, password=MANAGER_PASSWORD, read_timeout=5)
    yield manager
    mt5_mock.clear_faults()
    manager.close()


_logins = iter(range(2_000_000, 3_000_000))


def _user(api, **kwargs):
    return api.user_add(
        login=next(_logins),
        group=kwargs.pop("group", "real\\standard-usd"),
        name="Test Client",
        email="client@example.com",
        leverage=kwargs.pop("leverage", 100),
        main_password=mt5_password_generate(),
        investor_password=mt5_password_generate(),
        **kwargs,
    )


def _far_future() -> datetime:
    return datetime.now(UTC) + timedelta(days=2)


def test_handshake_and_wrong_password(mt5_mock, api):
    api.connect()
    api.ping()

    wrong = WebAPIManager(url=mt5_mock.url, login=1000, password="Wrong#Pass1")
    with pytest.raises(MT5TerminalError) as caught:
        wrong.connect()
    assert caught.value.retcode == Retcode.USER_INVALID_PASSWORD


def test_user_lifecycle(api):
    user = _user(api)
    assert (user.group, user.leverage) == ("real\\standard-usd", 100)

    assert api.user_get(user.login).email == "client@example.com"
    assert api.user_update(user.login, leverage=200).leverage == 200
    api.password_change(user.login, mt5_password_generate())

    with pytest.raises(MT5TerminalError) as duplicate:
        api.user_add(
            login=user.login,
            group="real\\standard-usd",
            name="x",
            email="y@example.com",
            leverage=100,
            main_password=mt5_password_generate(),
            investor_password=mt5_password_generate(),
        )
    assert duplicate.value.retcode == Retcode.USER_LOGIN_EXISTS
    with pytest.raises(MT5TerminalError) as not_found:
        api.user_get(99_999_999)
    assert not_found.value.retcode == Retcode.NOT_FOUND


def test_user_add_refuses_weak_password_and_foreign_leverage(api):
    with pytest.raises(MT5TerminalError) as weak:
        api.user_add(
            login=next(_logins),
            group="real\\standard-usd",
            name="x",
            email="x@example.com",
            leverage=100,
            main_password="password",
            investor_password="password",
        )
    assert weak.value.retcode == Retcode.INVALID_PARAMS
    with pytest.raises(MT5TerminalError):
        _user(api, leverage=500)  # real groups stop at 1:200


def test_balance_and_account_state(api):
    user = _user(api)
    ticket = api.dealer_balance(user.login, Decimal("1500.25"), BalanceKind.BALANCE, "CRM #TEST1")
    api.dealer_balance(user.login, Decimal("-500.25"), BalanceKind.BALANCE, "CRM #TEST2")

    state = api.account_get(user.login)
    assert (state.balance, state.equity, state.margin, state.free_margin) == (
        Decimal("1000.00"),
        Decimal("1000.00"),
        Decimal("0.00"),
        Decimal("1000.00"),
    )
    assert [s.login for s in api.accounts_get_batch([user.login])] == [user.login]
    deals = api.deals_page(login=user.login, date_from=FAR_PAST, date_to=_far_future())
    assert [(d.ticket == ticket, d.action, d.profit, d.comment) for d in deals] == [
        (True, 2, Decimal("1500.25"), "CRM #TEST1"),
        (False, 2, Decimal("-500.25"), "CRM #TEST2"),
    ]


def test_balance_refusals_are_terminal(api):
    user = _user(api)
    api.dealer_balance(user.login, Decimal("100"), BalanceKind.BALANCE, "CRM #FUND")

    with pytest.raises(MT5TerminalError) as no_money:
        api.dealer_balance(user.login, Decimal("-100.01"), BalanceKind.BALANCE, "CRM #TOO-MUCH")
    assert no_money.value.retcode == Retcode.NO_MONEY
    with pytest.raises(MT5TerminalError) as long_comment:
        api.dealer_balance(user.login, Decimal("1"), BalanceKind.BALANCE, "x" * 32)
    assert long_comment.value.retcode == Retcode.INVALID_PARAMS
    assert api.account_get(user.login).balance == Decimal("100.00")


def test_deal_pages_and_ticket_cursor(api):
    user = _user(api)
    for i in range(5):
        api.dealer_balance(user.login, Decimal("10"), BalanceKind.BALANCE, f"CRM #P{i}")

    first = api.deals_page(login=user.login, date_from=FAR_PAST, date_to=_far_future(), total=2)
    rest = api.deals_page(login=user.login, date_from=FAR_PAST, date_to=_far_future(), after_ticket=first[-1].ticket)

    assert [d.comment for d in first + rest] == [f"CRM #P{i}" for i in range(5)]
    assert api.deals_total(login=user.login, date_from=FAR_PAST, date_to=_far_future()) == 5


def test_groups_list_leverages(api):
    groups = {g.name: g for g in api.groups()}
    assert groups["real\\standard-usd"].leverages == (30, 50, 100, 200)
    assert groups["real\\pro-usd"].commission_per_lot == Decimal("3.50")


def test_lost_reply_after_apply_is_ambiguous_and_the_deal_exists(mt5_mock, api):
    user = _user(api)
    mt5_mock.faults(lost_response_ratio=1.0, paths=["/api/trade/balance"])

    with pytest.raises(MT5AmbiguousError):
        api.dealer_balance(user.login, Decimal("42"), BalanceKind.BALANCE, "CRM #LOST1")

    mt5_mock.clear_faults()
    deals = api.deals_page(login=user.login, date_from=FAR_PAST, date_to=_far_future())
    assert [d.comment for d in deals] == ["CRM #LOST1"]


def test_server_error_is_ambiguous_for_writes_and_retryable_for_reads(mt5_mock, api):
    user = _user(api)
    mt5_mock.faults(http_5xx_ratio=1.0)

    with pytest.raises(MT5AmbiguousError):
        api.dealer_balance(user.login, Decimal("1"), BalanceKind.BALANCE, "CRM #5XX")
    with pytest.raises(MT5RetryableError) as read:
        api.account_get(user.login)
    assert not isinstance(read.value, MT5AmbiguousError)


def test_timeout_retcode_is_ambiguous(mt5_mock, api):
    user = _user(api)
    mt5_mock.faults(retcode_ratio=1.0, retcode="9 Timeout", paths=["/api/trade/balance"])

    with pytest.raises(MT5AmbiguousError):
        api.dealer_balance(user.login, Decimal("1"), BalanceKind.BALANCE, "CRM #TIMEOUT")


def test_dropped_session_is_reopened_transparently(mt5_mock, api):
    user = _user(api)
    mt5_mock.faults(drop_session_ratio=1.0, paths=["/api/user/get"])
    with pytest.raises(MT5TerminalError):
        api.user_get(user.login)  # dropped twice in a row: the re-login happened, then the retry was dropped too
    mt5_mock.clear_faults()

    assert api.user_get(user.login).login == user.login


def test_nothing_listening_is_retryable_and_not_ambiguous():
    api = WebAPIManager(url=f"http://127.0.0.1:{free_port()}", login=1000, password=MANAGER_PASSWORD)

    with pytest.raises(MT5RetryableError) as caught:
        api.dealer_balance(1, Decimal("1"), BalanceKind.BALANCE, "CRM #NOPE")
    assert not isinstance(caught.value, MT5AmbiguousError)


def test_latency_beyond_the_read_timeout_is_ambiguous(mt5_mock):
    api = WebAPIManager(url=mt5_mock.url, login=1000, password=MANAGER_PASSWORD, read_timeout=0.3)
    api.connect()
    mt5_mock.faults(latency_ms=800, paths=["/api/trade/balance"])
    try:
        with pytest.raises(MT5AmbiguousError):
            api.dealer_balance(1, Decimal("1"), BalanceKind.BALANCE, "CRM #SLOW")
    finally:
        mt5_mock.clear_faults()
