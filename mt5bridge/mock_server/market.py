"""Symbols, prices and the broker arithmetic of the mock trade server.

Everything here is pure (no I/O, no SQL): the store and the simulation feed it plain dataclasses and get
``Decimal`` amounts back. The formulas follow ``shared/GLOSSARY.md``:

* profit of a position = (close - open) x contract size x lots for a buy (reversed for a sell), in the
  symbol's profit currency, converted to the account currency and rounded to cents per position;
* margin = lots x contract size x current bid / leverage in the profit currency, converted to the account
  currency at the current rate; for FX this is MT5's "Forex" mode (lots x contract / leverage in the base
  currency, converted), so 1 lot of USDJPY at 1:100 holds exactly 1,000 USD; for gold and indices it is the
  "CFD leverage" mode;
* equity = balance + credit + floating profit + accrued swap, free margin = equity - margin,
  margin level = equity / margin x 100 (0 when there is no margin).

Conversion between currencies pivots on USD using the current bids of EURUSD, GBPUSD and USDJPY.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
VOLUME_PER_LOT = 10_000
"""MT5 volumes carry four decimals: a volume of 10000 is 1.00 lot, 100 is the 0.01 lot minimum step."""

VOLUME_STEP = 100

ACTION_BUY = 0
ACTION_SELL = 1


def money(amount: Decimal) -> Decimal:
    """Round an amount to cents the way MT5 rounds account money (half away from zero)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal) -> str:
    """Render money as the real Web API does: a string with exactly two decimals."""
    return str(money(amount))


def format_cents(cents: int) -> str:
    """Render stored integer cents like :func:`format_money`, without a Decimal (deal listings are hot)."""
    whole, fraction = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{fraction:02d}"


def cents_to_money(cents: int) -> Decimal:
    """Money is stored as integer cents so SQLite never rounds it; this turns it back into Decimal."""
    return Decimal(cents).scaleb(-2)


def money_to_cents(amount: Decimal) -> int:
    """The inverse of :func:`cents_to_money`; the amount is rounded to cents first."""
    return int(money(amount).scaleb(2))


def lots(volume: int) -> Decimal:
    """MT5 volume units (10000 per lot) to lots."""
    return Decimal(volume) / VOLUME_PER_LOT


@dataclass(frozen=True)
class SymbolSpec:
    """A tradable instrument: how it is quoted, sized and financed."""

    name: str
    description: str
    digits: int
    contract_size: Decimal
    base_currency: str
    profit_currency: str
    spread_points: int
    start_bid: Decimal
    volatility: float
    """Standard deviation of one tick's relative price move."""
    swap_long: Decimal
    """Swap per lot per night for a buy, in the profit currency."""
    swap_short: Decimal
    """Swap per lot per night for a sell, in the profit currency."""

    @property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    @property
    def spread(self) -> Decimal:
        return self.point * self.spread_points

    def quantize(self, price: Decimal) -> Decimal:
        return price.quantize(self.point, rounding=ROUND_HALF_UP)


SYMBOLS: dict[str, SymbolSpec] = {
    spec.name: spec
    for spec in (
        SymbolSpec(
            name="EURUSD",
            description="Euro vs US Dollar",
            digits=5,
            contract_size=Decimal(100_000),
            base_currency="EUR",
            profit_currency="USD",
            spread_points=12,
            start_bid=Decimal("1.08500"),
            volatility=0.00015,
            swap_long=Decimal("-6.80"),
            swap_short=Decimal("1.20"),
        ),
        SymbolSpec(
            name="GBPUSD",
            description="Great Britain Pound vs US Dollar",
            digits=5,
            contract_size=Decimal(100_000),
            base_currency="GBP",
            profit_currency="USD",
            spread_points=16,
            start_bid=Decimal("1.27000"),
            volatility=0.00018,
            swap_long=Decimal("-4.50"),
            swap_short=Decimal("-1.10"),
        ),
        SymbolSpec(
            name="USDJPY",
            description="US Dollar vs Japanese Yen",
            digits=3,
            contract_size=Decimal(100_000),
            base_currency="USD",
            profit_currency="JPY",
            spread_points=14,
            start_bid=Decimal("151.500"),
            volatility=0.00015,
            swap_long=Decimal("1600"),
            swap_short=Decimal("-3200"),
        ),
        SymbolSpec(
            name="XAUUSD",
            description="Gold vs US Dollar (100 oz)",
            digits=2,
            contract_size=Decimal(100),
            base_currency="XAU",
            profit_currency="USD",
            spread_points=30,
            start_bid=Decimal("2350.00"),
            volatility=0.0004,
            swap_long=Decimal("-45.00"),
            swap_short=Decimal("20.00"),
        ),
        SymbolSpec(
            name="US30",
            description="Dow Jones Industrial Average (cash)",
            digits=1,
            contract_size=Decimal(1),
            base_currency="USD",
            profit_currency="USD",
            spread_points=20,
            start_bid=Decimal("39000.0"),
            volatility=0.0003,
            swap_long=Decimal("-5.00"),
            swap_short=Decimal("-2.00"),
        ),
    )
}


