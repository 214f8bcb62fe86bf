"""Which PSPs may take a deposit: routing by the client's country, the currency, the amount and the fee.

Routes are data (`settings.PAYMENTS_ROUTES`, overridable as JSON through the environment): one entry per way to pay,
naming its provider, a label for the client, the currencies and countries it serves (`"*"` for all, a leading `!`
to exclude: `["*", "!US"]`), its amount limits and its fee (a percentage plus a fixed part). The portal offers the
eligible routes, cheapest first, and the deposit service refuses a route that is not eligible, so a crafted form
cannot pick a PSP the broker did not allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from core.errors import ApplicationError
from core.money import quantize


@dataclass(frozen=True)
class Route:
    method: str
    provider: str
    label: str
    currencies: tuple[str, ...]
    countries: tuple[str, ...]
    min_amount: Decimal
    max_amount: Decimal
    fee_percent: Decimal
    fee_fixed: Decimal

    def serves_country(self, country: str) -> bool:
        country = (country or "").upper()
        if f"!{country}" in self.countries:
            return False
        return "*" in self.countries or country in self.countries

    def serves(self, *, country: str, currency: str, amount: Decimal | None) -> bool:
        if currency not in self.currencies and "*" not in self.currencies:
            return False
        if not self.serves_country(country):
            return False
        return amount is None or self.min_amount <= amount <= self.max_amount

    def fee(self, amount: Decimal, currency: str) -> Decimal:
        return quantize(amount * self.fee_percent / 100 + self.fee_fixed, currency)


def _route(entry: dict) -> Route:
    return Route(
        method=str(entry["method"]),
        provider=str(entry["provider"]),
        label=str(entry.get("label", entry["method"])),
        currencies=tuple(entry.get("currencies", ["*"])),
        countries=tuple(c.upper() for c in entry.get("countries", ["*"])),
        min_amount=Decimal(str(entry.get("min", settings.PAYMENTS_MIN_DEPOSIT))),
        max_amount=Decimal(str(entry.get("max", settings.PAYMENTS_MAX_DEPOSIT))),
        fee_percent=Decimal(str(entry.get("fee_percent", "0"))),
        fee_fixed=Decimal(str(entry.get("fee_fixed", "0"))),
    )


def all_routes() -> list[Route]:
    return [_route(entry) for entry in settings.PAYMENTS_ROUTES]


def client_country(user) -> str:
    profile = getattr(user, "client_profile", None)
    return getattr(profile, "country", "") or ""


def deposit_routes(*, user, currency: str, amount: Decimal | None = None) -> list[Route]:
    """The ways this client may pay `amount` in `currency`, cheapest first (ties keep the configured order)."""
    country = client_country(user)
    eligible = [r for r in all_routes() if r.serves(country=country, currency=currency, amount=amount)]
    if amount is None:
        return eligible
    return sorted(eligible, key=lambda r: r.fee(amount, currency))


def payment_methods(*, user) -> list[tuple[str, str]]:
    """(method, label) of the ways to pay this client's country has, in the configured order, each once."""
    country, seen = client_country(user), {}
    for route in all_routes():
        if route.serves_country(country):
            seen.setdefault(route.method, route.label)
    return list(seen.items())


def deposit_route(*, user, method: str, currency: str, amount: Decimal) -> Route:
    """The cheapest eligible route for the method the client chose (several PSPs may offer cards), or a readable
    refusal saying why the method cannot be used."""
    routes = [r for r in all_routes() if r.method == method]
    if not routes:
        raise ApplicationError("Choose a way to pay.")
    country = client_country(user)
    eligible = [r for r in routes if r.serves(country=country, currency=currency, amount=amount)]
    if eligible:
        return min(eligible, key=lambda r: r.fee(amount, currency))
    route = routes[0]
    if not route.serves_country(country):
        raise ApplicationError(f"{route.label} is not available in your country.")
    if currency not in route.currencies and "*" not in route.currencies:
        raise ApplicationError(f"{route.label} takes {', '.join(route.currencies)}.")
    raise ApplicationError(f"{route.label} takes between {route.min_amount} and {route.max_amount} {currency}.")
