"""The double-entry ledger: accounts, transactions and their entries.

Invariants (enforced by `payments.ledger` in code on every database, and on PostgreSQL also by triggers):
- every transaction's entries sum to zero per currency;
- an entry's currency is its account's currency;
- entries and transactions are never updated or deleted (a correction is a new transaction);
- each transaction has a unique idempotency key, so a movement recorded twice exists once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

MONEY = {"max_digits": 20, "decimal_places": 8}


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        CLIENT_WALLET = "client_wallet", "Client wallet"
        WITHDRAWAL_HOLD = "withdrawal_hold", "Withdrawal hold"
        PSP_CLEARING = "psp_clearing", "PSP clearing"
        MT5_FLOAT = "mt5_float", "MT5 server float"
        FEES = "fees", "Fees"
        IB_PAYABLE = "ib_payable", "IB commission payable"
        SUSPENSE = "suspense", "Suspense"

    # Accounts whose balance may never go below zero (the client's money; what the broker owes can't be negative).
    NON_NEGATIVE = {Kind.CLIENT_WALLET, Kind.WITHDRAWAL_HOLD}

    kind = models.CharField(max_length=20, choices=Kind.choices)
    currency = models.CharField(max_length=8)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_accounts"
    )
    key = models.CharField(
        max_length=64, blank=True, help_text="What the account is about beyond its owner: a PSP name, an MT5 server."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "currency", "id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "currency", "user", "key"], name="uniq_ledger_account"),
            models.UniqueConstraint(
                fields=["kind", "currency", "key"], condition=Q(user__isnull=True), name="uniq_ledger_house_account"
            ),
        ]

    def __str__(self) -> str:
        owner = self.user.email if self.user_id else self.key or "house"
        return f"{self.get_kind_display()} {self.currency} ({owner})"


class LedgerTransaction(models.Model):
    idempotency_key = models.CharField(max_length=160, unique=True)
    kind = models.CharField(max_length=40, help_text="deposit, withdrawal_hold, transfer_to_mt5, adjustment, ...")
    description = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.DecimalField(**MONEY, help_text="Positive adds to the account, negative takes from it.")
    currency = models.CharField(max_length=8)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_not_zero")]
        indexes = [models.Index(fields=["account", "id"])]

    def __str__(self) -> str:
        return f"{self.amount:+} {self.currency} on {self.account_id}"
