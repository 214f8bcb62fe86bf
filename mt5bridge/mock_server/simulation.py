"""Simulated market and client trading, one tick at a time.

A tick, in this order: prices take one random-walk step; every ``rollover_ticks`` ticks open positions
are charged a night of swap (three nights on every fifth rollover, MT5's triple-swap Wednesday); accounts
under their group's stop-out level lose their most losing position until they recover; then a few FUNDED
accounts (balance > 0) trade: close a position held long enough, or open one sized to a slice of their
free margin. Trades go through the store's ordinary rules, so they write in/out deals with profit,
commission and swap exactly as the Web API reports them.

Everything random is drawn from one ``random.Random(seed)`` in a fixed order, and the whole tick is one
store transaction: the same seed on the same starting state gives the same deals (their times aside).
The RNG is not persisted: after a restart the sequence starts again from the seed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from decimal import Decimal

from .market import SYMBOLS, VOLUME_STEP, AccountBook, Quotes, max_volume_for_margin
from .store import DealReason, Mt5Error, Retcode, TradeStore

LOT_CHOICES = (100, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000)
"""Volumes a simulated client asks for (MT5 units, 0.01 to 2 lots), before it is trimmed to its margin."""


@dataclass(frozen=True)
class SimulationSettings:
    traders_per_tick: int = 3
    open_probability: float = 0.4
    close_probability: float = 0.35
    min_hold_ticks: int = 3
    max_positions: int = 5
    rollover_ticks: int = 50
    margin_fraction: tuple[float, float] = (0.02, 0.2)
    """A new position uses between these fractions of the account's free margin."""


@dataclass
class SimulationReport:
    """What some ticks did; returned by :meth:`Simulator.step` and by ``POST /_mock/simulate``."""

    ticks: int = 0
    tick: int = 0
    """The server's tick counter after the last step."""
    opened: int = 0
    closed: int = 0
    stopped_out: int = 0
    swaps_charged: int = 0


class Simulator:
    """Drives the market and the simulated clients of one store; safe to call from several threads."""

    def __init__(self, store: TradeStore, *, seed: int, settings: SimulationSettings | None = None) -> None:
        self._store = store
        self._rng = random.Random(f"simulation:{seed}")
        self._settings = settings or SimulationSettings()
        self._lock = threading.Lock()

    def step(self, steps: int = 1) -> SimulationReport:
        """Advance ``steps`` ticks synchronously, each in its own transaction."""
        report = SimulationReport()
        with self._lock:
            for _ in range(steps):
                self._tick(report)
        return report

    def _tick(self, report: SimulationReport) -> None:
        store = self._store
        with store.transaction():
            tick = store.next_tick()
            store.feed.move(self._rng, store.now_msc())
            store.save_quotes()
            quotes = store.feed.snapshot()
            rollover_ticks = self._settings.rollover_ticks
            if tick % rollover_ticks == 0:
                nights = 3 if (tick // rollover_ticks) % 5 == 3 else 1
                report.swaps_charged += store.apply_swaps(nights)
            report.stopped_out += self._stop_out(quotes)
            self._trade(quotes, tick, report)
        report.ticks += 1
        report.tick = tick

    def _stop_out(self, quotes: Quotes) -> int:
        """Close the most losing position of each account under its stop-out level until it recovers."""
        closed = 0
        for book in self._store.books_with_positions():
            state = book.state(quotes)
            while book.positions and state.margin > 0 and state.margin_level < book.margin_stop_out:
                worst = min(book.positions, key=lambda p: (p.profit(book.currency, quotes), p.position))
                self._store.position_close(
                    worst.position, reason=DealReason.STOP_OUT, comment=f"[so {state.margin_level}%]"
                )
                closed += 1
                book = self._store.book(book.login)
                state = book.state(quotes)
        return closed

    def _trade(self, quotes: Quotes, tick: int, report: SimulationReport) -> None:
        settings = self._settings
        funded = self._store.funded_logins()
        for login in self._rng.sample(funded, min(settings.traders_per_tick, len(funded))):
            book = self._store.book(login)
            closable = [p for p in book.positions if tick - p.open_tick >= settings.min_hold_ticks]
            if closable and self._rng.random() < settings.close_probability:
                self._store.position_close(self._rng.choice(closable).position)
                report.closed += 1
            elif len(book.positions) < settings.max_positions and self._rng.random() < settings.open_probability:
                report.opened += self._open(book, quotes, tick)

    def _open(self, book: AccountBook, quotes: Quotes, tick: int) -> int:
        """Open one position sized to the account's free margin; returns 1 if it opened, else 0."""
        rng = self._rng
        spec = rng.choice(list(SYMBOLS.values()))
        action = rng.randrange(2)
        wanted = rng.choice(LOT_CHOICES)
        budget = book.state(quotes).margin_free * Decimal(repr(rng.uniform(*self._settings.margin_fraction)))
        volume = min(wanted, max_volume_for_margin(spec, book.leverage, book.currency, budget, quotes))
        if volume < VOLUME_STEP:
            return 0
        try:
            self._store.position_open(login=book.login, symbol=spec.name, action=action, volume=volume, tick=tick)
        except Mt5Error as error:
            # The commission can tip a small account over; that client simply does not trade this tick.
            if error.retcode is not Retcode.NO_MONEY:
                raise
            return 0
        return 1
