"""The bundled mock trade server as a real process on a free loopback port, and CRM records pointing at it.

The CRM side reaches it only over HTTP, as it would a real MT5 Web API. One process serves a whole test session
(per xdist worker); each test gets its own trade server record with its own login range, so tests never collide.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mt5bridge.models import TradeServer, TradingGroup
from mt5bridge.servers import forget_managers

ROOT = Path(__file__).resolve().parents[2]
MANAGER_PASSWORD = "Manager#2024"
_login_ranges = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MockProcess:
    url: str
    process: subprocess.Popen

    def control(self, method: str, path: str, payload: dict | None = None) -> dict:
        response = requests.request(method, f"{self.url}/_mock/{path}", json=payload, timeout=30)
        response.raise_for_status()
        return response.json()

    def faults(self, **settings) -> None:
        self.control("POST", "faults", settings)

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")


def start_mock(data: Path, *extra: str) -> MockProcess:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mt5bridge.mock_server", "--port", str(port), "--data", str(data), "--no-simulate",
         "--log-level", "WARNING", *extra],
        cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"{url}/_mock/health", timeout=1).ok:
                return MockProcess(url, process)
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the mock trade server did not start")
        time.sleep(0.1)


def stop_mock(mock: MockProcess) -> None:
    mock.process.terminate()
    try:
        mock.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        mock.process.kill()


@pytest.fixture(scope="session")
def mt5_mock(tmp_path_factory) -> MockProcess:
    mock = start_mock(tmp_path_factory.mktemp("mt5") / "mock.sqlite3")
    yield mock
    stop_mock(mock)


@pytest.fixture(autouse=True)
def _fresh_adapters():
    forget_managers()
    yield
    forget_managers()


def make_trade_server(mock: MockProcess, kind: str = TradeServer.Kind.DEMO, **fields) -> TradeServer:
    server = TradeServer.objects.create(
        name=f"{kind}-{next(_login_ranges)}",
        kind=kind,
        url=mock.url,
        manager_login=1000,
        password_env="MT5_TEST_PASSWORD",
        # A fresh block of logins per record: the mock process outlives each test's database.
        next_login=1_000_000 + next(_login_ranges) * 10_000,
        **fields,
    )
    from mt5bridge.services import trade_server_sync_groups

    trade_server_sync_groups(server=server)
    return server


@pytest.fixture
def demo_server(db, mt5_mock, monkeypatch) -> TradeServer:
    monkeypatch.setenv("MT5_TEST_PASSWORD", MANAGER_PASSWORD)
    mt5_mock.clear_faults()
    return make_trade_server(mt5_mock, TradeServer.Kind.DEMO)


@pytest.fixture
def live_server_mt5(db, mt5_mock, monkeypatch) -> TradeServer:
    monkeypatch.setenv("MT5_TEST_PASSWORD", MANAGER_PASSWORD)
    mt5_mock.clear_faults()
    return make_trade_server(mt5_mock, TradeServer.Kind.LIVE)


__all__ = ["MockProcess", "TradingGroup", "make_trade_server", "start_mock", "stop_mock"]
