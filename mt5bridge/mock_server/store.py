"""The trade server's state: SQLite persistence and the rules every write obeys.

Guarantees:

* One connection guarded by one re-entrant lock: every read sees committed state and every write is a single
  SQLite transaction (``BEGIN IMMEDIATE``), so a balance operation is atomic and two concurrent clients can
  never both spend the same free margin. SQLite serialises writers anyway; a mock has no use for more.
* WAL journal with ``synchronous=NORMAL``: a committed operation survives the process being killed, which is
  what the "lost response" fault relies on (the server applied it, the client never heard).
* Deal tickets, position ids and allocated logins come from persisted counters inside the same transaction as
  the row they number: unique, monotonic, never reused, also across restarts.
* Live deals get non-decreasing times in ticket order (a clock step backwards is absorbed). Deals from
  :meth:`TradeStore.bulk_deals` are history backfill and are older than the deals around them; an importer
  that must not miss anything pages by ``from_ticket``, not by time.
* Money is stored as integer cents, prices as decimal strings: nothing is ever rounded by a float.
* The account balance always equals the sum of its deals' profit + commission + swap (credit deals feed the
  credit instead), which is what a reconciliation on the CRM side can rely on.

Rule violations raise :class:`Mt5Error` carrying the MT5 retcode the Web API answers with.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import random
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .market import (
    ACTION_BUY,
    ACTION_SELL,
    SYMBOLS,
    VOLUME_PER_LOT,
    VOLUME_STEP,
    AccountBook,
    OpenPosition,
    PriceFeed,
    Quotes,
    cents_to_money,
    close_price,
    commission_per_side,
    convert,
    format_cents,
    format_money,
    lots,
    money,
    money_to_cents,
    open_price,
    position_margin,
    usd_rate,
)


class Retcode(enum.StrEnum):
    """The MT5 return codes the mock answers with, spelled as the Web API sends them ("<code> <text>")."""

    DONE = "0 Done"
    COMMON_ERROR = "2 Common error"
    INVALID_PARAMS = "3 Invalid parameters"
    NOT_AUTHORISED = "8 Not enough permissions"
    NOT_FOUND = "13 Not found"
    USER_EXISTS = "3004 User with the same login already exists"
    INVALID_PASSWORD = "3006 Invalid account or password"  # noqa: S105 - a retcode, not a password
    DIFFERENT_CURRENCY = "3010 Group change to a different currency"
    MONEY_LIMIT = "4005 Money limit exceeded"
    NO_MONEY = "10019 No money"


class Mt5Error(Exception):
    """A request broke a trade-server rule; ``retcode`` is what the client is answered."""

    def __init__(self, retcode: Retcode, detail: str = "") -> None:
        super().__init__(f"{retcode}: {detail}" if detail else str(retcode))
        self.retcode = retcode
        self.detail = detail


class DealAction(enum.IntEnum):
    BUY = 0
    SELL = 1
    BALANCE = 2
    CREDIT = 3
    CHARGE = 4
    CORRECTION = 5
    BONUS = 6
    COMMISSION = 7


class DealEntry(enum.IntEnum):
    IN = 0
    OUT = 1
    INOUT = 2
    OUT_BY = 3


class DealReason(enum.IntEnum):
    CLIENT = 0
    DEALER = 2
    STOP_OUT = 5


BALANCE_OPERATION_TYPES = frozenset(
    {DealAction.BALANCE, DealAction.CREDIT, DealAction.CHARGE, DealAction.CORRECTION, DealAction.BONUS}
)
COMMENT_MAX_LENGTH = 31
"""MT5 keeps a deal comment in a 32-character buffer, terminator included."""

DEFAULT_MONEY_LIMIT = Decimal("10000000.00")
FIRST_LOGIN = 500_000
MAX_VOLUME = 100 * VOLUME_PER_LOT
PAGE_LIMIT = 100
"""MT5 answers at most 100 deals or positions per page, whatever ``total`` asked for."""

_PASSWORD_SPECIAL = re.compile(r"[^A-Za-z0-9]")


@dataclass(frozen=True)
class Group:
    """An MT5 group: the account class that fixes currency, allowed leverage, stop-out and commission."""

    name: str
    currency: str
    leverage_allowed: tuple[int, ...]
    leverage_default: int
    margin_call: Decimal
    margin_stop_out: Decimal
    commission_per_lot: Decimal
    company: str = "Mock Broker Ltd"

    def to_row(self) -> tuple[Any, ...]:
        """The ``groups`` table row (Decimals as exact strings, leverages comma-separated)."""
        return (
            self.name,
            self.currency,
            ",".join(map(str, self.leverage_allowed)),
            self.leverage_default,
            str(self.margin_call),
            str(self.margin_stop_out),
            str(self.commission_per_lot),
            self.company,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Group:
        name, currency, leverages, default, margin_call, stop_out, commission, company = row
        return cls(
            name,
            currency,
            tuple(int(value) for value in leverages.split(",")),
            default,
            Decimal(margin_call),
            Decimal(stop_out),
            Decimal(commission),
            company,
        )

    def answer(self) -> dict[str, Any]:
        """The Web API's group record; ``LeverageAllowed``/``LeverageDefault`` are mock extensions."""
        return {
            "Group": self.name,
            "Server": "1",
            "Company": self.company,
            "Currency": self.currency,
            "CurrencyDigits": "2",
            "MarginMode": "0",
            "MarginSOMode": "0",
            "MarginCall": format_money(self.margin_call),
            "MarginStopOut": format_money(self.margin_stop_out),
            "CommissionPerLot": format_money(self.commission_per_lot),
            "LeverageDefault": str(self.leverage_default),
            "LeverageAllowed": [str(value) for value in self.leverage_allowed],
        }


