"""`ManagerAPI` over the MetaTrader 5 Web API (HTTPS/JSON), the protocol the bundled mock server also speaks.

Guarantees:
- Every request has a connect and a read timeout.
- The manager session is opened with MT5's challenge-response handshake (the password never crosses the wire) and
  the server's proof is checked too; an expired session ("8 Not enough permissions") is re-opened once, then retried.
- Failures are classified for the caller (see `mt5bridge.manager_api`): a request that may have reached the server
  and lost its reply raises `MT5AmbiguousError`, never a plain retryable error, so no caller resends it blindly.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests

from mt5bridge.manager_api import (
    PAGE_SIZE,
    AccountState,
    BalanceKind,
    Deal,
    GroupRecord,
    MT5AmbiguousError,
    MT5Error,
    MT5RetryableError,
    MT5TerminalError,
    Position,
    Retcode,
    UserRecord,
    error_for_retcode,
)

logger = logging.getLogger(__name__)

WEBAPI_VERSION = "484"
VOLUME_PER_LOT = 10_000  # MT5 expresses volume in 1/10000 of a lot


def password_hash(password: str) -> bytes:
    inner = hashlib.md5(password.encode("utf-16-le")).digest()  # noqa: S324 - MT5's handshake is MD5 by definition
    return hashlib.md5(inner + b"WebAPI").digest()  # noqa: S324


def challenge_answer(hashed: bytes, rand: bytes) -> str:
    return hashlib.md5(hashed + rand).hexdigest()  # noqa: S324


def _retcode(body: dict[str, Any]) -> tuple[int, str]:
    raw = str(body.get("retcode", "2 Malformed answer"))
    code = raw.partition(" ")[0]
    try:
        return int(code), raw
    except ValueError:
        return int(Retcode.ERROR), raw


def _ts(seconds: str | int) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def _lots(volume: str | int) -> Decimal:
    return (Decimal(volume) / VOLUME_PER_LOT).quantize(Decimal("0.01"))


class WebAPIManager:
    """One manager session against one server. Not thread-safe: use one instance per thread."""

    def __init__(
        self,
        *,
        url: str,
        login: int,
        password: str,
        connect_timeout: float = 3.0,
        read_timeout: float = 15.0,
    ) -> None:
        self.base = url.rstrip("/")
        self.login = login
        self._password_hash = password_hash(password)
        self.timeout = (connect_timeout, read_timeout)
        self.http = requests.Session()
        self._authorised = False

    # --- session ----------------------------------------------------------------------------------------------

    def connect(self) -> None:
        self.http.cookies.clear()
        start = self._request(
            "/api/auth/start",
            {"version": WEBAPI_VERSION, "agent": "WebAPI", "login": self.login, "type": "manager"},
            write=False,
        )
        srv_rand = bytes.fromhex(start["srv_rand"])
        cli_rand = secrets.token_bytes(16)
        answer = self._request(
            "/api/auth/answer",
            {"srv_rand_answer": challenge_answer(self._password_hash, srv_rand), "cli_rand": cli_rand.hex()},
            write=False,
        )
        if answer.get("cli_rand_answer") != challenge_answer(self._password_hash, cli_rand):
            raise MT5TerminalError("The trade server failed to prove it knows the manager password.")
        self._authorised = True

    def ping(self) -> None:
        self._call("/api/ping", {})

    def close(self) -> None:
        self.http.close()
        self._authorised = False

    def _request(self, path: str, params: dict[str, Any], *, write: bool, body: dict | None = None) -> dict:
        """One HTTP exchange; returns the parsed body of a successful retcode or raises a classified error."""
        url = f"{self.base}{path}"
        try:
            if body is None:
                response = self.http.get(url, params=params, timeout=self.timeout)
            else:
                response = self.http.post(url, params=params, json=body, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout as exc:
            raise MT5RetryableError(f"{path}: connect timeout ({exc})", retcode=Retcode.CONNECTION) from exc
        except requests.exceptions.ConnectionError as exc:
            if _refused_before_sending(exc):
                raise MT5RetryableError(f"{path}: connection refused", retcode=Retcode.CONNECTION) from exc
            # The request may have been written before the connection died: the server may have applied it.
            raise MT5AmbiguousError(f"{path}: connection lost ({type(exc).__name__})", retcode=Retcode.NETWORK) from exc
        except requests.exceptions.Timeout as exc:
            raise MT5AmbiguousError(f"{path}: no reply within {self.timeout[1]} s", retcode=Retcode.TIMEOUT) from exc
        if response.status_code >= 500:
            cls = MT5AmbiguousError if write else MT5RetryableError
            raise cls(f"{path}: HTTP {response.status_code}", retcode=Retcode.NO_SERVICE)
        if response.status_code != 200:
            raise MT5TerminalError(f"{path}: HTTP {response.status_code}", retcode=Retcode.ERROR)
        try:
            parsed = response.json()
        except ValueError as exc:
            raise MT5AmbiguousError(f"{path}: unreadable answer", retcode=Retcode.ERROR) from exc
        code, text = _retcode(parsed)
        if code not in (Retcode.OK, Retcode.REQUEST_DONE):
            raise error_for_retcode(code, f"{path}: {text}")
        return parsed

    def _call(self, path: str, params: dict[str, Any], *, write: bool = False, body: dict | None = None) -> Any:
        if not self._authorised:
            self.connect()
        try:
            return self._request(path, params, write=write, body=body).get("answer")
        except MT5Error as exc:
            # An expired session is refused before anything is applied, so one re-login and retry is safe.
            if exc.retcode != Retcode.PERMISSIONS:
                raise
            self._authorised = False
            self.connect()
            return self._request(path, params, write=write, body=body).get("answer")

    # --- users ------------------------------------------------------------------------------------------------

    def user_add(
        self,
        *,
        group: str,
        name: str,
        email: str,
        leverage: int,
        main_password: str,
        investor_password: str,
        country: str = "",
        login: int | None = None,
    ) -> UserRecord:
        body = {"Group": group, "Name": name, "Email": email, "Leverage": str(leverage), "Country": country}
        params = {"pass_main": main_password, "pass_investor": investor_password}
        if login:
            body["Login"] = str(login)
        return _user(self._call("/api/user/add", params, write=True, body=body))

    def user_get(self, login: int) -> UserRecord:
        return _user(self._call("/api/user/get", {"login": login}))

    def user_update(self, login: int, *, leverage: int | None = None, group: str | None = None) -> UserRecord:
        body: dict[str, str] = {"Login": str(login)}
        if leverage is not None:
            body["Leverage"] = str(leverage)
        if group is not None:
            body["Group"] = group
        return _user(self._call("/api/user/update", {"login": login}, write=True, body=body))

    def password_change(self, login: int, password: str, *, investor: bool = False) -> None:
        self._call(
            "/api/user/change_password",
            {"login": login, "type": "investor" if investor else "main", "password": password},
            write=True,
        )

    def password_check(self, login: int, password: str, *, investor: bool = False) -> bool:
        try:
            self._call(
                "/api/user/check_password",
                {"login": login, "type": "investor" if investor else "main", "password": password},
            )
        except MT5TerminalError as exc:
            if exc.retcode == Retcode.USER_INVALID_PASSWORD:
                return False
            raise
        return True

    # --- money ------------------------------------------------------------------------------------------------

    def dealer_balance(self, login: int, amount: Decimal, kind: BalanceKind, comment: str) -> int:
        answer = self._call(
            "/api/trade/balance",
            {"login": login, "type": int(kind), "balance": f"{amount:.2f}", "comment": comment},
            write=True,
        )
        return int(answer["ticket"])

    def account_get(self, login: int) -> AccountState:
        return _account(self._call("/api/user/account/get", {"login": login}))

    def accounts_get_batch(self, logins: list[int]) -> list[AccountState]:
        if not logins:
            return []
        rows = self._call("/api/user/account/get_batch", {"login": ",".join(map(str, logins))})
        return [_account(row) for row in rows]

    def positions_get(self, logins: list[int]) -> list[Position]:
        if not logins:
            return []
        rows = self._call("/api/position/get_batch", {"login": ",".join(map(str, logins))})
        return [_position(row) for row in rows]

    # --- deals ------------------------------------------------------------------------------------------------

    def _deal_params(self, date_from: datetime, date_to: datetime, login: int | None, group: str | None) -> dict:
        params: dict[str, Any] = {"from": int(date_from.timestamp()), "to": int(date_to.timestamp())}
        if login is not None:
            params["login"] = login
        else:
            params["group"] = group or "*"
        return params

    def deals_total(
        self, *, date_from: datetime, date_to: datetime, login: int | None = None, group: str | None = None
    ) -> int:
        answer = self._call("/api/deal/get_total", self._deal_params(date_from, date_to, login, group))
        return int(answer["total"])

    def deals_page(
        self,
        *,
        date_from: datetime,
        date_to: datetime,
        login: int | None = None,
        group: str | None = None,
        offset: int = 0,
        total: int = PAGE_SIZE,
        after_ticket: int | None = None,
    ) -> list[Deal]:
        params = self._deal_params(date_from, date_to, login, group)
        params.update(offset=offset, total=min(total, PAGE_SIZE))
        if after_ticket is not None:
            # Keyset paging: the bundled server's extension; a stock Web API pages by offset within the range.
            params["from_ticket"] = after_ticket
        return [_deal(row) for row in self._call("/api/deal/get_page", params)]

    def groups(self) -> list[GroupRecord]:
        total = int(self._call("/api/group/total", {})["total"])
        return [_group(self._call("/api/group/next", {"index": index})) for index in range(total)]


def _refused_before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the TCP connection was never made, so the request cannot have reached the server."""
    seen = exc
    for _ in range(6):
        if isinstance(seen, ConnectionRefusedError) or type(seen).__name__ == "NewConnectionError":
            return True
        nxt = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    return False


