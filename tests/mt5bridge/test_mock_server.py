"""The mock MT5 trade server, driven over HTTP the way the CRM's Web API adapter will drive it.

The handshake crypto is re-implemented here from the MT5 specification rather than imported, so these tests
check the protocol, not the server against itself. No test touches Django or the database fixtures.
"""

from __future__ import annotations

import hashlib
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from mt5bridge.mock_server import MockTradeServer
from mt5bridge.mock_server.simulation import SimulationSettings

ROOT = Path(__file__).resolve().parents[2]
MANAGER_LOGIN = 1000
MANAGER_PASSWORD = "Dealer#Desk1"
CLIENT_PASSWORD = "Tr4der!pass"
INVESTOR_PASSWORD = "Inv3stor?pass"
NOT_AUTHORISED = "8 Not enough permissions"
DONE = "0 Done"


def mt5_password_hash(password: str) -> bytes:
    inner = hashlib.md5(password.encode("utf-16-le")).digest()  # noqa: S324 - the MT5 protocol fixes MD5
    return hashlib.md5(inner + b"WebAPI").digest()  # noqa: S324


def challenge_answer(password: str, rand: bytes) -> str:
    return hashlib.md5(mt5_password_hash(password) + rand).hexdigest()  # noqa: S324


class Mt5Client:
    """A minimal Web API client: one requests.Session, so the MT5SESSION cookie rides along."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def login(self, password: str = MANAGER_PASSWORD) -> dict[str, Any]:
        start = self.get("/api/auth/start", version=484, agent="WebAPI", login=MANAGER_LOGIN, type="manager")
        assert start["retcode"] == DONE and start["version_access"] == "484"
        cli_rand = secrets.token_bytes(16)
        answer = self.get(
            "/api/auth/answer",
            srv_rand_answer=challenge_answer(password, bytes.fromhex(start["srv_rand"])),
            cli_rand=cli_rand.hex(),
        )
        if answer["retcode"] == DONE:
            # The server proves it knows the password too.
            assert answer["cli_rand_answer"] == challenge_answer(MANAGER_PASSWORD, cli_rand)
        return answer

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(self.base_url + path, params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        response = self.http.post(self.base_url + path, params=params, json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def control(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.base_url + path, json=body, timeout=30)

    def add_user(self, group: str = "real\\standard-usd", **fields: Any) -> int:
        body = {"group": group, "name": "Ada Lovelace", "pass_main": CLIENT_PASSWORD}
        body |= {"pass_investor": INVESTOR_PASSWORD, **fields}
        reply = self.post("/api/user/add", body)
        assert reply["retcode"] == DONE, reply
        return int(reply["answer"]["Login"])

    def balance(self, login: int, amount: str, comment: str = "", kind: int = 2) -> dict[str, Any]:
        return self.get("/api/trade/balance", login=login, type=kind, balance=amount, comment=comment)

    def deposit(self, login: int, amount: str, comment: str = "deposit") -> int:
        reply = self.balance(login, amount, comment)
        assert reply["retcode"] == DONE, reply
        return int(reply["answer"]["ticket"])

    def account(self, login: int) -> dict[str, str]:
        reply = self.get("/api/user/account/get", login=login)
        assert reply["retcode"] == DONE, reply
        return reply["answer"]

    def deals(self, **params: Any) -> list[dict[str, str]]:
        reply = self.get("/api/deal/get_page", **params)
        assert reply["retcode"] == DONE, reply
        return reply["answer"]

    def all_deals(self, login: int) -> list[dict[str, str]]:
        """Every deal of a login, paged by the from_ticket cursor."""
        deals: list[dict[str, str]] = []
        while page := self.deals(login=login, from_ticket=deals[-1]["Deal"] if deals else 0):
            deals += page
        return deals

    def set_bids(self, **bids: str) -> None:
        assert self.control("POST", "/_mock/prices", bids).status_code == 200

    def open_position(self, login: int, symbol: str, action: int, volume: int) -> int:
        body = {"login": login, "symbol": symbol, "action": action, "volume": volume}
        reply = self.control("POST", "/_mock/positions/open", body)
        assert reply.status_code == 200, reply.text
        return int(reply.json()["position"])

    def simulate(self, steps: int) -> dict[str, Any]:
        reply = self.control("POST", "/_mock/simulate", {"steps": steps})
        assert reply.status_code == 200, reply.text
        return reply.json()

    def set_faults(self, **settings: Any) -> None:
        reply = self.control("POST", "/_mock/faults", settings)
        assert reply.status_code == 200, reply.text


StartServer = Callable[..., MockTradeServer]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    servers: list[MockTradeServer] = []

    def start(**options: Any) -> MockTradeServer:
        options.setdefault("data_path", tmp_path / f"mt5-{len(servers)}.sqlite3")
        options.setdefault("seed", 7)
        server = MockTradeServer(port=0, manager_login=MANAGER_LOGIN, manager_password=MANAGER_PASSWORD, **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> MockTradeServer:
    return start_server()


@pytest.fixture
def mt5(server: MockTradeServer) -> Mt5Client:
    client = Mt5Client(server.url)
    assert client.login()["retcode"] == DONE
    return client


def money(value: str) -> Decimal:
    return Decimal(value)


def balance_from_deals(deals: list[dict[str, str]]) -> Decimal:
    """What the balance must be: every non-credit deal's profit, commission and swap."""
    return sum(
        (money(d["Profit"]) + money(d["Commission"]) + money(d["Storage"]) for d in deals if d["Action"] != "3"),
        Decimal("0.00"),
    )


