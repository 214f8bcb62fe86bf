"""The plain facts AML rules read: what payments reports as money moves and what analytics rebuilds every night.

`kyc` never imports `payments` or `analytics`; they build these frozen dataclasses and hand them in. Money is a
Decimal with a currency, times are timezone-aware, and every fact checks itself when built, so a rule never has to
wonder whether a float, a naive datetime or another client's movement slipped in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from core.money import CurrencyError, currency_exponent

MovementKind = Literal["deposit", "withdrawal"]
RiskLevel = Literal["low", "medium", "high"]

MOVEMENT_KINDS: tuple[MovementKind, ...] = ("deposit", "withdrawal")
RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high")


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of an aware datetime: the one day boundary every rule uses."""
    return moment.astimezone(UTC).date()


def _require_aware(value: object, what: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}.")


@dataclass(frozen=True, slots=True, kw_only=True)
class MoneyMovement:
    """One deposit or withdrawal as the PSP reported it.

    `instrument_fingerprint` is a stable id of the card, wallet or bank account (never the raw number), so rules can
    tell whether money leaves by the way it came in. `settled` is True once the PSP confirmed the money moved
    (deposit succeeded or later, withdrawal completed). `reference` is unique per movement across both kinds.
    """

    kind: MovementKind
    client_id: int
    amount: Decimal
    currency: str
    at: datetime
    method: str
    instrument_fingerprint: str
    settled: bool
    reference: str
    payer_name: str | None = None

    def __post_init__(self) -> None:
        if not self.reference:
            raise ValueError("A money movement needs a reference.")
        if self.kind not in MOVEMENT_KINDS:
            raise ValueError(f"Movement {self.reference}: kind must be one of {MOVEMENT_KINDS}, got {self.kind!r}.")
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite() or self.amount <= 0:
            raise ValueError(f"Movement {self.reference}: amount must be a positive Decimal, got {self.amount!r}.")
        currency_exponent(self.currency)  # refuses a currency the money helpers could not round
        _require_aware(self.at, f"Movement {self.reference}: at")
        # An empty fingerprint would make every unidentified instrument "the same one" and hide return-to-source breaks.
        if not self.instrument_fingerprint:
            raise ValueError(f"Movement {self.reference}: instrument_fingerprint must not be empty.")


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingActivity:
    """What one client traded on one day (a UTC calendar day, like every day in these rules)."""

    client_id: int
    day: date
    lots: Decimal
    trades: int

    def __post_init__(self) -> None:
        # A datetime is a date too; refusing it keeps "day" from silently carrying a time and a timezone.
        if not isinstance(self.day, date) or isinstance(self.day, datetime):
            raise ValueError(f"Trading activity day must be a date, got {self.day!r}.")
        if not isinstance(self.lots, Decimal) or not self.lots.is_finite() or self.lots < 0:
            raise ValueError(f"Trading activity on {self.day}: lots must be a Decimal >= 0, got {self.lots!r}.")
        if isinstance(self.trades, bool) or not isinstance(self.trades, int) or self.trades < 0:
            raise ValueError(f"Trading activity on {self.day}: trades must be an int >= 0, got {self.trades!r}.")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientFacts:
    """Who the client is, as far as the rules care. `country` is ISO 3166-1 alpha-2 (stored upper-case)."""

    client_id: int
    legal_name: str
    country: str
    risk_level: RiskLevel
    created_at: datetime

    def __post_init__(self) -> None:
        if not self.legal_name.strip():
            raise ValueError(f"Client {self.client_id}: legal_name must not be blank.")
        country = self.country.upper()
        if len(country) != 2 or not country.isascii() or not country.isalpha():
            raise ValueError(f"Client {self.client_id}: country must be an ISO-2 code, got {self.country!r}.")
        object.__setattr__(self, "country", country)
        if self.risk_level not in RISK_LEVELS:
            raise ValueError(f"Client {self.client_id}: risk_level must be one of {RISK_LEVELS}.")
        _require_aware(self.created_at, f"Client {self.client_id}: created_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class FactWindow:
    """Everything a rule may look at for ONE client over a period the caller chose.

    - `movements`: the client's deposits and withdrawals in the period, kept sorted by time (then reference). If
      `event` is given it is part of them: it replaces a movement with the same reference (the event is the newest
      word on that movement) or is added.
    - `event`: the movement that triggered this run (payments, as it happens), or None for the nightly run.
    - `now`: the moment the window is judged at (for an event run, the event's time or later); periods that end
      "now" (VelocitySpike) measure back from it.
    - `fx_to_usd`: USD per one unit of each currency (`{"EUR": Decimal("1.08")}` means 1 EUR = 1.08 USD). USD is
      always 1. Rules convert with it; a currency without a rate raises `CurrencyError` instead of being skipped,
      because silently leaving money out of an AML sum is the worse failure.
    - `prior_deposit_instruments`: fingerprints of instruments that funded settled deposits before the period, so
      a window of weeks still knows the card the client used last year.
    """

    client: ClientFacts
    movements: tuple[MoneyMovement, ...]
    now: datetime
    activity: tuple[TradingActivity, ...] = ()
    event: MoneyMovement | None = None
    fx_to_usd: Mapping[str, Decimal] = field(default_factory=dict)
    prior_deposit_instruments: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _require_aware(self.now, "FactWindow.now")
        movements: Iterable[MoneyMovement] = self.movements
        if self.event is not None:
            event = self.event
            movements = [*(m for m in movements if m.reference != event.reference), event]
        ordered = tuple(sorted(movements, key=lambda m: (m.at, m.reference)))
        client_id = self.client.client_id
        strangers = [m.reference for m in ordered if m.client_id != client_id]
        strangers += [str(a.day) for a in self.activity if a.client_id != client_id]
        if strangers:
            raise ValueError(f"FactWindow for client {client_id} holds facts of other clients: {strangers}.")
        rates = dict(self.fx_to_usd)
        for currency, rate in rates.items():
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                raise ValueError(f"fx_to_usd[{currency!r}] must be a positive Decimal, got {rate!r}.")
        if rates.get("USD", Decimal(1)) != 1:
            raise ValueError("fx_to_usd['USD'] must be 1: the rates are USD per unit.")
        object.__setattr__(self, "movements", ordered)
        object.__setattr__(self, "activity", tuple(self.activity))
        object.__setattr__(self, "fx_to_usd", MappingProxyType(rates))
        object.__setattr__(self, "prior_deposit_instruments", frozenset(self.prior_deposit_instruments))

    def settled(self, kind: MovementKind) -> tuple[MoneyMovement, ...]:
        """The settled movements of one kind, in time order."""
        return tuple(m for m in self.movements if m.kind == kind and m.settled)

    def convert(self, amount: Decimal, currency: str, to: str) -> Decimal:
        """`amount` of `currency` expressed in `to`, unrounded so a comparison with a threshold is not skewed by
        rounding; round only for display."""
        if currency == to:
            return amount
        return amount * self._usd_rate(currency) / self._usd_rate(to)

    def total(self, movements: Iterable[MoneyMovement], currency: str) -> Decimal:
        """The sum of `movements` in `currency`, unrounded like `convert`."""
        return sum((self.convert(m.amount, m.currency, currency) for m in movements), Decimal(0))

    def lots_between(self, first: date, last: date) -> Decimal:
        """Lots traded on the days from `first` to `last`, both included."""
        return sum((a.lots for a in self.activity if first <= a.day <= last), Decimal(0))

    def _usd_rate(self, currency: str) -> Decimal:
        if currency == "USD":
            return Decimal(1)
        try:
            return self.fx_to_usd[currency]
        except KeyError:
            raise CurrencyError(
                f"No USD rate for {currency} in the fact window of client {self.client.client_id}."
            ) from None
