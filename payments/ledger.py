"""Posting to the ledger. The only code that writes `LedgerTransaction` and `LedgerEntry` rows.

`ledger_post` guarantees, in one transaction: the entries balance per currency, each entry's currency is its
account's, amounts are rounded to the currency's minor unit (never silently: an amount with more precision is an
error), accounts that may not go negative (client wallets, withdrawal holds) are locked in a fixed order and checked
after the posting, and a repeated idempotency key returns the first transaction (provided it asked for the same
entries) instead of posting twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction

from core.db import DecimalSum
from core.errors import ApplicationError
from core.money import quantize
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction


class LedgerError(ApplicationError):
    """A posting that would break a ledger invariant; nothing was written."""


class InsufficientFunds(LedgerError):
    def __init__(self, message: str = "Not enough funds.") -> None:
        super().__init__(message, code="insufficient_funds")


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    amount: Decimal


def ledger_account(*, kind: str, currency: str, user=None, key: str = "") -> LedgerAccount:
    """Get or create an account (idempotent under races thanks to the unique constraints)."""
    lookup = {"kind": kind, "currency": currency, "user": user, "key": key}
    try:
        return LedgerAccount.objects.get(**lookup)
    except LedgerAccount.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(**lookup)
    except IntegrityError:
        return LedgerAccount.objects.get(**lookup)


def client_wallet(*, user, currency: str) -> LedgerAccount:
    return ledger_account(kind=LedgerAccount.Kind.CLIENT_WALLET, currency=currency, user=user)


def mt5_float(*, account) -> LedgerAccount:
    """The MT5 float of the trading account's server and currency: money the broker holds on that server."""
    return ledger_account(kind=LedgerAccount.Kind.MT5_FLOAT, currency=account.currency, key=account.server.name)


def account_balance(account: LedgerAccount) -> Decimal:
    """The balance is the sum of the account's entries, always; nothing caches it."""
    return account.entries.aggregate(total=DecimalSum("amount"))["total"] or Decimal(0)


def _normalise(legs: list[Leg]) -> list[Leg]:
    if len(legs) < 2:
        raise LedgerError("A ledger transaction needs at least two entries.")
    out = []
    for leg in legs:
        rounded = quantize(leg.amount, leg.account.currency)
        if rounded != leg.amount:
            raise LedgerError(f"{leg.amount} has more precision than {leg.account.currency} allows.")
        if rounded == 0:
            raise LedgerError("A ledger entry cannot be zero.")
        out.append(Leg(leg.account, rounded))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for leg in out:
        totals[leg.account.currency] += leg.amount
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced:
        raise LedgerError(f"Entries do not balance: {unbalanced}.")
    return out


def _same_request(existing: LedgerTransaction, legs: list[Leg]) -> bool:
    stored = sorted((e.account_id, e.amount) for e in existing.entries.all())
    return stored == sorted((leg.account.pk, leg.amount) for leg in legs)


def ledger_post(
    *, idempotency_key: str, kind: str, description: str, legs: list[Leg], created_by=None
) -> LedgerTransaction:
    """Post one balanced transaction, or return the one already posted under this key (see the module docstring).

    Raises `InsufficientFunds` when a client wallet or hold would go below zero, `LedgerError` for an unbalanced or
    malformed posting; in both cases nothing is written.
    """
    legs = _normalise(legs)
    with transaction.atomic():
        existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if not _same_request(existing, legs):
                raise LedgerError("This idempotency key was already used for different entries.", code="conflict")
            return existing
        guarded = sorted({leg.account.pk for leg in legs if leg.account.kind in LedgerAccount.NON_NEGATIVE})
        # Fixed lock order (by primary key) so two postings touching the same wallets cannot deadlock.
        list(LedgerAccount.objects.select_for_update().filter(pk__in=guarded).order_by("pk"))
        try:
            with transaction.atomic():
                posted = LedgerTransaction.objects.create(
                    idempotency_key=idempotency_key, kind=kind, description=description[:255], created_by=created_by
                )
        except IntegrityError:
            # A concurrent posting with the same key won the race; it is the one that counts.
            existing = LedgerTransaction.objects.get(idempotency_key=idempotency_key)
            if not _same_request(existing, legs):
                raise LedgerError(
                    "This idempotency key was already used for different entries.", code="conflict"
                ) from None
            return existing
        LedgerEntry.objects.bulk_create(
            LedgerEntry(transaction=posted, account=leg.account, amount=leg.amount, currency=leg.account.currency)
            for leg in legs
        )
        for pk in guarded:
            account = next(leg.account for leg in legs if leg.account.pk == pk)
            if account_balance(account) < 0:
                raise InsufficientFunds(f"Not enough funds in your {account.currency} wallet.")
    return posted


def ledger_is_balanced() -> bool:
    """Whole-ledger check for reconciliation and tests: every currency sums to zero."""
    totals = LedgerEntry.objects.values("currency").annotate(total=DecimalSum("amount"))
    return all(row["total"] == 0 for row in totals)
