"""Posting to the ledger. The only code that writes `LedgerTransaction` and `LedgerEntry` rows.

`ledger_post` guarantees, in one transaction: the entries balance per currency, each entry's currency is its
account's, amounts are rounded to the currency's minor unit (never silently: an amount with more precision is an
error), accounts that may not go negative (client wallets, withdrawal holds) and that the posting takes from are
locked in a fixed order and checked before anything is written, and a repeated idempotency key returns the first
transaction (provided it asked for the same entries) instead of posting twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction

from core.db import DecimalSum, insert_unless_taken
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


def ledger_accounts_of(*, kind: str, currency: str, users) -> dict[int, LedgerAccount]:
    """`ledger_account` for many users at once, by user id: one query when the accounts exist, and the missing
    ones created together (idempotent under races, as above)."""
    users = list(users)

    def existing(among) -> dict[int, LedgerAccount]:
        rows = LedgerAccount.objects.filter(kind=kind, currency=currency, key="", user__in=among)
        return {account.user_id: account for account in rows}

    found = existing(users)
    missing = [user for user in users if user.pk not in found]
    if missing:
        LedgerAccount.objects.bulk_create(
            [LedgerAccount(kind=kind, currency=currency, user=user, key="") for user in missing], ignore_conflicts=True
        )
        found |= existing(missing)
    return found


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
    # The guarded accounts this posting takes from. One that only receives cannot go below zero through it, and a
    # concurrent debit that does not see this credit yet only sees less money than there is: no lock, no check.
    taken: dict[int, Decimal] = defaultdict(Decimal)
    for leg in legs:
        if leg.account.kind in LedgerAccount.NON_NEGATIVE:
            taken[leg.account.pk] += leg.amount
    guarded = sorted(pk for pk, delta in taken.items() if delta < 0)
    posted = short = None
    # No savepoint: nothing in this block raises after writing (funds are checked under the lock before the INSERTs,
    # and a used idempotency key writes nothing), so a caller's transaction is never left with half a posting.
    with transaction.atomic(savepoint=False):
        # Fixed lock order (by primary key) so two postings touching the same wallets cannot deadlock.
        list(LedgerAccount.objects.select_for_update().filter(pk__in=guarded).order_by("pk"))
        for pk in guarded:
            account = next(leg.account for leg in legs if leg.account.pk == pk)
            if account_balance(account) + taken[pk] < 0:
                short = account
                break
        if short is None:
            posted = _insert_transaction(
                idempotency_key=idempotency_key, kind=kind, description=description[:255], created_by=created_by
            )
            if posted is not None:
                LedgerEntry.objects.bulk_create(
                    LedgerEntry(
                        transaction=posted, account=leg.account, amount=leg.amount, currency=leg.account.currency
                    )
                    for leg in legs
                )
    if posted is not None:
        return posted
    # The key was used already (a repeat, or a concurrent posting that committed first): that one counts, even when
    # the funds have been spent since.
    existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None and short is not None:
        raise InsufficientFunds(f"Not enough funds in your {short.currency} wallet.")
    if existing is None:  # cannot happen: ON CONFLICT skipped the INSERT only because the key's row exists
        raise LedgerError("The posting could not be recorded; nothing was written.")
    if not _same_request(existing, legs):
        raise LedgerError("This idempotency key was already used for different entries.", code="conflict")
    return existing


def _insert_transaction(*, idempotency_key: str, kind: str, description: str, created_by) -> LedgerTransaction | None:
    """INSERT the transaction row unless its idempotency key exists: the new row, or None when the key is taken.
    One statement (`core.db.insert_unless_taken`); a concurrent posting with the same key that has not committed yet
    makes it wait for that posting's outcome, exactly as the unique index would."""
    posted = LedgerTransaction(
        idempotency_key=idempotency_key, kind=kind, description=description, created_by=created_by
    )  # created_at: auto_now_add, filled by the insert
    return posted if insert_unless_taken(posted, unique=("idempotency_key",)) else None


def ledger_is_balanced() -> bool:
    """Whole-ledger check for reconciliation and tests: every currency sums to zero."""
    totals = LedgerEntry.objects.values("currency").annotate(total=DecimalSum("amount"))
    return all(row["total"] == 0 for row in totals)
