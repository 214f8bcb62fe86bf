from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import CurrencyError, Money, quantize

amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=8, allow_nan=False)


def test_quantize_uses_each_currencys_minor_unit_with_bankers_rounding():
    assert quantize("10.125", "USD") == Decimal("10.12")
    assert quantize("10.135", "USD") == Decimal("10.14")
    assert quantize("1500.5", "JPY") == Decimal("1500")
    assert quantize("0.123456789", "BTC") == Decimal("0.12345679")


def test_floats_unknown_currencies_and_non_numbers_are_refused():
    with pytest.raises(TypeError):
        quantize(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(CurrencyError):
        quantize("1", "XXX")
    with pytest.raises(ValueError, match="not an amount"):
        quantize("ten", "USD")
    with pytest.raises(ValueError, match="finite"):
        quantize("Infinity", "USD")


def test_money_of_different_currencies_does_not_mix():
    with pytest.raises(CurrencyError):
        Money(Decimal("1"), "USD") + Money(Decimal("1"), "EUR")


def test_money_prints_with_its_precision():
    assert str(Money(Decimal("1234.5"), "USD")) == "1,234.50 USD"
    assert str(Money(Decimal("1234.5"), "JPY")) == "1,234 JPY"


@given(st.lists(amounts, min_size=1, max_size=30))
def test_sum_of_movements_and_their_reversals_is_exactly_zero(values):
    moves = [Money(v, "USD") for v in values]
    total = Money(Decimal(0), "USD")
    for move in moves + [-m for m in moves]:
        total = total + move
    assert total.amount == 0


@given(amounts, amounts)
def test_addition_is_exact_at_the_minor_unit(a, b):
    assert (Money(a, "EUR") + Money(b, "EUR")).amount == quantize(a, "EUR") + quantize(b, "EUR")