_REAL_LEVERAGE = (30, 50, 100, 200)
_DEMO_LEVERAGE = (30, 50, 100, 200, 500)
DEFAULT_GROUPS = (
    Group("real\\standard-usd", "USD", _REAL_LEVERAGE, 100, Decimal(100), Decimal(50), Decimal(0)),
    Group("real\\standard-eur", "EUR", _REAL_LEVERAGE, 100, Decimal(100), Decimal(50), Decimal(0)),
    Group("real\\pro-usd", "USD", _REAL_LEVERAGE, 100, Decimal(100), Decimal(50), Decimal("3.50")),
    Group("demo\\standard-usd", "USD", _DEMO_LEVERAGE, 100, Decimal(100), Decimal(50), Decimal(0)),
    Group("demo\\pro-eur", "EUR", _DEMO_LEVERAGE, 200, Decimal(100), Decimal(50), Decimal("3.00")),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    leverage_allowed TEXT NOT NULL,
    leverage_default INTEGER NOT NULL,
    margin_call TEXT NOT NULL,
    margin_stop_out TEXT NOT NULL,
    commission_per_lot TEXT NOT NULL,
    company TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    login INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL REFERENCES groups(name),
    name TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    zipcode TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    leverage INTEGER NOT NULL,
    registration INTEGER NOT NULL,
    password_main TEXT NOT NULL,
    password_investor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS users_group ON users(group_name);
CREATE TABLE IF NOT EXISTS accounts (
    login INTEGER PRIMARY KEY REFERENCES users(login),
    balance INTEGER NOT NULL DEFAULT 0,
    credit INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS positions (
    position INTEGER PRIMARY KEY,
    login INTEGER NOT NULL REFERENCES users(login),
    symbol TEXT NOT NULL,
    action INTEGER NOT NULL,
    volume INTEGER NOT NULL,
    price_open TEXT NOT NULL,
    storage INTEGER NOT NULL DEFAULT 0,
    time_create_msc INTEGER NOT NULL,
    open_tick INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS positions_login ON positions(login);
CREATE TABLE IF NOT EXISTS deals (
    ticket INTEGER PRIMARY KEY,
    login INTEGER NOT NULL,
    time_msc INTEGER NOT NULL,
    action INTEGER NOT NULL,
    entry INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    volume INTEGER NOT NULL,
    price TEXT NOT NULL,
    price_position TEXT NOT NULL,
    profit INTEGER NOT NULL,
    commission INTEGER NOT NULL,
    storage INTEGER NOT NULL,
    comment TEXT NOT NULL,
    position_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deals_login_time ON deals(login, time_msc);
CREATE INDEX IF NOT EXISTS deals_time ON deals(time_msc);
CREATE TABLE IF NOT EXISTS prices (symbol TEXT PRIMARY KEY, bid TEXT NOT NULL);
"""

_COUNTERS = {"login": FIRST_LOGIN, "deal": 1, "position": 1, "tick": 0}

_BOOKS_SELECT = (
    "SELECT u.login, u.group_name, u.leverage, a.balance, a.credit, p.position, p.symbol, p.action, "
    "p.volume, p.price_open, p.storage, p.time_create_msc, p.open_tick "
    "FROM users u JOIN accounts a ON a.login = u.login LEFT JOIN positions p ON p.login = u.login"
)

_DEAL_COLUMNS = (
    "ticket, login, time_msc, action, entry, reason, symbol, volume, price, price_position, "
    "profit, commission, storage, comment, position_id"
)

# (lowercased, underscore-free parameter name) -> users column. Query parameters and PascalCase JSON fields
# both normalise to these keys, so `ZipCode`, `zipcode` and `zip_code` all land in the same column.
_USER_TEXT_FIELDS = {
    "name": "name",
    "email": "email",
    "phone": "phone",
    "country": "country",
    "city": "city",
    "address": "address",
    "zipcode": "zipcode",
    "comment": "comment",
}
_USER_TEXT_MAX = 128


def password_is_strong(password: str) -> bool:
    """MT5's rule: 8 to 16 characters with a lowercase and an uppercase letter, a digit and a special sign."""
    return (
        8 <= len(password) <= 16
        and any(c.islower() for c in password)
        and any(c.isupper() for c in password)
        and any(c.isdigit() for c in password)
        and _PASSWORD_SPECIAL.search(password) is not None
    )


def _password_digest(password: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


def _password_record(password: str) -> str:
    salt = secrets.token_hex(8)
    return f"{salt}${_password_digest(password, salt)}"


def _password_matches(record: str, password: str) -> bool:
    salt, digest = record.split("$", 1)
    return hmac.compare_digest(digest, _password_digest(password, salt))


def group_mask_sql(masks: str, column: str) -> tuple[str, list[str]]:
    """SQL matching MT5 group masks: comma-separated, ``*`` wildcard, ``!`` excludes: ``real\\*,!real\\t*``.

    Matching is case-insensitive like MT5's. ``column`` is an internal column name, never user input.
    """
    include: list[str] = []
    exclude: list[str] = []
    for raw in masks.split(","):
        mask = raw.strip()
        if mask:
            (exclude if mask.startswith("!") else include).append(mask.lstrip("!").lower())
    if not include:
        raise Mt5Error(Retcode.INVALID_PARAMS, "a group mask must include something")
    sql = "(" + " OR ".join([f"lower({column}) GLOB ?"] * len(include)) + ")"
    if exclude:
        sql += " AND NOT (" + " OR ".join([f"lower({column}) GLOB ?"] * len(exclude)) + ")"
    return sql, include + exclude


@dataclass(frozen=True)
class DealQuery:
    """Which deals a listing covers: logins or a group mask, an optional time range and ticket cursor."""

    logins: tuple[int, ...] = ()
    group_mask: str = ""
    time_from: int | None = None
    """Unix seconds in server time, inclusive."""
    time_to: int | None = None
    """Unix seconds in server time, inclusive."""
    from_ticket: int | None = None
    """Extension: only deals with a ticket greater than this (cursor-based incremental import)."""

    def where(self, *, paging: bool = False) -> tuple[str, list[Any]]:
        """The WHERE clause and its parameters.

        A group's deals can be most of the table. For a page of them, walking the primary key in ticket
        order and stopping after one page beats collecting every deal of the group through the login index
        and sorting it, unless a time range narrows the search first; a unary ``+`` keeps SQLite's planner
        off an index. A cursor (``from_ticket``) always walks the tickets.
        """
        walk_tickets = (
            paging
            and not self.logins
            and (self.from_ticket is not None or (self.time_from is None and self.time_to is None))
        )
        login, time_msc = ("+login", "+time_msc") if walk_tickets else ("login", "time_msc")
        clauses: list[str] = []
        params: list[Any] = []
        if len(self.logins) == 1:
            clauses.append("login = ?")
            params.append(self.logins[0])
        elif self.logins:
            clauses.append("login IN (SELECT value FROM json_each(?))")
            params.append("[" + ",".join(map(str, self.logins)) + "]")
        elif self.group_mask:
            mask_sql, mask_params = group_mask_sql(self.group_mask, "group_name")
            clauses.append(f"{login} IN (SELECT login FROM users WHERE {mask_sql})")  # noqa: S608
            params.extend(mask_params)
        else:
            raise Mt5Error(Retcode.INVALID_PARAMS, "a deal listing needs a login or a group")
        if self.time_from is not None:
            clauses.append(f"{time_msc} >= ?")
            params.append(self.time_from * 1000)
        if self.time_to is not None:
            clauses.append(f"{time_msc} < ?")
            params.append((self.time_to + 1) * 1000)
        if self.from_ticket is not None:
            clauses.append("ticket > ?")
            params.append(self.from_ticket)
        return " AND ".join(clauses), params


def _deal_answer(row: Sequence[Any]) -> dict[str, Any]:
    (
        ticket,
        login,
        time_msc,
        action,
        entry,
        reason,
        symbol,
        volume,
        price,
        price_position,
        profit,
        commission,
        storage,
        comment,
        position_id,
    ) = row
    spec = SYMBOLS.get(symbol)
    return {
        "Deal": str(ticket),
        "Login": str(login),
        "Time": str(time_msc // 1000),
        "TimeMsc": str(time_msc),
        "Symbol": symbol,
        "Action": str(action),
        "Entry": str(entry),
        "Reason": str(reason),
        "Digits": str(spec.digits) if spec else "0",
        "DigitsCurrency": "2",
        "ContractSize": str(spec.contract_size) if spec else "0",
        "Volume": str(volume),
        "Price": price,
        "PricePosition": price_position,
        "Profit": format_cents(profit),
        "Commission": format_cents(commission),
        "Storage": format_cents(storage),
        "Comment": comment,
        "PositionID": str(position_id),
    }


class TradeStore:
    """The persistent state of one mock trade server (see the module docstring for its guarantees).

    ``clock`` gives server time in seconds; the server passes UTC shifted by its configured offset, the
    way MT5 stamps times in the trade server's own time zone.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        money_limit: Decimal = DEFAULT_MONEY_LIMIT,
    ) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        self._clock = clock
        self.money_limit = money_limit
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # A large page cache keeps the deal indexes in memory: bulk inserts and big listings stay fast.
        self._db.execute("PRAGMA cache_size=-131072")
        # executescript() commits whatever is pending, so the (idempotent) schema goes first, on its own.
        self._db.executescript(_SCHEMA)
        with self.transaction():
            self._db.executemany("INSERT OR IGNORE INTO counters (name, value) VALUES (?, ?)", _COUNTERS.items())
            if self._db.execute("SELECT COUNT(*) FROM groups").fetchone()[0] == 0:
                self._db.executemany(
                    "INSERT INTO groups VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [g.to_row() for g in DEFAULT_GROUPS]
                )
            self._groups = {
                row[0]: Group.from_row(row) for row in self._db.execute("SELECT * FROM groups ORDER BY name")
            }
            bids = {s: Decimal(b) for s, b in self._db.execute("SELECT symbol, bid FROM prices")}
            (self._last_deal_msc,) = self._db.execute("SELECT COALESCE(MAX(time_msc), 0) FROM deals").fetchone()
        self.feed = PriceFeed(bids)

    # -- plumbing ---------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the store lock and run the block as one transaction; nested blocks become savepoints.

        A nested block that raises is rolled back on its own, so a caller may catch the error and go on
        (the simulation does, when one simulated client has no money) without a half-applied operation.
        """
        with self._lock:
            depth = self._depth
            self._db.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
            self._depth += 1
            try:
                yield self._db
            except BaseException:
                if depth == 0:
                    self._db.execute("ROLLBACK")
                else:
                    self._db.execute(f"ROLLBACK TO sp{depth}")
                    self._db.execute(f"RELEASE sp{depth}")
                raise
            else:
                self._db.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")
            finally:
                self._depth = depth

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    def close(self) -> None:
        """Persist the current prices and close the database; waits for an operation in flight."""
        with self._lock:
            self.save_quotes()
            self._db.close()

    def _next(self, counter: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive numbers from a persisted counter and return the first."""
        row = self._db.execute(
            "UPDATE counters SET value = value + ? WHERE name = ? RETURNING value", (count, counter)
        ).fetchone()
        return int(row[0]) - count

    def now_msc(self) -> int:
        return int(self._clock() * 1000)

    def _deal_time_msc(self) -> int:
        self._last_deal_msc = max(self.now_msc(), self._last_deal_msc)
        return self._last_deal_msc

    def next_tick(self) -> int:
        """Count one simulation tick (persisted, so rollovers keep their rhythm across restarts)."""
        with self.transaction():
            return self._next("tick") + 1

    def save_quotes(self) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO prices (symbol, bid) VALUES (?, ?) ON CONFLICT (symbol) DO UPDATE SET bid = excluded.bid",
                [(q.symbol, str(q.bid)) for q in self.feed.snapshot().values()],
            )

    # -- groups -----------------------------------------------------------------------------------------

    def group(self, name: str) -> Group:
        for group in self._groups.values():
            if group.name.lower() == name.lower():
                return group
        raise Mt5Error(Retcode.NOT_FOUND, f"no group {name!r}")

    def groups(self) -> list[Group]:
        return list(self._groups.values())

    # -- users ------------------------------------------------------------------------------------------

    def user_add(self, fields: dict[str, str]) -> dict[str, Any]:
        """Create a user and its (empty) account; ``fields`` use normalised parameter names.

        Allocates the next free login from the counter when none is given. Checks everything before
        writing, so a refused request leaves no trace.
        """
        group = self.group(_required(fields, "group"))
        name = _required(fields, "name")
        main = _first(fields, "passmain", "mainpassword")
        investor = _first(fields, "passinvestor", "investorpassword", "investpassword")
        if not (main and investor and password_is_strong(main) and password_is_strong(investor)):
            raise Mt5Error(Retcode.INVALID_PARAMS, "passwords must be 8-16 chars with a-z, A-Z, 0-9 and a sign")
        leverage = _int_field(fields, "leverage", group.leverage_default)
        if leverage not in group.leverage_allowed:
            raise Mt5Error(Retcode.INVALID_PARAMS, f"leverage {leverage} not allowed in {group.name}")
        text = _user_text(fields)
        text["name"] = name
        requested_login = _int_field(fields, "login", 0)
        if requested_login < 0:
            raise Mt5Error(Retcode.INVALID_PARAMS, "a login is positive")
        with self.transaction() as db:
            if requested_login:
                login = requested_login
                if db.execute("SELECT 1 FROM users WHERE login = ?", (login,)).fetchone():
                    raise Mt5Error(Retcode.USER_EXISTS, f"login {login} exists")
            else:
                login = self._next("login")
                # A manager may have taken a login above the counter explicitly; skip over it.
                while db.execute("SELECT 1 FROM users WHERE login = ?", (login,)).fetchone():
                    login = self._next("login")
            columns = [
                "login",
                "group_name",
                "leverage",
                "registration",
                "password_main",
                "password_investor",
            ]
            values: list[Any] = [
                login,
                group.name,
                leverage,
                int(self._clock()),
                _password_record(main),
                _password_record(investor),
            ]
            columns += text.keys()
            values += text.values()
            db.execute(
                f"INSERT INTO users ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # noqa: S608 - column names are constants
                values,
            )
            db.execute("INSERT INTO accounts (login) VALUES (?)", (login,))
            return self.user_get(login)

    def user_get(self, login: int) -> dict[str, Any]:
        with self._reading() as db:
            row = db.execute(
                "SELECT u.login, u.group_name, u.name, u.email, u.phone, u.country, u.city, u.address, "
                "u.zipcode, u.comment, u.leverage, u.registration, a.balance, a.credit "
                "FROM users u JOIN accounts a ON a.login = u.login WHERE u.login = ?",
                (login,),
            ).fetchone()
        if row is None:
            raise Mt5Error(Retcode.NOT_FOUND, f"no user {login}")
        (
            login,
            group,
            name,
            email,
            phone,
            country,
            city,
            address,
            zipcode,
            comment,
            leverage,
            registration,
            balance,
            credit,
        ) = row
        return {
            "Login": str(login),
            "Group": group,
            "Name": name,
            "Email": email,
            "Phone": phone,
            "Country": country,
            "City": city,
            "Address": address,
            "ZipCode": zipcode,
            "Comment": comment,
            "Leverage": str(leverage),
            "Registration": str(registration),
            "LastAccess": str(registration),
            "Balance": format_money(cents_to_money(balance)),
            "Credit": format_money(cents_to_money(credit)),
        }

    def user_update(self, login: int, fields: dict[str, str]) -> dict[str, Any]:
        """Change a user's group, leverage or personal fields; the resulting leverage must suit the group.

        Moving to a group of another currency is refused while the account holds money or positions,
        because MT5 would not convert the balance.
        """
        with self.transaction() as db:
            row = db.execute(
                "SELECT u.group_name, u.leverage, a.balance, a.credit, "
                "(SELECT COUNT(*) FROM positions p WHERE p.login = u.login) "
                "FROM users u JOIN accounts a ON a.login = u.login WHERE u.login = ?",
                (login,),
            ).fetchone()
            if row is None:
                raise Mt5Error(Retcode.NOT_FOUND, f"no user {login}")
            current_group, current_leverage, balance, credit, open_positions = row
            group = self.group(fields["group"]) if fields.get("group") else self.group(current_group)
            leverage = _int_field(fields, "leverage", current_leverage)
            if leverage not in group.leverage_allowed:
                raise Mt5Error(Retcode.INVALID_PARAMS, f"leverage {leverage} not allowed in {group.name}")
            if group.currency != self.group(current_group).currency and (balance or credit or open_positions):
                raise Mt5Error(Retcode.DIFFERENT_CURRENCY, "the account holds money in its currency")
            text = _user_text(fields)
            if "name" in text and not text["name"]:
                raise Mt5Error(Retcode.INVALID_PARAMS, "a name cannot be blank")
            changes = {"group_name": group.name, "leverage": leverage, **text}
            db.execute(
                f"UPDATE users SET {', '.join(f'{c} = ?' for c in changes)} WHERE login = ?",  # noqa: S608 - constant columns
                [*changes.values(), login],
            )
            return self.user_get(login)

    def user_change_password(self, login: int, kind: str, password: str) -> None:
        column = _password_column(kind)
        if not password_is_strong(password):
            raise Mt5Error(Retcode.INVALID_PARAMS, "weak password")
        with self.transaction() as db:
            cursor = db.execute(
                f"UPDATE users SET {column} = ? WHERE login = ?",  # noqa: S608 - column from a fixed pair
                (_password_record(password), login),
            )
            if cursor.rowcount == 0:
                raise Mt5Error(Retcode.NOT_FOUND, f"no user {login}")

    def user_check_password(self, login: int, kind: str, password: str) -> None:
        column = _password_column(kind)
        with self._reading() as db:
            row = db.execute(f"SELECT {column} FROM users WHERE login = ?", (login,)).fetchone()  # noqa: S608
        if row is None:
            raise Mt5Error(Retcode.NOT_FOUND, f"no user {login}")
        if not _password_matches(row[0], password):
            raise Mt5Error(Retcode.INVALID_PASSWORD, "password mismatch")

    def user_logins(self, group_mask: str) -> list[int]:
        mask_sql, params = group_mask_sql(group_mask, "group_name")
        with self._reading() as db:
            rows = db.execute(f"SELECT login FROM users WHERE {mask_sql} ORDER BY login", params)  # noqa: S608
            return [row[0] for row in rows]

    # -- accounts ---------------------------------------------------------------------------------------

    def _books(self, where: str, params: Sequence[Any]) -> list[AccountBook]:
        """Load accounts with their positions in one query (a LEFT JOIN), in login order."""
        rows = self._db.execute(
            f"{_BOOKS_SELECT} WHERE {where} ORDER BY u.login, p.position",
            params,
        ).fetchall()
        books: list[AccountBook] = []
        positions: list[OpenPosition] = []
        for index, row in enumerate(rows):
            login, group_name, leverage, balance, credit, position = row[:6]
            if position is not None:
                symbol, action, volume, price_open, storage, time_create_msc, open_tick = row[6:]
                positions.append(
                    OpenPosition(
                        position,
                        login,
                        symbol,
                        action,
                        volume,
                        Decimal(price_open),
                        cents_to_money(storage),
                        time_create_msc,
                        open_tick,
                    )
                )
            if index + 1 == len(rows) or rows[index + 1][0] != login:
                group = self._groups[group_name]
                books.append(
                    AccountBook(
                        login,
                        group.currency,
                        leverage,
                        cents_to_money(balance),
                        cents_to_money(credit),
                        group.margin_stop_out,
                        group.commission_per_lot,
                        tuple(positions),
                    )
                )
                positions = []
        return books

    def book(self, login: int) -> AccountBook:
        with self._reading():
            books = self._books("u.login = ?", (login,))
        if not books:
            raise Mt5Error(Retcode.NOT_FOUND, f"no account {login}")
        return books[0]

    def books(self, *, logins: Sequence[int] = (), group_mask: str = "") -> list[AccountBook]:
        """Books for a list of logins (unknown ones are skipped) or for every login of a group mask."""
        if logins:
            where, params = (
                "u.login IN (SELECT value FROM json_each(?))",
                ["[" + ",".join(map(str, logins)) + "]"],
            )
        else:
            where, params = group_mask_sql(group_mask, "u.group_name")
        with self._reading():
            return self._books(where, params)

    def books_with_positions(self) -> list[AccountBook]:
        with self._reading():
            return self._books("u.login IN (SELECT login FROM positions)", ())

    def funded_logins(self) -> list[int]:
        """Logins whose balance is above zero, in login order (the simulation trades only these)."""
        with self._reading() as db:
            return [row[0] for row in db.execute("SELECT login FROM accounts WHERE balance > 0 ORDER BY login")]

    # -- balance operations -----------------------------------------------------------------------------

    def balance_operation(
        self, *, login: int, kind: int, amount: Decimal, comment: str, check_margin: bool = True
    ) -> int:
        """Apply a dealer balance operation atomically and return the ticket of the deal it wrote.

        Positive amounts deposit, negative ones withdraw. With ``check_margin`` a withdrawal may neither
        exceed the free margin nor take the balance (or the credit, for type 3) below zero; MT5 answers
        "no money" then. Nothing is written when a check fails.
        """
        if kind not in BALANCE_OPERATION_TYPES:
            raise Mt5Error(Retcode.INVALID_PARAMS, f"balance operation type {kind}")
        if not amount.is_finite() or amount == 0 or amount != money(amount):
            raise Mt5Error(Retcode.INVALID_PARAMS, "an amount is non-zero with at most two decimals")
        if abs(amount) > self.money_limit:
            raise Mt5Error(Retcode.MONEY_LIMIT, f"{amount} is over {self.money_limit}")
        if len(comment) > COMMENT_MAX_LENGTH:
            raise Mt5Error(Retcode.INVALID_PARAMS, f"comment longer than {COMMENT_MAX_LENGTH}")
        field = "credit" if kind == DealAction.CREDIT else "balance"
        with self.transaction() as db:
            book = self.book(login)
            if amount < 0 and check_margin:
                state = book.state(self.feed.snapshot())
                held = book.credit if kind == DealAction.CREDIT else book.balance
                if held + amount < 0 or -amount > state.margin_free:
                    raise Mt5Error(Retcode.NO_MONEY, f"{-amount} over free margin {state.margin_free}")
            ticket = self._insert_deal(
                login=login,
                action=kind,
                entry=DealEntry.IN,
                reason=DealReason.DEALER,
                profit=amount,
                comment=comment,
            )
            db.execute(
                f"UPDATE accounts SET {field} = {field} + ? WHERE login = ?",  # noqa: S608 - field is a constant
                (money_to_cents(amount), login),
            )
            return ticket

    def _insert_deal(
        self,
        *,
        login: int,
        action: int,
        entry: int,
        reason: int,
        profit: Decimal = Decimal(0),
        commission: Decimal = Decimal(0),
        storage: Decimal = Decimal(0),
        symbol: str = "",
        volume: int = 0,
        price: Decimal = Decimal(0),
        price_position: Decimal = Decimal(0),
        comment: str = "",
        position_id: int = 0,
    ) -> int:
        ticket = self._next("deal")
        self._db.execute(
            f"INSERT INTO deals ({_DEAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                ticket,
                login,
                self._deal_time_msc(),
                action,
                entry,
                reason,
                symbol,
                volume,
                str(price),
                str(price_position),
                money_to_cents(profit),
                money_to_cents(commission),
                money_to_cents(storage),
                comment,
                position_id,
            ),
        )
        return ticket

    # -- trading ----------------------------------------------------------------------------------------

    def position_open(
        self, *, login: int, symbol: str, action: int, volume: int, tick: int = 0, comment: str = ""
    ) -> tuple[int, int]:
        """Open a position at market (buy at the ask, sell at the bid); returns (position id, deal ticket).

        The deal carries the group's per-lot commission, charged to the balance at once. Refused with
        "no money" when the free margin after the trade (commission included) would be negative.
        """
        spec = SYMBOLS.get(symbol)
        if spec is None:
            raise Mt5Error(Retcode.NOT_FOUND, f"no symbol {symbol!r}")
        if action not in (ACTION_BUY, ACTION_SELL):
            raise Mt5Error(Retcode.INVALID_PARAMS, f"position action {action}")
        if not (VOLUME_STEP <= volume <= MAX_VOLUME and volume % VOLUME_STEP == 0):
            raise Mt5Error(Retcode.INVALID_PARAMS, f"volume {volume}")
        if len(comment) > COMMENT_MAX_LENGTH:
            raise Mt5Error(Retcode.INVALID_PARAMS, f"comment longer than {COMMENT_MAX_LENGTH}")
        with self.transaction() as db:
            book = self.book(login)
            quotes = self.feed.snapshot()
            price = open_price(spec, action, quotes)
            margin = position_margin(spec, volume, book.leverage, book.currency, quotes)
            commission = commission_per_side(volume, book.commission_per_lot)
            if book.state(quotes, extra_margin=margin).margin_free + commission < 0:
                raise Mt5Error(Retcode.NO_MONEY, f"margin {money(margin)} over free margin")
            position = self._next("position")
            time_msc = self._deal_time_msc()
            db.execute(
                "INSERT INTO positions (position, login, symbol, action, volume, price_open, storage, "
                "time_create_msc, open_tick) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (position, login, symbol, action, volume, str(price), time_msc, tick),
            )
            ticket = self._insert_deal(
                login=login,
                action=action,
                entry=DealEntry.IN,
                reason=DealReason.CLIENT,
                commission=commission,
                symbol=symbol,
                volume=volume,
                price=price,
                comment=comment,
                position_id=position,
            )
            db.execute(
                "UPDATE accounts SET balance = balance + ? WHERE login = ?",
                (money_to_cents(commission), login),
            )
            return position, ticket

    def position_close(self, position: int, *, reason: int = DealReason.CLIENT, comment: str = "") -> int:
        """Close a whole position at market and return the out deal's ticket.

        The out deal realises profit, accrued swap and the closing side's commission into the balance.
        """
        with self.transaction() as db:
            row = db.execute("SELECT login FROM positions WHERE position = ?", (position,)).fetchone()
            if row is None:
                raise Mt5Error(Retcode.NOT_FOUND, f"no position {position}")
            book = self.book(row[0])
            held = next(p for p in book.positions if p.position == position)
            quotes = self.feed.snapshot()
            profit = held.profit(book.currency, quotes)
            commission = commission_per_side(held.volume, book.commission_per_lot)
            ticket = self._insert_deal(
                login=book.login,
                action=1 - held.action,
                entry=DealEntry.OUT,
                reason=reason,
                profit=profit,
                commission=commission,
                storage=held.storage,
                symbol=held.symbol,
                volume=held.volume,
                price=close_price(held.spec, held.action, quotes),
                price_position=held.price_open,
                comment=comment[:COMMENT_MAX_LENGTH],
                position_id=position,
            )
            db.execute("DELETE FROM positions WHERE position = ?", (position,))
            db.execute(
                "UPDATE accounts SET balance = balance + ? WHERE login = ?",
                (money_to_cents(profit + commission + held.storage), book.login),
            )
            return ticket

    def apply_swaps(self, multiplier: int) -> int:
        """Charge one rollover's swap (``multiplier`` nights) to every open position; returns how many."""
        quotes = self.feed.snapshot()
        with self.transaction() as db:
            rows = db.execute(
                "SELECT p.position, p.symbol, p.action, p.volume, u.group_name "
                "FROM positions p JOIN users u ON u.login = p.login"
            ).fetchall()
            updates = []
            for position, symbol, action, volume, group_name in rows:
                spec = SYMBOLS[symbol]
                per_lot = spec.swap_long if action == ACTION_BUY else spec.swap_short
                swap = convert(
                    per_lot * lots(volume) * multiplier,
                    spec.profit_currency,
                    self._groups[group_name].currency,
                    quotes,
                )
                updates.append((money_to_cents(swap), position))
            db.executemany("UPDATE positions SET storage = storage + ? WHERE position = ?", updates)
            return len(updates)

    def positions(self, *, logins: Sequence[int] = (), group_mask: str = "") -> list[dict[str, Any]]:
        """Open positions of some logins or of a group mask, as Web API answers, in position order."""
        quotes = self.feed.snapshot()
        answers = []
        for book in self.books(logins=logins, group_mask=group_mask):
            for held in book.positions:
                answers.append(_position_answer(held, book.currency, quotes))
        answers.sort(key=lambda answer: int(answer["Position"]))
        return answers

    # -- deals ------------------------------------------------------------------------------------------

    def deals_total(self, query: DealQuery) -> int:
        where, params = query.where()
        with self._reading() as db:
            return db.execute(f"SELECT COUNT(*) FROM deals WHERE {where}", params).fetchone()[0]  # noqa: S608

    def deals_page(self, query: DealQuery, *, offset: int, total: int) -> list[dict[str, Any]]:
        """One page of deals in ticket order; at most :data:`PAGE_LIMIT` whatever ``total`` asks."""
        where, params = query.where(paging=True)
        with self._reading() as db:
            rows = db.execute(
                f"SELECT {_DEAL_COLUMNS} FROM deals WHERE {where} ORDER BY ticket LIMIT ? OFFSET ?",  # noqa: S608
                [*params, min(total, PAGE_LIMIT), offset],
            ).fetchall()
        return [_deal_answer(row) for row in rows]

    def deal_get(self, ticket: int) -> dict[str, Any]:
        with self._reading() as db:
            row = db.execute(f"SELECT {_DEAL_COLUMNS} FROM deals WHERE ticket = ?", (ticket,)).fetchone()  # noqa: S608
        if row is None:
            raise Mt5Error(Retcode.NOT_FOUND, f"no deal {ticket}")
        return _deal_answer(row)

    def bulk_deals(self, *, logins: Sequence[int], count: int, rng: random.Random, days: float = 30.0) -> int:
        """Backfill ``count`` deals (rounded up to whole round trips) for benchmarks, in one transaction.

        Each round trip is an in deal and an out deal of one position, with prices near the current
        quotes, realistic volumes, hold times and the group's commission; the net result is applied to the
        balances, so the balance-equals-deals invariant holds. Times spread over the last ``days`` and
        tickets follow time order within the batch. Returns how many deals were written.
        """
        if not logins or count <= 0 or days <= 0:
            raise Mt5Error(Retcode.INVALID_PARAMS, "bulk deals need logins, a positive count and days")
        with self.transaction() as db:
            rows = db.execute(
                "SELECT login, group_name FROM users WHERE login IN (SELECT value FROM json_each(?))",
                ("[" + ",".join(map(str, logins)) + "]",),
            ).fetchall()
            groups = {login: self._groups[name] for login, name in rows}
            missing = set(logins) - groups.keys()
            if missing:
                raise Mt5Error(Retcode.NOT_FOUND, f"no users {sorted(missing)[:5]}")
            now_msc = self._deal_time_msc()
            trips = _RoundTrips(rng, self.feed.snapshot(), groups, start_msc=now_msc - int(days * 86_400_000))
            deals = trips.generate(logins, (count + 1) // 2, now_msc, self._next("position", (count + 1) // 2))
            first_ticket = self._next("deal", len(deals))
            db.executemany(
                "INSERT INTO deals (ticket, time_msc, login, action, entry, symbol, volume, price, price_position, "
                "profit, commission, position_id, reason, storage, comment) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, '')",
                ((first_ticket + offset, deal[0], *deal[2:]) for offset, deal in enumerate(deals)),
            )
            db.executemany(
                "UPDATE accounts SET balance = balance + ? WHERE login = ?",
                [(delta, login) for login, delta in trips.balance_changes.items()],
            )
            return len(deals)

    # -- quotes and statistics ---------------------------------------------------------------------------

    def set_bid(self, symbol: str, bid: Decimal) -> None:
        if symbol not in SYMBOLS:
            raise Mt5Error(Retcode.NOT_FOUND, f"no symbol {symbol!r}")
        if not bid.is_finite() or bid <= 0:
            raise Mt5Error(Retcode.INVALID_PARAMS, "a price is positive")
        self.feed.set_bid(symbol, bid, self.now_msc())
        self.save_quotes()

    def stats(self) -> dict[str, int]:
        with self._reading() as db:
            counts = {
                table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
                for table in ("users", "deals", "positions", "groups")
            }
            counts["ticks"] = db.execute("SELECT value FROM counters WHERE name = 'tick'").fetchone()[0]
        return counts


_BULK_VOLUMES = (100, 100, 200, 500, 1000, 1000, 2000, 5000, 10_000, 20_000, 50_000)


class _RoundTrips:
    """Random closed round trips for :meth:`TradeStore.bulk_deals`, fast enough for a million deals.

    Prices are handled as integer points and each profit costs one Decimal product, so generating is
    cheaper than inserting. ``balance_changes`` collects the net cents per login as trips are made.
    """

    def __init__(self, rng: random.Random, quotes: Quotes, groups: dict[int, Group], *, start_msc: int) -> None:
        self._rng = rng
        self._quotes = quotes
        self._groups = groups
        self._start_msc = start_msc
        self._specs = list(SYMBOLS.values())
        # Profit of one point on one MT5 volume unit, per symbol and account currency.
        self._unit_profit = {
            (spec.name, currency): spec.point * spec.contract_size / VOLUME_PER_LOT
            * usd_rate(spec.profit_currency, quotes) / usd_rate(currency, quotes)
            for spec in self._specs
            for currency in {group.currency for group in groups.values()}
        }  # fmt: skip
        self._commissions: dict[tuple[int, Decimal], int] = {}
        self.balance_changes: dict[int, int] = {}

    def generate(self, logins: Sequence[int], pairs: int, now_msc: int, first_position: int) -> list[tuple[Any, ...]]:
        """Deal rows ``(time_msc, order, login, action, entry, symbol, volume, price, price_position, profit,
        commission, position_id)`` sorted by time; positions are numbered in order of opening."""
        rng = self._rng
        openings = sorted(
            (rng.randint(self._start_msc, now_msc), logins[int(rng.random() * len(logins))]) for _ in range(pairs)
        )
        deals: list[tuple[Any, ...]] = []
        for index, (time_in, login) in enumerate(openings):
            time_out = min(time_in + 10_000 + int(rng.expovariate(1 / 7_200_000)), now_msc)
            deals.extend(self._trip(index, login, time_in, time_out, first_position + index))
        deals.sort()  # (time, order) is unique, so the sort never compares further
        return deals

    def _commission(self, volume: int, commission_per_lot: Decimal) -> int:
        key = (volume, commission_per_lot)
        if key not in self._commissions:
            self._commissions[key] = money_to_cents(commission_per_side(volume, commission_per_lot))
        return self._commissions[key]

    def _trip(self, index: int, login: int, time_in: int, time_out: int, position: int) -> list[tuple[Any, ...]]:
        rng = self._rng
        spec = self._specs[int(rng.random() * len(self._specs))]
        group = self._groups[login]
        action = rng.getrandbits(1)
        volume = _BULK_VOLUMES[int(rng.random() * len(_BULK_VOLUMES))]
        scale = 10**spec.digits
        points_in = int(float(self._quotes[spec.name].bid) * scale * (1 + rng.gauss(0.0, 0.01)))
        points_out = points_in + int(rng.gauss(0.0, spec.volatility * 2) * points_in)
        direction = 1 if action == ACTION_BUY else -1
        moved = (points_out - points_in) * direction * volume
        profit = money_to_cents(moved * self._unit_profit[spec.name, group.currency])
        commission = self._commission(volume, group.commission_per_lot)
        price_in = f"{points_in / scale:.{spec.digits}f}"
        price_out = f"{points_out / scale:.{spec.digits}f}"
        self.balance_changes[login] = self.balance_changes.get(login, 0) + profit + 2 * commission
        return [
            (time_in, 2 * index, login, action, 0, spec.name, volume, price_in, "0", 0, commission, position),
            (time_out, 2 * index + 1, login, 1 - action, 1, spec.name, volume, price_out, price_in, profit,
             commission, position),
        ]  # fmt: skip


def _position_answer(held: OpenPosition, currency: str, quotes: Quotes) -> dict[str, Any]:
    spec = held.spec
    return {
        "Position": str(held.position),
        "Login": str(held.login),
        "Symbol": held.symbol,
        "Action": str(held.action),
        "Digits": str(spec.digits),
        "DigitsCurrency": "2",
        "ContractSize": str(spec.contract_size),
        "Volume": str(held.volume),
        "PriceOpen": str(spec.quantize(held.price_open)),
        "PriceCurrent": str(close_price(spec, held.action, quotes)),
        "PriceSL": "0",
        "PriceTP": "0",
        "Profit": format_money(held.profit(currency, quotes)),
        "Storage": format_money(held.storage),
        "TimeCreate": str(held.time_create_msc // 1000),
        "TimeCreateMsc": str(held.time_create_msc),
    }


def account_answer(book: AccountBook, quotes: Quotes) -> dict[str, Any]:
    """The Web API's account record (``/api/user/account/get``) valued at ``quotes``."""
    state = book.state(quotes)
    return {
        "Login": str(book.login),
        "Currency": book.currency,
        "CurrencyDigits": "2",
        "Balance": format_money(state.balance),
        "Credit": format_money(state.credit),
        "Profit": format_money(state.profit),
        "Storage": format_money(state.storage),
        "Floating": format_money(state.floating),
        "Equity": format_money(state.equity),
        "Margin": format_money(state.margin),
        "MarginFree": format_money(state.margin_free),
        "MarginLevel": format_money(state.margin_level),
        "MarginLeverage": str(book.leverage),
        "SOLevel": format_money(book.margin_stop_out),
    }


def _required(fields: dict[str, str], key: str) -> str:
    value = fields.get(key, "").strip()
    if not value:
        raise Mt5Error(Retcode.INVALID_PARAMS, f"{key} is required")
    return value


def _first(fields: dict[str, str], *keys: str) -> str:
    return next((fields[key] for key in keys if fields.get(key)), "")


def _int_field(fields: dict[str, str], key: str, default: int) -> int:
    raw = fields.get(key, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise Mt5Error(Retcode.INVALID_PARAMS, f"{key} is not an integer") from None


def _user_text(fields: dict[str, str]) -> dict[str, str]:
    text = {column: fields[key].strip() for key, column in _USER_TEXT_FIELDS.items() if key in fields}
    if any(len(value) > _USER_TEXT_MAX for value in text.values()):
        raise Mt5Error(Retcode.INVALID_PARAMS, f"a text field is longer than {_USER_TEXT_MAX}")
    if text.get("email") and "@" not in text["email"]:
        raise Mt5Error(Retcode.INVALID_PARAMS, "invalid email")
    return text


def _password_column(kind: str) -> str:
    columns = {"main": "password_main", "investor": "password_investor"}
    if kind not in columns:
        raise Mt5Error(Retcode.INVALID_PARAMS, f"password type {kind!r}")
    return columns[kind]