# -- handshake and sessions --------------------------------------------------------------------------------


def test_handshake_authorises_the_session_and_the_server_proves_the_password(mt5: Mt5Client) -> None:
    # The fixture's login() already checked cli_rand_answer; an authorised call now succeeds.
    assert mt5.get("/api/ping") == {"retcode": DONE}
    assert "MT5SESSION" in mt5.http.cookies


def test_wrong_password_is_refused_and_the_session_stays_unauthorised(server: MockTradeServer) -> None:
    client = Mt5Client(server.url)

    answer = client.login(password="Wrong#Pass1")

    assert answer == {"retcode": "3006 Invalid account or password"}
    assert client.get("/api/ping") == {"retcode": NOT_AUTHORISED}


def test_calls_without_a_session_are_refused_and_not_applied(server: MockTradeServer) -> None:
    client = Mt5Client(server.url)

    reply = client.post("/api/user/add", {"group": "real\\standard-usd", "name": "X", "pass_main": CLIENT_PASSWORD})

    assert reply == {"retcode": NOT_AUTHORISED}
    assert client.control("GET", "/_mock/stats").json()["users"] == 0


def test_session_expires_when_idle_and_activity_keeps_it_alive(start_server: StartServer) -> None:
    client = Mt5Client(start_server(session_idle_timeout=0.3).url)
    client.login()
    for _ in range(3):  # 0.45 s in all, longer than the timeout, but never idle for that long
        time.sleep(0.15)
        assert client.get("/api/ping") == {"retcode": DONE}

    time.sleep(0.45)

    assert client.get("/api/ping") == {"retcode": NOT_AUTHORISED}
    assert client.login()["retcode"] == DONE
    assert client.get("/api/ping") == {"retcode": DONE}


def test_unknown_api_path_is_404(mt5: Mt5Client) -> None:
    response = mt5.http.get(mt5.base_url + "/api/no/such/thing", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"retcode": "13 Not found"}


# -- users ---------------------------------------------------------------------------------------------------


def test_user_add_allocates_logins_from_500000_and_answers_the_record(mt5: Mt5Client) -> None:
    first = mt5.post(
        "/api/user/add",
        {
            "Group": "real\\pro-usd",
            "Name": "Grace Hopper",
            "Email": "grace@example.com",
            "Country": "United States",
            "Leverage": 200,
            "MainPassword": CLIENT_PASSWORD,
            "InvestPassword": INVESTOR_PASSWORD,
        },
    )
    second_login = mt5.add_user()

    record = first["answer"]
    assert first["retcode"] == DONE
    assert record["Login"] == "500000" and second_login == 500001
    assert record["Group"] == "real\\pro-usd"
    assert record["Name"] == "Grace Hopper" and record["Email"] == "grace@example.com"
    assert record["Country"] == "United States" and record["Leverage"] == "200"
    assert record["Balance"] == "0.00" and int(record["Registration"]) > 0
    assert mt5.get("/api/user/get", login=500000)["answer"] == record