def _user(row: dict) -> UserRecord:
    return UserRecord(
        login=int(row["Login"]),
        group=row["Group"],
        name=row.get("Name", ""),
        email=row.get("Email", ""),
        leverage=int(row["Leverage"]),
        country=row.get("Country", ""),
    )


def _account(row: dict) -> AccountState:
    return AccountState(
        login=int(row["Login"]),
        currency=row.get("Currency", ""),
        balance=Decimal(row["Balance"]),
        credit=Decimal(row["Credit"]),
        equity=Decimal(row["Equity"]),
        margin=Decimal(row["Margin"]),
        free_margin=Decimal(row["MarginFree"]),
        margin_level=Decimal(row["MarginLevel"]),
        floating_profit=Decimal(row.get("Floating", row.get("Profit", "0"))),
    )


def _position(row: dict) -> Position:
    return Position(
        position_id=int(row["Position"]),
        login=int(row["Login"]),
        symbol=row["Symbol"],
        action=int(row["Action"]),
        volume=_lots(row["Volume"]),
        price_open=Decimal(row["PriceOpen"]),
        price_current=Decimal(row["PriceCurrent"]),
        profit=Decimal(row["Profit"]),
        swap=Decimal(row.get("Storage", "0")),
        opened_at=_ts(row["TimeCreate"]),
    )


def _deal(row: dict) -> Deal:
    return Deal(
        ticket=int(row["Deal"]),
        login=int(row["Login"]),
        time=_ts(row["Time"]),
        symbol=row.get("Symbol", ""),
        action=int(row["Action"]),
        entry=int(row["Entry"]),
        volume=_lots(row.get("Volume", "0")),
        price=Decimal(row.get("Price", "0")),
        profit=Decimal(row.get("Profit", "0")),
        commission=Decimal(row.get("Commission", "0")),
        swap=Decimal(row.get("Storage", "0")),
        comment=row.get("Comment", ""),
        position_id=int(row.get("PositionID", "0")),
        contract_size=Decimal(row.get("ContractSize", "0")),
    )


def _group(row: dict) -> GroupRecord:
    allowed = row.get("LeverageAllowed") or [row.get("LeverageDefault", "100")]
    return GroupRecord(
        name=row["Group"],
        currency=row["Currency"],
        leverages=tuple(sorted(int(v) for v in allowed)),
        margin_stop_out=Decimal(row.get("MarginStopOut", "50")),
        commission_per_lot=Decimal(row.get("CommissionPerLot", "0")),
    )
