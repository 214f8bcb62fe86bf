"""The CRM's view of an MT5 trade server, modelled on the MetaTrader 5 Manager API.

Adapters (`mt5bridge.adapters.*`) implement `ManagerAPI`; everything above them speaks only these types. Errors are
split by what the caller may do next:

- `MT5TerminalError`: the server refused (bad parameters, no money, not found). Retrying will not help.
- `MT5RetryableError`: the request did not get through, or the server asked us to come back later. Safe to retry.
- `MT5AmbiguousError`: the request may have been applied but we never saw the answer (timeout, lost reply).
  A balance operation in this state must be looked up by its comment before anything is resent.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from typing import Protocol, runtime_checkable

from core.errors import RetryableError


class Retcode(IntEnum):
    """MT5 return codes (`MT_RET_*`) that the bridge tells apart."""

    OK = 0
    OK_NONE = 1
    ERROR = 2
    INVALID_PARAMS = 3
    INVALID_DATA = 4
    DISK = 5
    MEMORY = 6
    NETWORK = 7
    PERMISSIONS = 8
    TIMEOUT = 9
    CONNECTION = 10
    NO_SERVICE = 11
    TOO_FREQUENT = 12
    NOT_FOUND = 13
    PARTIAL = 14
    SHUTDOWN = 15
    CANCEL = 16
    DUPLICATE = 17
    USER_LOGIN_EXISTS = 3004
    USER_INVALID_PASSWORD = 3006
    USER_DIFFERENT_CURRENCY = 3010
    MONEY_LIMIT = 4005
    REQUEST_DONE = 10009
    REQUEST_TIMEOUT = 10012
    REQUEST_INVALID = 10013
    NO_MONEY = 10019
    REQUEST_TOO_FREQUENT = 10024
    REQUEST_NO_CONNECTION = 10031


# Codes after which the same request may succeed later, and which of those leave us unsure whether it was applied.
RETRYABLE_CODES = frozenset(
    {
        Retcode.NETWORK,
        Retcode.TIMEOUT,
        Retcode.CONNECTION,
        Retcode.NO_SERVICE,
        Retcode.TOO_FREQUENT,
        Retcode.SHUTDOWN,
        Retcode.REQUEST_TIMEOUT,
        Retcode.REQUEST_TOO_FREQUENT,
        Retcode.REQUEST_NO_CONNECTION,
    }
)
AMBIGUOUS_CODES = frozenset({Retcode.TIMEOUT, Retcode.REQUEST_TIMEOUT})
SUCCESS_CODES = frozenset({Retcode.OK, Retcode.REQUEST_DONE})


class MT5Error(Exception):
    """Anything a trade server call can end in other than success."""

    def __init__(self, message: str, *, retcode: int | None = None) -> None:
        super().__init__(message)
        self.retcode = retcode
        self.message = message


class MT5TerminalError(MT5Error):
    """The server said no; the same request will be refused again."""


class MT5RetryableError(MT5Error, RetryableError):
    """The request did not get through (or the server asked us to come back); it was not applied."""


class MT5AmbiguousError(MT5RetryableError):
    """The request may or may not have been applied: look before you resend."""


def error_for_retcode(retcode: int, message: str) -> MT5Error:
    if retcode in AMBIGUOUS_CODES:
        return MT5AmbiguousError(message, retcode=retcode)
    if retcode in RETRYABLE_CODES:
        return MT5RetryableError(message, retcode=retcode)
    return MT5TerminalError(message, retcode=retcode)


class BalanceKind(IntEnum):
    """Dealer balance operation kinds, numbered as MT5 deal actions."""

    BALANCE = 2
    CREDIT = 3
    CHARGE = 4
    CORRECTION = 5
    BONUS = 6


class DealAction(IntEnum):
    BUY = 0
    SELL = 1
    BALANCE = 2
    CREDIT = 3
    CHARGE = 4
    CORRECTION = 5
    BONUS = 6
    COMMISSION = 7


class DealEntry(IntEnum):
    IN = 0
    OUT = 1
    INOUT = 2
    OUT_BY = 3


COMMENT_MAX_LENGTH = 31
PAGE_SIZE = 100  # MT5 answers at most 100 records a page


@dataclass(frozen=True, slots=True)
class UserRecord:
    login: int
    group: str
    name: str
    email: str
    leverage: int
    country: str = ""


@dataclass(frozen=True, slots=True)
class AccountState:
    login: int
    currency: str
    balance: Decimal
    credit: Decimal
    equity: Decimal
    margin: Decimal
    free_margin: Decimal
    margin_level: Decimal
    floating_profit: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    position_id: int
    login: int
    symbol: str
    action: int
    volume: Decimal  # lots
    price_open: Decimal
    price_current: Decimal
    profit: Decimal
    swap: Decimal
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class Deal:
    ticket: int
    login: int
    time: datetime
    symbol: str
    action: int
    entry: int
    volume: Decimal  # lots
    price: Decimal
    profit: Decimal
    commission: Decimal
    swap: Decimal
    comment: str
    position_id: int
    contract_size: Decimal


@dataclass(frozen=True, slots=True)
class GroupRecord:
    name: str
    currency: str
    leverages: tuple[int, ...]
    margin_stop_out: Decimal
    commission_per_lot: Decimal


@runtime_checkable
class ManagerAPI(Protocol):
    """One connection to one trade server. Implementations time out every call and raise the errors above."""

    def connect(self) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...

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
    ) -> UserRecord: ...

    def user_get(self, login: int) -> UserRecord: ...

    def user_update(self, login: int, *, leverage: int | None = None, group: str | None = None) -> UserRecord: ...

    def password_change(self, login: int, password: str, *, investor: bool = False) -> None: ...

    def password_check(self, login: int, password: str, *, investor: bool = False) -> bool: ...

    def dealer_balance(self, login: int, amount: Decimal, kind: BalanceKind, comment: str) -> int:
        """Apply a balance operation; returns the deal ticket."""
        ...

    def account_get(self, login: int) -> AccountState: ...

    def accounts_get_batch(self, logins: list[int]) -> list[AccountState]: ...

    def positions_get(self, logins: list[int]) -> list[Position]: ...

    def deals_total(
        self, *, date_from: datetime, date_to: datetime, login: int | None = None, group: str | None = None
    ) -> int: ...

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
    ) -> list[Deal]: ...

    def groups(self) -> list[GroupRecord]: ...


# --- Password rules ---------------------------------------------------------------------------------------------

_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "#@!$%^&*-_+=?")


def mt5_password_problem(password: str) -> str | None:
    """Why MT5 would refuse this password, or None. MT5 wants 8-16 characters from four classes."""
    if not 8 <= len(password) <= 16:
        return "A trading password has 8 to 16 characters."
    if not re.search(r"[a-z]", password) or not re.search(r"[A-Z]", password):
        return "A trading password needs lower-case and upper-case letters."
    if not re.search(r"\d", password):
        return "A trading password needs a digit."
    if not re.search(r"[^A-Za-z0-9]", password):
        return "A trading password needs a special character such as # or @."
    return None


def mt5_password_generate(length: int = 12) -> str:
    """A random password that MT5 accepts: every class present, the rest drawn from all of them."""
    rng = secrets.SystemRandom()
    chars = [rng.choice(c) for c in _CLASSES]
    alphabet = "".join(_CLASSES)
    chars += [rng.choice(alphabet) for _ in range(length - len(chars))]
    rng.shuffle(chars)
    return "".join(chars)