@dataclass(frozen=True)
class Quote:
    """One symbol's current prices; buys fill at the ask, sells at the bid."""

    symbol: str
    bid: Decimal
    ask: Decimal
    time_msc: int


Quotes = Mapping[str, Quote]
"""A consistent snapshot of every symbol's quote (see :meth:`PriceFeed.snapshot`)."""


class PriceFeed:
    """Thread-safe current prices: a mean-reverting random walk with a fixed spread per symbol.

    Readers take :meth:`snapshot` so one computation never mixes prices from two ticks.
    """

    # Pull back 1% of the distance to the starting level per tick so a long simulation stays realistic.
    _MEAN_REVERSION = 0.01

    def __init__(self, bids: Mapping[str, Decimal] | None = None) -> None:
        self._lock = threading.Lock()
        self._quotes: dict[str, Quote] = {}
        for spec in SYMBOLS.values():
            bid = (bids or {}).get(spec.name, spec.start_bid)
            self._quotes[spec.name] = self._quote(spec, bid, 0)

    @staticmethod
    def _quote(spec: SymbolSpec, bid: Decimal, time_msc: int) -> Quote:
        bid = spec.quantize(bid)
        return Quote(spec.name, bid, bid + spec.spread, time_msc)

    def snapshot(self) -> dict[str, Quote]:
        with self._lock:
            return dict(self._quotes)

    def set_bid(self, symbol: str, bid: Decimal, time_msc: int) -> Quote:
        """Pin a symbol's bid (the ask follows at the symbol's spread); tests use it for exact arithmetic."""
        spec = SYMBOLS[symbol]
        if bid <= 0:
            raise ValueError("a price must be positive")
        with self._lock:
            quote = self._quotes[symbol] = self._quote(spec, bid, time_msc)
        return quote

    def move(self, rng: random.Random, time_msc: int) -> None:
        """Advance every symbol by one random tick, drawing from ``rng`` in a fixed symbol order."""
        with self._lock:
            for name, spec in SYMBOLS.items():
                current = float(self._quotes[name].bid)
                start = float(spec.start_bid)
                drift = self._MEAN_REVERSION * math.log(start / current)
                step = current * math.exp(drift + rng.gauss(0.0, spec.volatility))
                self._quotes[name] = self._quote(spec, Decimal(repr(step)), time_msc)


def usd_rate(currency: str, quotes: Quotes) -> Decimal:
    """How many USD one unit of ``currency`` is worth at the current bids."""
    if currency == "USD":
        return Decimal(1)
    if currency == "EUR":
        return quotes["EURUSD"].bid
    if currency == "GBP":
        return quotes["GBPUSD"].bid
    if currency == "JPY":
        return 1 / quotes["USDJPY"].bid
    raise ValueError(f"no conversion path for {currency}")


def convert(amount: Decimal, from_currency: str, to_currency: str, quotes: Quotes) -> Decimal:
    """Convert an amount between currencies (unrounded)."""
    if from_currency == to_currency:
        return amount
    return amount * usd_rate(from_currency, quotes) / usd_rate(to_currency, quotes)


def close_price(spec: SymbolSpec, action: int, quotes: Quotes) -> Decimal:
    """The price a position would close at now: a buy sells at the bid, a sell buys back at the ask."""
    quote = quotes[spec.name]
    return quote.bid if action == ACTION_BUY else quote.ask


