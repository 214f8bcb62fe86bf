"""The HTTP front of the mock trade server: MT5 Web API routes, the session handshake and control routes.

Protocol guarantees:

* Every ``/api/*`` answer is HTTP 200 with a JSON object carrying ``retcode`` ("0 Done" or an MT5 error
  code); the payload, when there is one, is under ``answer``. Only injected faults answer 5xx (or nothing).
* All scalar values in answers are strings, as with the real Web API; money has two decimals.
* HTTP/1.1 keep-alive: every response has a Content-Length, and a session survives across connections
  because it rides on the ``MT5SESSION`` cookie (the real server ties it to the TCP connection instead).
* A session is authorised by the MT5 challenge-response handshake and expires after ``session_idle_timeout``
  seconds without calls; then every call answers "8 Not enough permissions" until the client logs in again.
* ``/_mock/*`` control routes need no session and answer only loopback clients unless allowed otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .faults import FaultInjector, FaultKind, FaultSettings
from .market import SYMBOLS, VOLUME_PER_LOT, Quote
from .simulation import SimulationSettings, Simulator
from .store import (
    DEFAULT_MONEY_LIMIT,
    PAGE_LIMIT,
    DealQuery,
    Mt5Error,
    Retcode,
    TradeStore,
    account_answer,
)

log = logging.getLogger("mt5bridge.mock_server")

VERSION_ACCESS = "484"
SESSION_COOKIE = "MT5SESSION"
DEFAULT_MANAGER_LOGIN = 1000
DEFAULT_MANAGER_PASSWORD = "Manager#2024"  # noqa: S105 - a local mock's well-known default, like the docs'
DEFAULT_PORT = 8447
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Large enough for a bulk-deals request naming every login of a big benchmark."""


def mt5_password_hash(password: str) -> bytes:
    """MT5's stored password hash: ``md5(md5(password as UTF-16-LE) + b"WebAPI")``."""
    inner = hashlib.md5(password.encode("utf-16-le")).digest()  # noqa: S324 - MT5's protocol fixes MD5
    return hashlib.md5(inner + b"WebAPI").digest()  # noqa: S324


def rand_answer(password_hash: bytes, rand: bytes) -> str:
    """The answer to a handshake challenge: ``md5(password_hash + rand)`` as lowercase hex."""
    return hashlib.md5(password_hash + rand).hexdigest()  # noqa: S324


# -- sessions -----------------------------------------------------------------------------------------


@dataclass
class Session:
    token: str
    login: int
    srv_rand: bytes
    last_seen: float
    authorised: bool = False


