"""Money helpers: Decimal only, a currency on every amount, and the rounding rules per currency in one place."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# Minor units per ISO 4217 (and the common crypto precision the PSPs use). Anything not listed is refused rather
# than guessed: a wrong exponent is a 100x error.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "AUD": 2,
    "CAD": 2,
    "JPY": 0,
    "USDT": 6,
    "BTC": 8,
}


class CurrencyError(ValueError):
    """An amount named a currency this system does not handle."""


def currency_exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise CurrencyError(f"Unsupported currency {currency!r}.") from None


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round an amount to the currency's minor unit with banker's rounding (no drift over many roundings)."""
    if isinstance(amount, float):
        raise TypeError("Money is never a float; pass a Decimal or a string.")
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError):
        raise ValueError(f"{amount!r} is not an amount.") from None
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not a finite amount.")
    return value.quantize(Decimal(1).scaleb(-currency_exponent(currency)), rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in a currency, always rounded to that currency's minor unit."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", quantize(self.amount, self.currency))

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyError(f"Cannot combine {self.currency} with {other.currency}.")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.amount:,.{currency_exponent(self.currency)}f} {self.currency}"