def test_user_add_with_an_explicit_login_and_a_duplicate(mt5: Mt5Client) -> None:
    assert mt5.add_user(login=777777) == 777777

    duplicate = mt5.post(
        "/api/user/add",
        {"login": 777777, "group": "real\\standard-usd", "name": "Again", "pass_main": CLIENT_PASSWORD,
         "pass_investor": INVESTOR_PASSWORD},
    )  # fmt: skip

    assert duplicate == {"retcode": "3004 User with the same login already exists"}
    assert mt5.add_user() == 500000
    assert mt5.control("GET", "/_mock/stats").json()["users"] == 2


@pytest.mark.parametrize(
    "password",
    ["Sh0rt!", "alllower1!", "ALLUPPER1!", "NoDigits!!", "NoSpecial12", "Way2Long!Password!!"],
)
def test_user_add_refuses_a_password_breaking_mt5_rules(mt5: Mt5Client, password: str) -> None:
    reply = mt5.post(
        "/api/user/add",
        {"group": "real\\standard-usd", "name": "Weak", "pass_main": password, "pass_investor": INVESTOR_PASSWORD},
    )

    assert reply == {"retcode": "3 Invalid parameters"}
    assert mt5.control("GET", "/_mock/stats").json()["users"] == 0


def test_user_add_checks_leverage_against_the_group_and_the_group_exists(mt5: Mt5Client) -> None:
    base = {"name": "Lev", "pass_main": CLIENT_PASSWORD, "pass_investor": INVESTOR_PASSWORD}

    too_high = mt5.post("/api/user/add", {**base, "group": "real\\standard-usd", "leverage": 500})
    unknown_group = mt5.post("/api/user/add", {**base, "group": "real\\nope", "leverage": 100})
    demo = mt5.post("/api/user/add", {**base, "group": "demo\\standard-usd", "leverage": 500})

    assert too_high == {"retcode": "3 Invalid parameters"}
    assert unknown_group == {"retcode": "13 Not found"}
    assert demo["retcode"] == DONE and demo["answer"]["Leverage"] == "500"


def test_user_update_and_password_change(mt5: Mt5Client) -> None:
    login = mt5.add_user(leverage=100)

    updated = mt5.post("/api/user/update", {"leverage": 30, "name": "New Name"}, login=login)
    refused = mt5.get("/api/user/update", login=login, leverage=500)
    changed = mt5.get("/api/user/change_password", login=login, type="main", password="N3w!Password")
    weak = mt5.get("/api/user/change_password", login=login, type="investor", password="weak")

    assert updated["answer"]["Leverage"] == "30" and updated["answer"]["Name"] == "New Name"
    assert refused == {"retcode": "3 Invalid parameters"}
    assert changed == {"retcode": DONE} and weak == {"retcode": "3 Invalid parameters"}
    assert mt5.get("/api/user/check_password", login=login, type="main", password="N3w!Password") == {"retcode": DONE}
    assert mt5.get("/api/user/check_password", login=login, type="main", password=CLIENT_PASSWORD) == {
        "retcode": "3006 Invalid account or password"
    }
    assert mt5.get("/api/user/check_password", login=login, type="investor", password=INVESTOR_PASSWORD) == {
        "retcode": DONE
    }


def test_user_update_refuses_a_currency_change_while_the_account_holds_money(mt5: Mt5Client) -> None:
    login = mt5.add_user()
    mt5.deposit(login, "10.00")

    reply = mt5.get("/api/user/update", login=login, group="real\\standard-eur")

    assert reply == {"retcode": "3010 Group change to a different currency"}
    assert mt5.get("/api/user/get", login=login)["answer"]["Group"] == "real\\standard-usd"
    assert mt5.get("/api/user/update", login=login, group="real\\pro-usd")["answer"]["Group"] == "real\\pro-usd"


# -- balance operations ----------------------------------------------------------------------------------


def test_deposit_and_withdrawal_write_deals_with_their_comments(mt5: Mt5Client) -> None:
    login = mt5.add_user()

    first = mt5.deposit(login, "1000.00", "crm-op-1")
    second = mt5.deposit(login, "-100.50", "crm-op-2")
    credit = mt5.balance(login, "50.00", "bonus credit", kind=3)

    account = mt5.account(login)
    deals = mt5.deals(login=login)
    assert second == first + 1
    assert credit["retcode"] == DONE
    assert account["Balance"] == "899.50" and account["Credit"] == "50.00" and account["Equity"] == "949.50"
    assert [(d["Deal"], d["Action"], d["Profit"], d["Comment"]) for d in deals] == [
        (str(first), "2", "1000.00", "crm-op-1"),
        (str(second), "2", "-100.50", "crm-op-2"),
        (credit["answer"]["ticket"], "3", "50.00", "bonus credit"),
    ]
    assert balance_from_deals(deals) == money(account["Balance"])