class SessionRegistry:
    """Manager sessions by cookie token; a session unused for ``idle_timeout`` seconds is gone."""

    def __init__(self, idle_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def start(self, login: int) -> Session:
        now = self._clock()
        session = Session(secrets.token_hex(16), login, secrets.token_bytes(16), now)
        with self._lock:
            # Sweep here so abandoned handshakes cannot pile up.
            for token in [t for t, s in self._sessions.items() if now - s.last_seen > self.idle_timeout]:
                del self._sessions[token]
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and self._clock() - session.last_seen > self.idle_timeout:
                del self._sessions[token]
                return None
            return session

    def touch(self, session: Session) -> None:
        with self._lock:
            session.last_seen = self._clock()

    def drop(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


# -- request parameters --------------------------------------------------------------------------------


def _normalise(key: str) -> str:
    """``pass_main``, ``PassMain`` and ``passmain`` name the same parameter."""
    return key.replace("_", "").lower()


class Params:
    """Query parameters merged with a JSON body (the body wins), with typed getters.

    Every getter raises :class:`Mt5Error` "3 Invalid parameters" for a missing or malformed value.
    """

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    @classmethod
    def parse(cls, query: str, body: bytes) -> Params:
        values = {_normalise(k): v for k, v in parse_qsl(query, keep_blank_values=True)}
        if body.strip():
            try:
                document = json.loads(body)
            except ValueError:
                raise Mt5Error(Retcode.INVALID_PARAMS, "the body is not JSON") from None
            if not isinstance(document, dict):
                raise Mt5Error(Retcode.INVALID_PARAMS, "the body is not a JSON object")
            for key, value in document.items():
                if isinstance(value, dict | list) or value is None:
                    raise Mt5Error(Retcode.INVALID_PARAMS, f"{key} is not a scalar")
                values[_normalise(key)] = str(int(value) if isinstance(value, bool) else value)
        return cls(values)

    def text(self, name: str, default: str | None = None) -> str:
        value = self.values.get(_normalise(name), "")
        if value == "":
            if default is None:
                raise Mt5Error(Retcode.INVALID_PARAMS, f"{name} is required")
            return default
        return value

    def integer(self, name: str, default: int | None = None, *, minimum: int = 0) -> int:
        raw = self.text(name, None if default is None else str(default))
        try:
            value = int(raw)
        except ValueError:
            raise Mt5Error(Retcode.INVALID_PARAMS, f"{name} is not an integer") from None
        if value < minimum:
            raise Mt5Error(Retcode.INVALID_PARAMS, f"{name} is below {minimum}")
        return value

    def optional_integer(self, name: str) -> int | None:
        return self.integer(name) if self.values.get(_normalise(name)) else None

    def decimal(self, name: str) -> Decimal:
        try:
            return Decimal(self.text(name))
        except InvalidOperation:
            raise Mt5Error(Retcode.INVALID_PARAMS, f"{name} is not a number") from None

    def logins(self) -> tuple[int, ...]:
        """``login=1,2,3``; empty when absent."""
        raw = self.values.get("login", "")
        try:
            return tuple(int(part) for part in raw.split(",") if part.strip())
        except ValueError:
            raise Mt5Error(Retcode.INVALID_PARAMS, "login is not a list of integers") from None


# -- Web API routes ---------------------------------------------------------------------------------------


@dataclass
class Call:
    """One Web API request as a route sees it; a route may set ``cookie`` to start a session."""

    server: MockTradeServer
    params: Params
    session: Session | None
    cookie: str | None = None


Answer = dict[str, Any]


def _done(answer: Any = None) -> Answer:
    return {"retcode": Retcode.DONE} if answer is None else {"retcode": Retcode.DONE, "answer": answer}


def _auth_start(call: Call) -> Answer:
    params = call.params
    if params.text("type", "manager").lower() != "manager":
        raise Mt5Error(Retcode.INVALID_PARAMS, "only manager logins use the Web API")
    session = call.server.sessions.start(params.integer("login", minimum=1))
    call.cookie = session.token
    return {"retcode": Retcode.DONE, "version_access": VERSION_ACCESS, "srv_rand": session.srv_rand.hex()}


def _auth_answer(call: Call) -> Answer:
    session, server = call.session, call.server
    if session is None or session.authorised:
        raise Mt5Error(Retcode.INVALID_PARAMS, "no handshake in progress")
    try:
        cli_rand = bytes.fromhex(call.params.text("cli_rand"))
    except ValueError:
        raise Mt5Error(Retcode.INVALID_PARAMS, "cli_rand is not hex") from None
    if len(cli_rand) != 16:
        raise Mt5Error(Retcode.INVALID_PARAMS, "cli_rand is 16 random bytes")
    expected = rand_answer(server.manager_password_hash, session.srv_rand)
    answered = call.params.text("srv_rand_answer").lower()
    if session.login != server.manager_login or not hmac.compare_digest(expected, answered):
        server.sessions.drop(session.token)
        raise Mt5Error(Retcode.INVALID_PASSWORD, f"handshake failed for {session.login}")
    session.authorised = True
    server.sessions.touch(session)
    return {"retcode": Retcode.DONE, "cli_rand_answer": rand_answer(server.manager_password_hash, cli_rand)}


def _ping(call: Call) -> Answer:
    return _done()


def _server_time(call: Call) -> Answer:
    time_msc = call.server.store.now_msc()
    offset = call.server.server_time_offset
    return _done({"Time": str(time_msc // 1000), "TimeMsc": str(time_msc), "TimeZone": str(offset // 60)})


def _user_add(call: Call) -> Answer:
    return _done(call.server.store.user_add(call.params.values))


def _user_get(call: Call) -> Answer:
    return _done(call.server.store.user_get(call.params.integer("login")))


def _user_update(call: Call) -> Answer:
    return _done(call.server.store.user_update(call.params.integer("login"), call.params.values))


def _user_change_password(call: Call) -> Answer:
    params = call.params
    call.server.store.user_change_password(
        params.integer("login"), params.text("type", "main").lower(), params.text("password")
    )
    return _done()


def _user_check_password(call: Call) -> Answer:
    params = call.params
    call.server.store.user_check_password(
        params.integer("login"), params.text("type", "main").lower(), params.text("password")
    )
    return _done()


def _user_logins(call: Call) -> Answer:
    return _done([str(login) for login in call.server.store.user_logins(call.params.text("group"))])


def _account_get(call: Call) -> Answer:
    store = call.server.store
    return _done(account_answer(store.book(call.params.integer("login")), store.feed.snapshot()))


def _account_get_batch(call: Call) -> Answer:
    store = call.server.store
    logins = call.params.logins()
    books = store.books(logins=logins, group_mask="" if logins else call.params.text("group"))
    quotes = store.feed.snapshot()
    return _done([account_answer(book, quotes) for book in books])


def _trade_balance(call: Call) -> Answer:
    params = call.params
    ticket = call.server.store.balance_operation(
        login=params.integer("login"),
        kind=params.integer("type"),
        amount=params.decimal("balance"),
        comment=params.text("comment", ""),
        check_margin=params.integer("check_margin", 1) != 0,
    )
    return _done({"ticket": str(ticket)})


def _position_get_total(call: Call) -> Answer:
    return _done({"total": str(len(call.server.store.book(call.params.integer("login")).positions))})


def _position_get_page(call: Call) -> Answer:
    params = call.params
    login = params.integer("login")
    call.server.store.book(login)  # an unknown login is "not found", not an empty page
    offset = params.integer("offset", 0)
    total = params.integer("total", PAGE_LIMIT)
    positions = call.server.store.positions(logins=(login,))
    return _done(positions[offset : offset + min(total, PAGE_LIMIT)])


def _position_get_batch(call: Call) -> Answer:
    logins = call.params.logins()
    group_mask = "" if logins else call.params.text("group")
    return _done(call.server.store.positions(logins=logins, group_mask=group_mask))


def _deal_query(params: Params) -> DealQuery:
    logins = params.logins()
    return DealQuery(
        logins=logins,
        group_mask="" if logins else params.text("group", ""),
        time_from=params.optional_integer("from"),
        time_to=params.optional_integer("to"),
        from_ticket=params.optional_integer("from_ticket"),
    )


def _deal_get(call: Call) -> Answer:
    return _done(call.server.store.deal_get(call.params.integer("ticket")))


def _deal_get_total(call: Call) -> Answer:
    return _done({"total": str(call.server.store.deals_total(_deal_query(call.params)))})


def _deal_get_page(call: Call) -> Answer:
    params = call.params
    page = call.server.store.deals_page(
        _deal_query(params), offset=params.integer("offset", 0), total=params.integer("total", PAGE_LIMIT)
    )
    return _done(page)


def _group_get(call: Call) -> Answer:
    return _done(call.server.store.group(call.params.text("group")).answer())


def _group_total(call: Call) -> Answer:
    return _done({"total": str(len(call.server.store.groups()))})


def _group_next(call: Call) -> Answer:
    groups = call.server.store.groups()
    index = call.params.integer("index", 0)
    if index >= len(groups):
        raise Mt5Error(Retcode.NOT_FOUND, f"no group at {index}")
    return _done(groups[index].answer())


def _tick_answer(quote: Quote) -> dict[str, str]:
    return {
        "Symbol": quote.symbol,
        "Digits": str(SYMBOLS[quote.symbol].digits),
        "Datetime": str(quote.time_msc // 1000),
        "DatetimeMsc": str(quote.time_msc),
        "Bid": str(quote.bid),
        "Ask": str(quote.ask),
        "Last": "0",
        "Volume": "0",
    }


def _symbol_get(call: Call) -> Answer:
    name = call.params.text("symbol")
    spec = SYMBOLS.get(name.upper())
    if spec is None:
        raise Mt5Error(Retcode.NOT_FOUND, f"no symbol {name!r}")
    quote = call.server.store.feed.snapshot()[spec.name]
    return _done(
        {
            "Symbol": spec.name,
            "Description": spec.description,
            "Digits": str(spec.digits),
            "Point": str(spec.point),
            "ContractSize": str(spec.contract_size),
            "CurrencyBase": spec.base_currency,
            "CurrencyProfit": spec.profit_currency,
            "CurrencyMargin": spec.profit_currency,
            "Spread": str(spec.spread_points),
            "SwapLong": str(spec.swap_long),
            "SwapShort": str(spec.swap_short),
            "VolumeMin": "100",
            "VolumeStep": "100",
            "VolumeMax": str(100 * VOLUME_PER_LOT),
            "Bid": str(quote.bid),
            "Ask": str(quote.ask),
        }
    )


def _tick_last(call: Call) -> Answer:
    quotes = call.server.store.feed.snapshot()
    names = [name.strip().upper() for name in call.params.text("symbol").split(",") if name.strip()]
    unknown = [name for name in names if name not in quotes]
    if unknown:
        raise Mt5Error(Retcode.NOT_FOUND, f"no symbols {unknown}")
    return _done([_tick_answer(quotes[name]) for name in names])


@dataclass(frozen=True)
class _Route:
    handler: Callable[[Call], Answer]
    needs_session: bool = True


API_ROUTES: dict[str, _Route] = {
    "/api/auth/start": _Route(_auth_start, needs_session=False),
    "/api/auth/answer": _Route(_auth_answer, needs_session=False),
    "/api/ping": _Route(_ping),
    "/api/time/server": _Route(_server_time),
    "/api/user/add": _Route(_user_add),
    "/api/user/get": _Route(_user_get),
    "/api/user/update": _Route(_user_update),
    "/api/user/change_password": _Route(_user_change_password),
    "/api/user/check_password": _Route(_user_check_password),
    "/api/user/logins": _Route(_user_logins),
    "/api/user/account/get": _Route(_account_get),
    "/api/user/account/get_batch": _Route(_account_get_batch),
    "/api/trade/balance": _Route(_trade_balance),
    "/api/position/get_total": _Route(_position_get_total),
    "/api/position/get_page": _Route(_position_get_page),
    "/api/position/get_batch": _Route(_position_get_batch),
    "/api/deal/get": _Route(_deal_get),
    "/api/deal/get_total": _Route(_deal_get_total),
    "/api/deal/get_page": _Route(_deal_get_page),
    "/api/group/get": _Route(_group_get),
    "/api/group/total": _Route(_group_total),
    "/api/group/next": _Route(_group_next),
    "/api/symbol/get": _Route(_symbol_get),
    "/api/tick/last": _Route(_tick_last),
}


# -- control routes --------------------------------------------------------------------------------------


class BadRequest(Exception):
    """A request body or a control request was malformed; answered HTTP 400."""


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(document, dict):
        raise BadRequest("the body is not a JSON object")
    return document


def _json_int(document: dict[str, Any], key: str, *, default: int | None = None, minimum: int = 0) -> int:
    value = document.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise BadRequest(f"{key} must be an integer of at least {minimum}")
    return value


def _control_stats(server: MockTradeServer, body: bytes) -> Answer:
    return {**server.store.stats(), "sessions": len(server.sessions)}


def _control_faults_get(server: MockTradeServer, body: bytes) -> Answer:
    return server.faults.describe()


def _control_faults_set(server: MockTradeServer, body: bytes) -> Answer:
    try:
        server.faults.configure(FaultSettings.from_json(_json_object(body)))
    except ValueError as error:
        raise BadRequest(str(error)) from None
    return server.faults.describe()


def _control_faults_clear(server: MockTradeServer, body: bytes) -> Answer:
    server.faults.clear()
    return server.faults.describe()


def _control_simulate(server: MockTradeServer, body: bytes) -> Answer:
    steps = _json_int(_json_object(body), "steps", default=1, minimum=1)
    return {"ok": True, **asdict(server.simulator.step(steps))}


def _quotes_answer(server: MockTradeServer) -> Answer:
    return {name: _tick_answer(quote) for name, quote in server.store.feed.snapshot().items()}


def _control_prices_get(server: MockTradeServer, body: bytes) -> Answer:
    return _quotes_answer(server)


def _control_prices_set(server: MockTradeServer, body: bytes) -> Answer:
    """``{"EURUSD": "1.08488"}`` pins bids (asks follow at the symbol's spread)."""
    for symbol, bid in _json_object(body).items():
        try:
            server.store.set_bid(symbol, Decimal(str(bid)))
        except InvalidOperation:
            raise BadRequest(f"{symbol}: {bid!r} is not a price") from None
    return _quotes_answer(server)


def _control_position_open(server: MockTradeServer, body: bytes) -> Answer:
    """``{"login", "symbol", "action": 0 buy | 1 sell, "volume" (MT5 units), "comment"?}`` at market."""
    document = _json_object(body)
    position, deal = server.store.position_open(
        login=_json_int(document, "login", minimum=1),
        symbol=str(document.get("symbol", "")),
        action=_json_int(document, "action"),
        volume=_json_int(document, "volume", minimum=1),
        comment=str(document.get("comment", "")),
    )
    return {"ok": True, "position": str(position), "deal": str(deal)}


def _control_position_close(server: MockTradeServer, body: bytes) -> Answer:
    deal = server.store.position_close(_json_int(_json_object(body), "position", minimum=1))
    return {"ok": True, "deal": str(deal)}


def _control_bulk_deals(server: MockTradeServer, body: bytes) -> Answer:
    """``{"logins": [...], "count": N, "days": 30, "seed": 0}``: backfill deals in one transaction."""
    document = _json_object(body)
    logins = document.get("logins")
    if not isinstance(logins, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in logins):
        raise BadRequest("logins must be a list of integers")
    days = document.get("days", 30)
    if not isinstance(days, int | float) or isinstance(days, bool):
        raise BadRequest("days must be a number")
    started = time.perf_counter()
    created = server.store.bulk_deals(
        logins=logins,
        count=_json_int(document, "count", minimum=1),
        rng=random.Random(_json_int(document, "seed", default=server.seed)),
        days=float(days),
    )
    return {"ok": True, "deals": created, "seconds": round(time.perf_counter() - started, 3)}


ControlHandler = Callable[["MockTradeServer", bytes], Answer]

CONTROL_ROUTES: dict[tuple[str, str], ControlHandler] = {
    ("GET", "/_mock/health"): lambda server, body: {"ok": True},
    ("GET", "/_mock/stats"): _control_stats,
    ("GET", "/_mock/faults"): _control_faults_get,
    ("POST", "/_mock/faults"): _control_faults_set,
    ("DELETE", "/_mock/faults"): _control_faults_clear,
    ("POST", "/_mock/simulate"): _control_simulate,
    ("GET", "/_mock/prices"): _control_prices_get,
    ("POST", "/_mock/prices"): _control_prices_set,
    ("POST", "/_mock/positions/open"): _control_position_open,
    ("POST", "/_mock/positions/close"): _control_position_close,
    ("POST", "/_mock/bulk_deals"): _control_bulk_deals,
}


# -- HTTP plumbing ---------------------------------------------------------------------------------------


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MT5WebAPI-Mock/" + VERSION_ACCESS
    sys_version = ""
    # Idle keep-alive connections are closed after this many seconds so their threads end.
    timeout = 300
    # Headers and body go out in two writes; with Nagle's algorithm on, the client's delayed ACK would
    # hold every answer back ~40 ms.
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except BadRequest as error:
            self.close_connection = True
            self._send_json(400, {"ok": False, "error": str(error)})
            return
        try:
            if url.path.startswith("/_mock/"):
                self._control(method, url.path, body)
            elif url.path in API_ROUTES:
                self._api(API_ROUTES[url.path], url.path, url.query, body)
            else:
                self._send_json(404, {"retcode": Retcode.NOT_FOUND})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            # A bug in the mock must be loud, not disguised as an MT5 retcode.
            log.exception("%s %s failed", method, url.path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_json(500, {"retcode": Retcode.COMMON_ERROR})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise BadRequest("send a Content-Length, not a transfer encoding")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise BadRequest("the body is too large")
        return self.rfile.read(length) if length else b""

    def _session_token(self) -> str | None:
        try:
            morsel = SimpleCookie(self.headers.get("Cookie", "")).get(SESSION_COOKIE)
        except CookieError:
            return None
        return morsel.value if morsel else None

    def _api(self, route: _Route, path: str, query: str, body: bytes) -> None:
        server = self.server.mock
        plan = server.faults.plan(path)
        if plan.latency:
            time.sleep(plan.latency)
        if plan.kind is FaultKind.REFUSE:
            self._hang_up()
            return
        token = self._session_token()
        session = server.sessions.get(token)
        if plan.kind is FaultKind.DROP_SESSION:
            if token:
                server.sessions.drop(token)
            self._send_json(200, {"retcode": Retcode.NOT_AUTHORISED})
            return
        if plan.kind is FaultKind.HTTP_5XX:
            self._send_json(503, {"error": "injected fault: service unavailable"})
            return
        if plan.kind is FaultKind.RETCODE:
            self._send_json(200, {"retcode": plan.retcode})
            return
        if route.needs_session:
            if session is None or not session.authorised:
                self._send_json(200, {"retcode": Retcode.NOT_AUTHORISED})
                return
            server.sessions.touch(session)
        call = Call(server, Params({}), session)
        try:
            call.params = Params.parse(query, body)
            answer = route.handler(call)
        except Mt5Error as error:
            log.debug("%s: %s", path, error)
            answer = {"retcode": error.retcode}
        if plan.kind is FaultKind.LOST_RESPONSE:
            self._hang_up()
            return
        headers = {}
        if call.cookie:
            headers["Set-Cookie"] = f"{SESSION_COOKIE}={call.cookie}; Path=/; HttpOnly; SameSite=Strict"
        self._send_json(200, answer, headers)

    def _control(self, method: str, path: str, body: bytes) -> None:
        server = self.server.mock
        if not server.allow_remote_control and not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._send_json(403, {"ok": False, "error": "control routes answer loopback clients only"})
            return
        handler = CONTROL_ROUTES.get((method, path))
        if handler is None:
            self._send_json(404, {"ok": False, "error": f"no control route {method} {path}"})
            return
        try:
            self._send_json(200, handler(server, body))
        except BadRequest as error:
            self._send_json(400, {"ok": False, "error": str(error)})
        except Mt5Error as error:
            self._send_json(409, {"ok": False, "retcode": error.retcode})

    def _hang_up(self) -> None:
        """Close the connection without a byte of answer; the client sees it drop."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_json(self, status: int, payload: Answer, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


class _HttpServer(ThreadingHTTPServer):
    """A threading HTTP server that remembers its open connections so ``stop()`` can cut them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], mock: MockTradeServer) -> None:
        self.mock = mock
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _HttpServer6(_HttpServer):
    address_family = socket.AF_INET6


# -- the server ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class MockTradeServer:
    """A mock MT5 trade server with its Web API; ``start()`` serves it from background threads.

    State lives in the SQLite file ``data_path`` (``":memory:"`` for a throwaway one) and survives a
    restart; sessions and the fault settings do not, as on a real server. ``store`` and ``simulator``
    exist from :meth:`start` on (tests and benchmarks may reach into them; the CRM never does).
    ``server_time_offset`` (seconds) shifts every time the server stamps or reports, the way MT5 servers
    keep time in their own zone (EET is 7200, or 10800 in summer).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_path: str | Path = "var/mt5mock.sqlite3"
    manager_login: int = DEFAULT_MANAGER_LOGIN
    manager_password: str = field(default=DEFAULT_MANAGER_PASSWORD, repr=False)
    seed: int = 0
    simulate: bool = False
    tick_seconds: float = 1.0
    session_idle_timeout: float = 180.0
    money_limit: Decimal = DEFAULT_MONEY_LIMIT
    server_time_offset: int = 0
    allow_remote_control: bool = False
    simulation_settings: SimulationSettings = field(default_factory=SimulationSettings)

    def __post_init__(self) -> None:
        self.manager_password_hash = mt5_password_hash(self.manager_password)
        self.sessions = SessionRegistry(self.session_idle_timeout)
        self.faults = FaultInjector(self.seed)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._httpd: _HttpServer | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> int:
        """Open the store, bind, and serve (plus simulate, if asked) in daemon threads; returns the port."""
        if self._httpd is not None:
            raise RuntimeError("the mock trade server is already running")
        self._stopping.clear()
        offset = self.server_time_offset
        self.store = TradeStore(self.data_path, clock=lambda: time.time() + offset, money_limit=self.money_limit)
        self.simulator = Simulator(self.store, seed=self.seed, settings=self.simulation_settings)
        server_class = _HttpServer6 if ":" in self.host else _HttpServer
        try:
            self._httpd = server_class((self.host, self.port), self)
        except OSError:
            self.store.close()
            raise
        self.port = self._httpd.server_address[1]
        self._threads = [
            threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="mt5mock-http",
                daemon=True,
            )
        ]
        if self.simulate:
            self._threads.append(threading.Thread(target=self._simulate_forever, name="mt5mock-sim", daemon=True))
        for thread in self._threads:
            thread.start()
        log.info("mock MT5 trade server on %s (data %s)", self.url, self.data_path)
        return self.port

    def _simulate_forever(self) -> None:
        while not self._stopping.wait(self.tick_seconds):
            try:
                self.simulator.step()
            except Exception:
                log.exception("simulation tick failed")

    def wait(self) -> None:
        """Block until :meth:`stop` is called (from another thread or a signal handler)."""
        # A timed wait keeps the main thread responsive to Ctrl-C on every platform.
        while not self._stopping.wait(0.5):
            pass

    def stop(self) -> None:
        """Stop serving, cut open connections, finish the simulation tick in flight and close the store."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self.store.close()
        self._httpd = None
        log.info("mock MT5 trade server stopped")


def run_server(**options: Any) -> None:
    """Run a :class:`MockTradeServer` in the foreground until Ctrl-C (KeyboardInterrupt)."""
    server = MockTradeServer(**options)
    server.start()
    try:
        server.wait()
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        server.stop()