def open_price(spec: SymbolSpec, action: int, quotes: Quotes) -> Decimal:
    """The price a new position fills at: a buy at the ask, a sell at the bid."""
    quote = quotes[spec.name]
    return quote.ask if action == ACTION_BUY else quote.bid


def position_profit(
    spec: SymbolSpec,
    action: int,
    volume: int,
    price_open: Decimal,
    price_close: Decimal,
    account_currency: str,
    quotes: Quotes,
) -> Decimal:
    """Profit of a position closed at ``price_close``, in the account currency, rounded to cents."""
    direction = 1 if action == ACTION_BUY else -1
    raw = (price_close - price_open) * direction * spec.contract_size * lots(volume)
    return money(convert(raw, spec.profit_currency, account_currency, quotes))


def position_margin(spec: SymbolSpec, volume: int, leverage: int, account_currency: str, quotes: Quotes) -> Decimal:
    """Margin held by a position at the current prices, in the account currency, unrounded."""
    notional = lots(volume) * spec.contract_size * quotes[spec.name].bid
    return convert(notional / leverage, spec.profit_currency, account_currency, quotes)


def commission_per_side(volume: int, commission_per_lot: Decimal) -> Decimal:
    """The (negative) commission charged on one deal, in the group currency."""
    return -money(lots(volume) * commission_per_lot)


def max_volume_for_margin(
    spec: SymbolSpec, leverage: int, account_currency: str, budget: Decimal, quotes: Quotes
) -> int:
    """The largest volume (in MT5 units, a multiple of the 0.01 lot step) whose margin fits in ``budget``."""
    per_lot = position_margin(spec, VOLUME_PER_LOT, leverage, account_currency, quotes)
    if budget <= 0 or per_lot <= 0:
        return 0
    steps = (budget / per_lot * 100).to_integral_value(rounding=ROUND_DOWN)
    return int(steps) * VOLUME_STEP


@dataclass(frozen=True)
class OpenPosition:
    """A position as the store keeps it; ``storage`` is the swap accrued so far, in the account currency."""

    position: int
    login: int
    symbol: str
    action: int
    volume: int
    price_open: Decimal
    storage: Decimal
    time_create_msc: int
    open_tick: int

    @property
    def spec(self) -> SymbolSpec:
        return SYMBOLS[self.symbol]

    def profit(self, account_currency: str, quotes: Quotes) -> Decimal:
        price = close_price(self.spec, self.action, quotes)
        return position_profit(self.spec, self.action, self.volume, self.price_open, price, account_currency, quotes)


@dataclass(frozen=True)
class AccountState:
    """The money fields of an MT5 account at one set of prices, every amount rounded to cents."""

    balance: Decimal
    credit: Decimal
    profit: Decimal
    storage: Decimal
    margin: Decimal

    @property
    def floating(self) -> Decimal:
        return self.profit + self.storage

    @property
    def equity(self) -> Decimal:
        return self.balance + self.credit + self.floating

    @property
    def margin_free(self) -> Decimal:
        return self.equity - self.margin

    @property
    def margin_level(self) -> Decimal:
        if self.margin == 0:
            return Decimal("0.00")
        return money(self.equity / self.margin * 100)


@dataclass(frozen=True)
class AccountBook:
    """Everything needed to value one account: its money, its group's rules and its open positions."""

    login: int
    currency: str
    leverage: int
    balance: Decimal
    credit: Decimal
    margin_stop_out: Decimal
    commission_per_lot: Decimal
    positions: tuple[OpenPosition, ...]

    def state(self, quotes: Quotes, extra_margin: Decimal = Decimal(0)) -> AccountState:
        """Value the account at ``quotes``; ``extra_margin`` prices in a position about to be opened."""
        profit = sum((p.profit(self.currency, quotes) for p in self.positions), Decimal("0.00"))
        storage = sum((p.storage for p in self.positions), Decimal("0.00"))
        margin = sum(
            (position_margin(p.spec, p.volume, self.leverage, self.currency, quotes) for p in self.positions),
            extra_margin,
        )
        return AccountState(self.balance, self.credit, profit, storage, money(margin))