@pytest.mark.parametrize(
    ("amount", "comment", "kind", "retcode"),
    [
        ("10.00", "x" * 32, 2, "3 Invalid parameters"),  # MT5 comments hold 31 characters
        ("10.005", "", 2, "3 Invalid parameters"),
        ("0", "", 2, "3 Invalid parameters"),
        ("10.00", "", 7, "3 Invalid parameters"),
        ("10000000.01", "", 2, "4005 Money limit exceeded"),
        ("-0.01", "", 2, "10019 No money"),
        ("-0.01", "", 3, "10019 No money"),
    ],
)
def test_refused_balance_operations_write_nothing(
    mt5: Mt5Client, amount: str, comment: str, kind: int, retcode: str
) -> None:
    login = mt5.add_user()

    reply = mt5.balance(login, amount, comment, kind=kind)

    assert reply == {"retcode": retcode}
    assert mt5.get("/api/deal/get_total", login=login)["answer"] == {"total": "0"}
    assert mt5.account(login)["Balance"] == "0.00"


def test_balance_operation_for_an_unknown_login_is_not_found(mt5: Mt5Client) -> None:
    assert mt5.balance(123, "10.00") == {"retcode": "13 Not found"}


def test_withdrawal_over_free_margin_is_no_money(mt5: Mt5Client) -> None:
    login = mt5.add_user(leverage=100)
    mt5.deposit(login, "1000.00")
    mt5.set_bids(EURUSD="1.08488")  # ask 1.08500
    mt5.open_position(login, "EURUSD", 0, 1000)
    # profit (1.08488 - 1.08500) x 10,000 = -1.20; margin 0.1 x 100,000 x 1.08488 / 100 = 108.49
    assert mt5.account(login)["MarginFree"] == "890.31"

    over = mt5.balance(login, "-890.32", "too much")
    exact = mt5.balance(login, "-890.31", "all free margin")

    assert over == {"retcode": "10019 No money"}
    assert exact["retcode"] == DONE
    account = mt5.account(login)
    assert account["Balance"] == "109.69" and account["MarginFree"] == "0.00"
    assert [d["Comment"] for d in mt5.deals(login=login) if d["Action"] == "2"] == ["deposit", "all free margin"]


