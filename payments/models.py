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
from django_fsm import FSMField

from core.fsm import logged_transition

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
        FX = "fx", "Currency conversion"

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


class Deposit(models.Model):
    """Money a client sends through a PSP. `created -> pending -> succeeded -> credited -> completed`, or `failed`.

    `credited` means the client's wallet holds it (ledger); `completed` means it also reached the chosen MT5
    account (exactly once, through a balance operation). Without a trading account, `credited` is the end.
    """

    class State(models.TextChoices):
        CREATED = "created", "Created"
        PENDING = "pending", "Waiting for payment"
        SUCCEEDED = "succeeded", "Paid"
        CREDITED = "credited", "In your wallet"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"
        REFUNDED = "refunded", "Refunded"
        CHARGED_BACK = "charged_back", "Charged back"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposits")
    provider = models.CharField(max_length=32)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=8)
    trading_account = models.ForeignKey(
        "mt5bridge.TradingAccount", on_delete=models.PROTECT, null=True, blank=True, related_name="deposits"
    )
    state = FSMField(default=State.CREATED, choices=State.choices, protected=True)
    psp_reference = models.CharField(max_length=128, blank=True)
    psp_payment_id = models.CharField(
        max_length=128, blank=True, db_index=True,
        help_text="The PSP's id of the payment itself (Stripe's payment intent) when it differs from the checkout's.",
    )  # fmt: skip
    requested_amount = models.DecimalField(
        max_digits=20, decimal_places=2, null=True, blank=True,
        help_text="What the client asked to pay, when the amount that arrived differs (crypto under/over-payment).",
    )  # fmt: skip
    wallet_currency = models.CharField(max_length=8, blank=True, help_text="Set when the wallet's currency differs.")
    wallet_amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    fx_rate = models.DecimalField(
        max_digits=18, decimal_places=8, null=True, blank=True, help_text="Wallet currency per unit paid, as quoted."
    )
    fx_source = models.CharField(max_length=64, blank=True)
    fee = models.DecimalField(
        max_digits=20, decimal_places=2, default=0, help_text="The PSP's fee, borne by the broker (payment currency)."
    )
    reversed_amount = models.DecimalField(
        max_digits=20, decimal_places=2, default=0, help_text="Refunded or charged back at the PSP so far."
    )
    confirmations = models.PositiveIntegerField(null=True, blank=True, help_text="Crypto: block confirmations seen.")
    note = models.CharField(max_length=255, blank=True, help_text="What the client and Finance should know.")
    checkout_url = models.URLField(max_length=500, blank=True)
    payer_name = models.CharField(max_length=150, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    balance_operation = models.ForeignKey(
        "mt5bridge.BalanceOperation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "psp_reference"], condition=~Q(psp_reference=""), name="uniq_deposit_psp_ref"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Deposit #{self.pk} {self.amount} {self.currency} ({self.state})"

    @logged_transition(field=state, source=State.CREATED, target=State.PENDING)
    def redirect_to_psp(self, by=None, description=None) -> None:
        """The PSP opened a checkout; the client was sent there."""

    @logged_transition(field=state, source=State.PENDING, target=State.SUCCEEDED)
    def succeed(self, by=None, description=None) -> None:
        """The PSP confirmed the payment."""

    @logged_transition(field=state, source=State.SUCCEEDED, target=State.CREDITED)
    def credit(self, by=None, description=None) -> None:
        """The ledger moved the money from PSP clearing to the client's wallet."""

    @logged_transition(field=state, source=State.CREDITED, target=State.COMPLETED)
    def complete(self, by=None, description=None) -> None:
        """The money reached the chosen MT5 account."""

    @logged_transition(field=state, source=[State.CREATED, State.PENDING], target=State.FAILED)
    def fail(self, by=None, description=None) -> None:
        """The PSP declined, or the checkout could not be opened."""

    @logged_transition(field=state, source=State.PENDING, target=State.EXPIRED)
    def expire(self, by=None, description=None) -> None:
        """The client never paid."""

    @logged_transition(field=state, source=[State.CREDITED, State.COMPLETED], target=State.REFUNDED)
    def refund(self, by=None, description=None) -> None:
        """The PSP returned the whole payment to the payer; the ledger reversed it."""

    @logged_transition(field=state, source=[State.CREDITED, State.COMPLETED, State.REFUNDED], target=State.CHARGED_BACK)
    def charge_back(self, by=None, description=None) -> None:
        """The payer's bank took the money back (a lost dispute); the ledger reversed it."""

    @logged_transition(field=state, source=State.CHARGED_BACK, target=State.CREDITED)
    def reinstate(self, by=None, description=None) -> None:
        """The broker won the dispute; the PSP paid the money back and the wallet was credited again."""

    @property
    def credit_currency(self) -> str:
        """The currency the client's wallet receives (the paid currency unless it was converted)."""
        return self.wallet_currency or self.currency

    @property
    def credit_amount(self):
        """What the client's wallet receives for this deposit, in `credit_currency`."""
        return self.wallet_amount if self.wallet_amount is not None else self.amount


class DepositReversal(models.Model):
    """Money a PSP took back from a credited deposit: a refund made at the PSP, a chargeback, or (the other way) a
    won dispute's reinstatement. One row per PSP refund or dispute id, so a repeated event reverses once.

    The ledger takes the money from the wallet first; what the wallet no longer holds becomes a receivable from the
    client (suspense) and, where the deposit went to a trading account, is taken back from MT5 by a balance
    operation. What MT5 refuses stays a receivable and raises an alert.
    """

    class Kind(models.TextChoices):
        REFUND = "refund", "Refund at the PSP"
        CHARGEBACK = "chargeback", "Chargeback"
        REINSTATEMENT = "reinstatement", "Dispute won (reinstated)"

    class State(models.TextChoices):
        RECOVERING = "recovering", "Recovering from MT5"
        SETTLED = "settled", "Settled"

    deposit = models.ForeignKey(Deposit, on_delete=models.PROTECT, related_name="reversals")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    psp_reference = models.CharField(max_length=128, help_text="The PSP's refund or dispute id.")
    amount = models.DecimalField(max_digits=20, decimal_places=2, help_text="In the deposit's payment currency.")
    currency = models.CharField(max_length=8)
    wallet_amount = models.DecimalField(max_digits=20, decimal_places=2, help_text="The same, in the wallet currency.")
    from_wallet = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    from_mt5 = models.DecimalField(max_digits=20, decimal_places=2, default=0, help_text="Asked back from MT5.")
    unrecovered = models.DecimalField(
        max_digits=20, decimal_places=2, default=0, help_text="Still owed by the client (suspense)."
    )
    balance_operation = models.ForeignKey(
        "mt5bridge.BalanceOperation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    state = FSMField(default=State.SETTLED, choices=State.choices, protected=True)
    event_id = models.CharField(max_length=200, blank=True, help_text="The webhook event that reported it.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["deposit", "kind", "psp_reference"], name="uniq_deposit_reversal"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="reversal_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency} of deposit #{self.deposit_id}"

    @logged_transition(field=state, source=State.RECOVERING, target=State.SETTLED)
    def settle(self, by=None, description=None) -> None:
        """MT5 confirmed or refused the debit; what it refused stays owed."""


class SandboxPayment(models.Model):
    """THE SANDBOX PSP'S OWN RECORD, not ours: the built-in test PSP keeps its state here, as a real PSP keeps it on
    its side. The CRM learns about it only through signed webhooks and status fetches."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REQUIRES_ACTION = "requires_action", "3-D Secure challenge"
        PROCESSING = "processing", "Processing (delayed)"
        SUCCEEDED = "succeeded", "Succeeded"
        DECLINED = "declined", "Declined"
        CHARGED_BACK = "charged_back", "Charged back"

    reference = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=8)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    payer_name = models.CharField(max_length=150, blank=True)
    refunded = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    refund_ids = models.JSONField(default=list, blank=True)
    return_url = models.URLField(max_length=500)
    webhook_url = models.URLField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"sandbox {self.reference} {self.status}"


class Withdrawal(models.Model):
    """Money a client takes out of their wallet.

    `requested -> funds_held -> approved -> sent -> completed`; `rejected` or `cancelled` before it is sent give
    the held money back to the wallet. Approval is automatic up to the KYC level's limit, otherwise four eyes: two
    different Finance users, neither of them the client.
    """

    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"
        FUNDS_HELD = "funds_held", "Awaiting approval"
        APPROVED = "approved", "Approved"
        SENT = "sent", "Sent"
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"

    class Method(models.TextChoices):
        CARD_REFUND = "card_refund", "Back to the card I paid with"
        BANK_WIRE = "bank_wire", "Bank transfer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals")
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=8)
    method = models.CharField(max_length=16, choices=Method.choices)
    destination = models.CharField(max_length=200, blank=True, help_text="IBAN or account details for a wire.")
    source_deposit = models.ForeignKey(
        Deposit, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds",
        help_text="Return to source: the card deposit this is refunded against.",
    )  # fmt: skip
    state = FSMField(default=State.REQUESTED, choices=State.choices, protected=True)
    first_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    second_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payout_reference = models.CharField(max_length=128, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("approve_withdrawal", "Can approve withdrawals (four eyes)")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_positive")]

    def __str__(self) -> str:
        return f"Withdrawal #{self.pk} {self.amount} {self.currency} ({self.state})"

    @logged_transition(field=state, source=State.REQUESTED, target=State.FUNDS_HELD)
    def hold(self, by=None, description=None) -> None:
        """The amount moved from the wallet to the withdrawal hold."""

    @logged_transition(field=state, source=State.FUNDS_HELD, target=State.APPROVED)
    def approve(self, by=None, description=None) -> None:
        """Automatically under the level's limit, or by the second of two Finance users."""

    @logged_transition(field=state, source=State.APPROVED, target=State.SENT)
    def send(self, by=None, description=None) -> None:
        """Paid out: refunded to the card or wired."""

    @logged_transition(field=state, source=State.SENT, target=State.COMPLETED)
    def complete(self, by=None, description=None) -> None:
        """The PSP or bank confirmed the payout."""

    @logged_transition(field=state, source=[State.REQUESTED, State.FUNDS_HELD, State.APPROVED], target=State.REJECTED)
    def reject(self, by=None, description=None) -> None:
        """Refused by Finance or Compliance; the held money goes back."""

    @logged_transition(field=state, source=[State.REQUESTED, State.FUNDS_HELD], target=State.CANCELLED)
    def cancel(self, by=None, description=None) -> None:
        """Withdrawn by the client before approval; the held money goes back."""


class Transfer(models.Model):
    """Money between the client's wallet and one of their live MT5 accounts, exactly once on both sides.

    To an account: the ledger moves wallet -> MT5 float at once and a balance operation credits MT5; if MT5 refuses,
    a reversing posting gives the money back. To the wallet: a balance operation debits MT5 first (MT5 checks free
    margin), and only when it is confirmed does the ledger move MT5 float -> wallet.
    """

    class State(models.TextChoices):
        SENT = "sent", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Direction(models.TextChoices):
        TO_ACCOUNT = "to_account", "Wallet to trading account"
        TO_WALLET = "to_wallet", "Trading account to wallet"
        BETWEEN_ACCOUNTS = "between", "Between trading accounts"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transfers")
    direction = models.CharField(max_length=12, choices=Direction.choices)
    trading_account = models.ForeignKey("mt5bridge.TradingAccount", on_delete=models.PROTECT, related_name="transfers")
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=8)
    balance_operation = models.ForeignKey(
        "mt5bridge.BalanceOperation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Between accounts: the credit of the target, and (if that fails) the credit back to the source.
    target_account = models.ForeignKey(
        "mt5bridge.TradingAccount", on_delete=models.PROTECT, null=True, blank=True, related_name="incoming_transfers"
    )
    second_operation = models.ForeignKey(
        "mt5bridge.BalanceOperation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    compensation_operation = models.ForeignKey(
        "mt5bridge.BalanceOperation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    state = FSMField(default=State.SENT, choices=State.choices, protected=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive")]

    def __str__(self) -> str:
        return f"Transfer #{self.pk} {self.get_direction_display()} {self.amount} {self.currency}"

    @logged_transition(field=state, source=State.SENT, target=State.COMPLETED)
    def complete(self, by=None, description=None) -> None:
        """MT5 confirmed the balance operation; both sides agree."""

    @logged_transition(field=state, source=State.SENT, target=State.FAILED)
    def fail(self, by=None, description=None) -> None:
        """MT5 refused; nothing stays moved (a transfer to an account is reversed in the ledger)."""


class ReconciliationReport(models.Model):
    """One reconciliation run: what was compared, what was mended, what needs a person."""

    class Kind(models.TextChoices):
        PSP = "psp", "PSP vs deposits"
        MT5 = "mt5", "Ledger and balance operations vs MT5"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    scope = models.CharField(max_length=64, help_text="The provider or trade server compared.")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    checked = models.PositiveIntegerField(default=0)
    mended = models.PositiveIntegerField(default=0)
    discrepancies = models.PositiveIntegerField(default=0)
    items = models.JSONField(default=list, help_text="One entry per finding: what, reference, ours, theirs, action.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.scope} {self.started_at:%Y-%m-%d %H:%M}"


class ManualAdjustment(models.Model):
    """A correction of a client's wallet by staff: proposed with a reason by one person, posted only when a second,
    different person approves (four eyes). Positive credits the wallet, negative debits it."""

    class State(models.TextChoices):
        PROPOSED = "proposed", "Awaiting approval"
        POSTED = "posted", "Posted"
        REJECTED = "rejected", "Rejected"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet_adjustments")
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=8)
    reason = models.TextField()
    state = FSMField(default=State.PROPOSED, choices=State.choices, protected=True)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("approve_manualadjustment", "Can approve manual wallet adjustments (four eyes)")]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="adjustment_not_zero")]

    def __str__(self) -> str:
        return f"Adjustment #{self.pk} {self.amount:+} {self.currency} for {self.user}"

    @logged_transition(field=state, source=State.PROPOSED, target=State.POSTED)
    def post(self, by=None, description=None) -> None:
        """A second person approved; the ledger posting was made."""

    @logged_transition(field=state, source=State.PROPOSED, target=State.REJECTED)
    def reject(self, by=None, description=None) -> None:
        """Refused; nothing was posted."""
