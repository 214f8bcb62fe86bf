"""Currency conversion for client money: a quoted rate, recorded on the movement it converts.

Rates come from `settings.PAYMENTS_FX_RATES` (mid rates per pair, e.g. `{"EURUSD": "1.0800"}`, overridable through
the `PAYMENTS_FX_RATES` environment variable as JSON), with the broker's conversion spread
`settings.PAYMENTS_FX_SPREAD` taken against the client. A live feed plugs in by replacing `RateSource`; whatever
the source, the rate used is stored on the deposit, so the ledger and the statement can always say how an amount
was reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings

from core.errors import ApplicationError
from core.money import quantize

RATE_PLACES = Decimal("0.00000001")


@dataclass(frozen=True)
class Quote:
    source_currency: str
    target_currency: str
    rate: Decimal  # target units per source unit, spread included
    source: str

    def convert(self, amount: Decimal) -> Decimal:
        return quantize(amount * self.rate, self.target_currency)


def _mid(base: str, quote: str) -> Decimal | None:
    rates = settings.PAYMENTS_FX_RATES
    if f"{base}{quote}" in rates:
        return Decimal(str(rates[f"{base}{quote}"]))
    if f"{quote}{base}" in rates:
        return (Decimal(1) / Decimal(str(rates[f"{quote}{base}"]))).quantize(RATE_PLACES, ROUND_HALF_EVEN)
    return None


def fx_quote(*, source_currency: str, target_currency: str) -> Quote:
    """The rate a client gets converting `source_currency` into `target_currency` now."""
    if source_currency == target_currency:
        return Quote(source_currency, target_currency, Decimal(1), "same currency")
    mid = _mid(source_currency, target_currency)
    if mid is None or mid <= 0:
        raise ApplicationError(f"We cannot convert {source_currency} to {target_currency}.")
    spread = Decimal(str(settings.PAYMENTS_FX_SPREAD))
    rate = (mid * (Decimal(1) - spread)).quantize(RATE_PLACES, ROUND_HALF_EVEN)
    return Quote(source_currency, target_currency, rate, f"configured mid {mid} less {spread:%} spread")