def test_concurrent_clients_apply_every_balance_operation_exactly_once(mt5: Mt5Client) -> None:
    login = mt5.add_user()
    mt5.deposit(login, "100.00")
    tickets: list[int] = []
    errors: list[Any] = []

    def trade() -> None:
        client = Mt5Client(mt5.base_url)
        client.login()
        for index in range(300):
            reply = client.balance(login, "2.00" if index % 2 == 0 else "-1.00", f"op-{index}")
            if reply["retcode"] == DONE:
                tickets.append(int(reply["answer"]["ticket"]))
            else:
                errors.append(reply)

    workers = [threading.Thread(target=trade) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    assert len(set(tickets)) == 600
    assert mt5.account(login)["Balance"] == "400.00"
    assert mt5.get("/api/deal/get_total", login=login)["answer"] == {"total": "601"}


# -- account arithmetic ------------------------------------------------------------------------------------


def test_account_arithmetic_for_one_lot_of_eurusd(mt5: Mt5Client) -> None:
    login = mt5.add_user(leverage=100)
    mt5.deposit(login, "10000.00")
    mt5.set_bids(EURUSD="1.08488")  # ask 1.08500: a buy fills at 1.08500
    position = mt5.open_position(login, "EURUSD", 0, 10_000)

    at_open = mt5.account(login)
    mt5.set_bids(EURUSD="1.09000")
    moved = mt5.account(login)

    # Profit: (bid - open) x 100,000 x 1 lot. Margin: 1 lot x 100,000 x bid / 100. Level: equity / margin.
    assert (at_open["Profit"], at_open["Margin"], at_open["Equity"]) == ("-12.00", "1084.88", "9988.00")
    assert (at_open["MarginFree"], at_open["MarginLevel"]) == ("8903.12", "920.65")
    assert (moved["Balance"], moved["Profit"], moved["Margin"]) == ("10000.00", "500.00", "1090.00")
    assert (moved["Equity"], moved["MarginFree"], moved["MarginLevel"]) == ("10500.00", "9410.00", "963.30")
    [held] = mt5.get("/api/position/get_page", login=login)["answer"]
    assert (held["Position"], held["Action"], held["Volume"]) == (str(position), "0", "10000")
    assert (held["PriceOpen"], held["PriceCurrent"], held["Profit"]) == ("1.08500", "1.09000", "500.00")

    close = mt5.control("POST", "/_mock/positions/close", {"position": position}).json()

    out = mt5.get("/api/deal/get", ticket=close["deal"])["answer"]
    assert (out["Action"], out["Entry"], out["Price"], out["PricePosition"]) == ("1", "1", "1.09000", "1.08500")
    assert (out["Profit"], out["Volume"], out["ContractSize"]) == ("500.00", "10000", "100000")
    after = mt5.account(login)
    assert (after["Balance"], after["Margin"], after["MarginLevel"]) == ("10500.00", "0.00", "0.00")


def test_account_arithmetic_converts_yen_profit_into_a_euro_account(mt5: Mt5Client) -> None:
    login = mt5.add_user(group="real\\standard-eur", leverage=100)
    mt5.deposit(login, "5000.00")
    mt5.set_bids(EURUSD="1.10000", USDJPY="150.000")
    mt5.open_position(login, "USDJPY", 1, 5_000)  # sell 0.50 lot at the bid, 150.000

    mt5.set_bids(USDJPY="149.000")  # the sell closes at the ask, 149.014
    account = mt5.account(login)

    # Profit: (150.000 - 149.014) x 100,000 x 0.5 = 49,300 JPY -> / 149.000 USD -> / 1.10000 EUR = 300.79.
    # Margin: 0.5 x 100,000 x 149.000 / 100 = 74,500 JPY = 500 USD = 454.55 EUR.
    assert account["Currency"] == "EUR"
    assert (account["Profit"], account["Margin"], account["Equity"]) == ("300.79", "454.55", "5300.79")
    assert (account["MarginFree"], account["MarginLevel"]) == ("4846.24", "1166.16")


def test_account_batch_by_logins_and_by_group(mt5: Mt5Client) -> None:
    real = [mt5.add_user() for _ in range(3)]
    demo = mt5.add_user(group="demo\\standard-usd")
    for index, login in enumerate(real):
        mt5.deposit(login, f"{index + 1}00.00")

    by_login = mt5.get("/api/user/account/get_batch", login=f"{real[0]},{real[2]},{demo},999")["answer"]
    by_group = mt5.get("/api/user/account/get_batch", group="real\\*")["answer"]

    assert [(a["Login"], a["Balance"]) for a in by_login] == [
        (str(real[0]), "100.00"),
        (str(real[2]), "300.00"),
        (str(demo), "0.00"),
    ]
    assert [a["Login"] for a in by_group] == [str(login) for login in real]


# -- deals, positions, groups, symbols ---------------------------------------------------------------------


def test_deal_paging_caps_at_100_and_the_ticket_cursor_sees_every_deal(mt5: Mt5Client) -> None:
    real = mt5.add_user()
    demo = mt5.add_user(group="demo\\standard-usd")
    bulk = mt5.control("POST", "/_mock/bulk_deals", {"logins": [real], "count": 250, "days": 2}).json()
    mt5.deposit(demo, "100.00")

    first = mt5.deals(login=real, total=500)
    last = mt5.deals(login=real, offset=200, total=100)
    by_cursor = mt5.all_deals(real)

    assert bulk["deals"] == 250
    assert mt5.get("/api/deal/get_total", login=real)["answer"] == {"total": "250"}
    assert len(first) == 100 and len(last) == 50
    tickets = [int(d["Deal"]) for d in by_cursor]
    assert len(tickets) == 250 and tickets == sorted(set(tickets))
    assert [d["Deal"] for d in first] == [str(t) for t in tickets[:100]]
    assert {d["Entry"] for d in by_cursor} == {"0", "1"}
    assert balance_from_deals(by_cursor) == money(mt5.account(real)["Balance"])


def test_deal_listing_by_group_mask_and_time_range(mt5: Mt5Client) -> None:
    real = mt5.add_user()
    pro = mt5.add_user(group="real\\pro-usd")
    demo = mt5.add_user(group="demo\\standard-usd")
    for login in (real, pro, demo):
        mt5.deposit(login, "100.00")
    now = int(time.time())

    def total(**params: Any) -> int:
        return int(mt5.get("/api/deal/get_total", **params)["answer"]["total"])

    assert total(group="real\\*") == 2
    assert total(group="REAL\\*,!real\\pro*") == 1
    assert total(group="*") == 3
    assert total(group="real\\*", **{"from": now - 60, "to": now + 60}) == 2
    assert total(group="real\\*", **{"from": now + 3600, "to": now + 7200}) == 0
    assert [d["Login"] for d in mt5.deals(group="real\\*")] == [str(real), str(pro)]
    assert mt5.get("/api/deal/get_total") == {"retcode": "3 Invalid parameters"}


def test_positions_by_login_and_batch(mt5: Mt5Client) -> None:
    login = mt5.add_user()
    other = mt5.add_user()
    for account in (login, other):
        mt5.deposit(account, "50000.00")
    opened = [mt5.open_position(login, symbol, 0, 100) for symbol in ("EURUSD", "XAUUSD", "US30")]
    mt5.open_position(other, "GBPUSD", 1, 200)

    page = mt5.get("/api/position/get_page", login=login, offset=1, total=1)["answer"]
    batch = mt5.get("/api/position/get_batch", login=f"{login},{other}")["answer"]

    assert mt5.get("/api/position/get_total", login=login)["answer"] == {"total": "3"}
    assert [p["Position"] for p in page] == [str(opened[1])]
    assert [(p["Login"], p["Symbol"]) for p in batch] == [
        (str(login), "EURUSD"),
        (str(login), "XAUUSD"),
        (str(login), "US30"),
        (str(other), "GBPUSD"),
    ]
    assert mt5.get("/api/position/get_total", login=42) == {"retcode": "13 Not found"}


def test_groups_and_symbols(mt5: Mt5Client) -> None:
    total = int(mt5.get("/api/group/total")["answer"]["total"])
    names = [mt5.get("/api/group/next", index=index)["answer"]["Group"] for index in range(total)]
    pro = mt5.get("/api/group/get", group="real\\pro-usd")["answer"]
    gold = mt5.get("/api/symbol/get", symbol="XAUUSD")["answer"]
    ticks = mt5.get("/api/tick/last", symbol="EURUSD,USDJPY")["answer"]

    assert sorted(names) == [
        "demo\\pro-eur",
        "demo\\standard-usd",
        "real\\pro-usd",
        "real\\standard-eur",
        "real\\standard-usd",
    ]
    assert mt5.get("/api/group/next", index=total) == {"retcode": "13 Not found"}
    assert (pro["Currency"], pro["CommissionPerLot"], pro["MarginStopOut"]) == ("USD", "3.50", "50.00")
    assert pro["LeverageAllowed"] == ["30", "50", "100", "200"]
    assert (gold["ContractSize"], gold["Digits"], gold["CurrencyProfit"]) == ("100", "2", "USD")
    assert [t["Symbol"] for t in ticks] == ["EURUSD", "USDJPY"]
    assert all(Decimal(t["Ask"]) > Decimal(t["Bid"]) > 0 for t in ticks)


# -- fault injection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["refuse", "http_5xx", "retcode", "drop_session"])
def test_faults_that_strike_before_applying_leave_no_trace(mt5: Mt5Client, kind: str) -> None:
    login = mt5.add_user()
    mt5.set_faults(**{f"{kind}_ratio": 1.0}, retcode="10 No connection", paths=["/api/trade/*"], max_faults=1)

    if kind == "refuse":
        with pytest.raises(requests.ConnectionError):
            mt5.balance(login, "100.00", "faulted")
    else:
        response = mt5.http.get(
            mt5.base_url + "/api/trade/balance",
            params={"login": login, "type": 2, "balance": "100.00", "comment": "faulted"},
            timeout=5,
        )
        expected = {
            "http_5xx": (503, None),
            "retcode": (200, "10 No connection"),
            "drop_session": (200, NOT_AUTHORISED),
        }[kind]
        assert (response.status_code, response.json().get("retcode")) == expected

    if kind == "drop_session":
        assert mt5.get("/api/ping") == {"retcode": NOT_AUTHORISED}
        mt5.login()
    assert mt5.control("GET", "/_mock/faults").json()["injected"][kind] == 1
    assert mt5.all_deals(login) == []
    assert mt5.account(login)["Balance"] == "0.00"
    assert mt5.deposit(login, "100.00", "retried") > 0  # the budget of one fault is spent


def test_lost_response_applies_the_operation_although_the_client_sees_an_error(mt5: Mt5Client) -> None:
    login = mt5.add_user()
    mt5.set_faults(lost_response_ratio=1.0, paths=["/api/trade/balance"], max_faults=1)
    started = int(time.time())

    with pytest.raises(requests.ConnectionError):
        mt5.balance(login, "250.00", "crm-op-42")

    # The bridge's recovery: look the operation up by its comment before any retry.
    found = [
        d for d in mt5.deals(login=login, **{"from": started - 5, "to": started + 5}) if d["Comment"] == "crm-op-42"
    ]
    assert len(found) == 1 and found[0]["Profit"] == "250.00"
    assert mt5.account(login)["Balance"] == "250.00"


def test_latency_delays_only_the_chosen_paths(mt5: Mt5Client) -> None:
    mt5.set_faults(latency_ms=250, paths=["/api/ping"])

    started = time.perf_counter()
    mt5.get("/api/ping")
    delayed = time.perf_counter() - started
    started = time.perf_counter()
    mt5.get("/api/group/total")
    prompt = time.perf_counter() - started

    assert delayed >= 0.25 > prompt


def test_default_fault_paths_spare_the_handshake_and_the_control_routes(mt5: Mt5Client) -> None:
    mt5.set_faults(refuse_ratio=1.0)

    assert mt5.login()["retcode"] == DONE
    assert mt5.control("GET", "/_mock/health").json() == {"ok": True}
    with pytest.raises(requests.ConnectionError):
        mt5.get("/api/ping")

    assert mt5.control("DELETE", "/_mock/faults").json()["refuse_ratio"] == 0.0
    assert mt5.get("/api/ping") == {"retcode": DONE}


def test_fault_settings_are_validated(mt5: Mt5Client) -> None:
    too_likely = mt5.control("POST", "/_mock/faults", {"refuse_ratio": 0.6, "http_5xx_ratio": 0.6})
    unknown = mt5.control("POST", "/_mock/faults", {"explode_ratio": 1.0})
    bad_retcode = mt5.control("POST", "/_mock/faults", {"retcode_ratio": 0.1, "retcode": "timeout"})

    assert [r.status_code for r in (too_likely, unknown, bad_retcode)] == [400, 400, 400]
    assert mt5.control("GET", "/_mock/faults").json()["refuse_ratio"] == 0.0


def test_fault_draws_are_reproducible_with_a_seed(start_server: StartServer) -> None:
    outcomes = []
    for _ in range(2):
        client = Mt5Client(start_server(seed=99).url)
        client.login()
        client.set_faults(retcode_ratio=0.4)
        outcomes.append([client.get("/api/ping")["retcode"] for _ in range(30)])

    assert outcomes[0] == outcomes[1]
    assert DONE in outcomes[0] and "9 Timeout" in outcomes[0]


# -- simulation --------------------------------------------------------------------------------------------


def test_simulation_trades_funded_accounts_only(mt5: Mt5Client) -> None:
    funded = mt5.add_user(group="real\\pro-usd")
    idle = mt5.add_user(group="real\\pro-usd")
    mt5.deposit(funded, "20000.00")

    report = mt5.simulate(120)

    deals = mt5.all_deals(funded)
    trades = [d for d in deals if d["Action"] in ("0", "1")]
    assert report["ticks"] == 120 and report["opened"] > 0 and report["closed"] > 0
    assert mt5.get("/api/deal/get_total", login=idle)["answer"] == {"total": "0"}
    assert {d["Entry"] for d in trades} == {"0", "1"}
    opened = {d["PositionID"]: d for d in trades if d["Entry"] == "0"}
    for out in (d for d in trades if d["Entry"] == "1"):
        assert opened[out["PositionID"]]["Volume"] == out["Volume"]
        assert out["Action"] != opened[out["PositionID"]]["Action"]
    for deal in trades:  # 3.50 per lot per side, MT5 volume 10000 = 1 lot
        assert money(deal["Commission"]) == -(Decimal(deal["Volume"]) / 10000 * Decimal("3.50")).quantize(
            Decimal("0.01")
        )
    assert balance_from_deals(deals) == money(mt5.account(funded)["Balance"])


def test_simulation_is_deterministic_with_a_seed(start_server: StartServer) -> None:
    runs = []
    for _ in range(2):
        client = Mt5Client(start_server(seed=2024).url)
        client.login()
        for amount in ("10000.00", "2500.00"):
            client.deposit(client.add_user(), amount)
        client.simulate(80)
        deals = client.all_deals(500000) + client.all_deals(500001)
        runs.append([{k: v for k, v in d.items() if k not in ("Time", "TimeMsc")} for d in deals])

    assert runs[0] == runs[1]
    assert len(runs[0]) > 10


def test_stop_out_closes_the_most_losing_position(start_server: StartServer) -> None:
    mt5 = Mt5Client(start_server(simulation_settings=SimulationSettings(traders_per_tick=0)).url)
    mt5.login()
    login = mt5.add_user(leverage=100)
    mt5.deposit(login, "300.00")
    mt5.set_bids(EURUSD="1.08488", GBPUSD="1.26984")
    eurusd = mt5.open_position(login, "EURUSD", 0, 1000)
    gbpusd = mt5.open_position(login, "GBPUSD", 0, 100)
    # EURUSD loses 250: equity 49.84 against 118.70 margin is a 42% margin level, under the 50% stop out.
    mt5.set_bids(EURUSD="1.06000")

    report = mt5.simulate(1)

    assert report["stopped_out"] == 1
    [stop_out] = [d for d in mt5.deals(login=login) if d["Entry"] == "1"]
    assert (stop_out["PositionID"], stop_out["Reason"]) == (str(eurusd), "5")
    assert stop_out["Comment"].startswith("[so ")
    assert [p["Position"] for p in mt5.get("/api/position/get_page", login=login)["answer"]] == [str(gbpusd)]


def test_rollover_charges_swap_and_closing_realises_it(start_server: StartServer) -> None:
    settings = SimulationSettings(traders_per_tick=0, rollover_ticks=2)
    mt5 = Mt5Client(start_server(simulation_settings=settings).url)
    mt5.login()
    login = mt5.add_user()
    mt5.deposit(login, "1000.00")
    position = mt5.open_position(login, "EURUSD", 0, 1000)

    mt5.simulate(6)  # rollovers at ticks 2, 4 and 6; the third is the triple one: 5 nights

    # 5 nights x -6.80 per lot x 0.1 lot
    assert mt5.account(login)["Storage"] == "-3.40"
    deal = mt5.control("POST", "/_mock/positions/close", {"position": position}).json()["deal"]
    assert mt5.get("/api/deal/get", ticket=deal)["answer"]["Storage"] == "-3.40"
    assert balance_from_deals(mt5.all_deals(login)) == money(mt5.account(login)["Balance"])


# -- the program -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(port: int, data: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mt5bridge.mock_server", "--port", str(port), "--data", str(data)]
    command += ["--no-simulate", "--manager-password", MANAGER_PASSWORD, "--log-level", "WARNING"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/_mock/health", timeout=1).json() == {"ok": True}:
                return process
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    pytest.fail("the server did not come up")


def _interrupt(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_the_program_keeps_its_state_across_a_restart(tmp_path: Path) -> None:
    port = _free_port()
    data = tmp_path / "cli.sqlite3"
    process = _launch(port, data)
    try:
        client = Mt5Client(f"http://127.0.0.1:{port}")
        client.login()
        login = client.add_user()
        ticket = client.deposit(login, "250.00", "before restart")
    finally:
        assert _interrupt(process) == 0

    process = _launch(port, data)
    try:
        client = Mt5Client(f"http://127.0.0.1:{port}")
        assert client.get("/api/ping") == {"retcode": NOT_AUTHORISED}  # sessions do not survive a restart
        client.login()
        assert client.account(login)["Balance"] == "250.00"
        assert client.deposit(login, "1.00", "after restart") == ticket + 1
        assert client.add_user() == login + 1
    finally:
        assert _interrupt(process) == 0
