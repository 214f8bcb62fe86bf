"""The nightly tables and their fill state.

Every table is keyed by the broker's trading day (`day`, see `analytics.days`) and its grouping keys, and is only
ever written by `analytics.builders`: one day bucket at a time, deleted and re-inserted by one SQL statement inside
one transaction. Rows carry no build timestamps, so a rebuild of unchanged sources gives identical rows.

Money columns are NUMERIC on PostgreSQL; on SQLite the builders add scaled integers and store the exact result
(see `analytics.builders`). Users and accounts are referenced without database constraints: the tables are derived
data, written in bulk by SQL, and a foreign-key check per inserted row would cost more than the aggregate itself.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

MONEY = {"max_digits": 20, "decimal_places": 2}
LOTS = {"max_digits": 16, "decimal_places": 2}


def _user_ref():
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )


class FillState(models.Model):
    """How far one table's day bucket got. STARTED is committed before the build's transaction begins; DONE is
    written inside it. A STARTED row that stays STARTED is a build whose process died (its data rolled back); the
    next run rebuilds that bucket."""

    class State(models.TextChoices):
        STARTED = "started", "Started"
        DONE = "done", "Done"

    table = models.CharField(max_length=40)
    day = models.DateField()
    state = models.CharField(max_length=8, choices=State.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    complete = models.BooleanField(default=False, help_text="False when some source data was missing for the day.")
    missing = models.JSONField(default=list, blank=True, help_text="What was missing, one sentence per source.")
    runs = models.PositiveIntegerField(default=0, help_text="How many times this bucket was (re)built.")

    class Meta:
        ordering = ["-day", "table"]
        constraints = [models.UniqueConstraint(fields=["table", "day"], name="uniq_fill_state_table_day")]
        indexes = [models.Index(fields=["state", "started_at"])]
        permissions = [
            ("view_dashboard", "Can view the analytics dashboards and export their tables"),
            ("view_exposure", "Can view the live exposure by server and symbol"),
        ]

    def __str__(self) -> str:
        return f"{self.table} {self.day} {self.state}"


class AccountDayEnd(models.Model):
    """The last balance and equity read from MT5 during a trading day, per live account.

    `mt5bridge` keeps only each account's latest snapshot; a capture task copies it here every few minutes, so the
    last capture of a day is the account's state at that day's end (to within the capture interval).
    """

    day = models.DateField()
    account = models.ForeignKey(
        "mt5bridge.TradingAccount", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    balance = models.DecimalField(**MONEY)
    equity = models.DecimalField(**MONEY)
    snapshot_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "account"]
        constraints = [models.UniqueConstraint(fields=["day", "account"], name="uniq_account_day_end")]

    def __str__(self) -> str:
        return f"account {self.account_id} at the end of {self.day}"


class ClientDaily(models.Model):
    """One client's day in one currency: money in and out, trading on live servers, and the day-end position.

    `balance_end` / `equity_end` are NULL when a live account of the client had no snapshot that day: an unknown
    day-end balance is not zero.
    """

    # The key is the primary key: one b-tree to maintain per inserted row (the build inserts one row per client).
    pk = models.CompositePrimaryKey("day", "user", "currency")
    day = models.DateField()
    user = _user_ref()
    currency = models.CharField(max_length=8)
    country = models.CharField(max_length=2, help_text="ISO-2 country of residence; ZZ when the client gave none.")
    deposits_count = models.PositiveIntegerField()
    deposits_amount = models.DecimalField(**MONEY)
    withdrawals_count = models.PositiveIntegerField()
    withdrawals_amount = models.DecimalField(**MONEY)
    net_deposit = models.DecimalField(**MONEY)
    trades = models.PositiveIntegerField(help_text="Buy and sell deals (fills) on live servers.")
    lots = models.DecimalField(**LOTS, help_text="Lots traded, every fill counted (opening and closing).")
    realised_pl = models.DecimalField(**MONEY, help_text="Profit of closed positions, before commission and swap.")
    commission = models.DecimalField(**MONEY)
    swap = models.DecimalField(**MONEY)
    balance_end = models.DecimalField(**MONEY, null=True)
    equity_end = models.DecimalField(**MONEY, null=True)

    class Meta:
        ordering = ["-day", "user_id", "currency"]

    def __str__(self) -> str:
        return f"client {self.user_id} {self.day} {self.currency}"


class BrokerDaily(models.Model):
    """The broker's day in one currency. `broker_pl` is the house's side when every trade is B-booked: minus the
    clients' realised P/L, commission and swap together."""

    day = models.DateField()
    currency = models.CharField(max_length=8)
    deposits_count = models.PositiveIntegerField()
    deposits_amount = models.DecimalField(**MONEY)
    withdrawals_count = models.PositiveIntegerField()
    withdrawals_amount = models.DecimalField(**MONEY)
    net_deposit = models.DecimalField(**MONEY)
    ftd_count = models.PositiveIntegerField(help_text="Clients whose first ever settled deposit was on this day.")
    ftd_amount = models.DecimalField(**MONEY)
    active_traders = models.PositiveIntegerField()
    trades = models.PositiveIntegerField()
    lots = models.DecimalField(**LOTS)
    realised_pl = models.DecimalField(**MONEY)
    commission = models.DecimalField(**MONEY)
    swap = models.DecimalField(**MONEY)
    client_pl = models.DecimalField(**MONEY, help_text="Realised P/L + commission + swap, the clients' side.")
    broker_pl = models.DecimalField(**MONEY, help_text="Minus client_pl (B-book view).")

    class Meta:
        ordering = ["-day", "currency"]
        constraints = [models.UniqueConstraint(fields=["day", "currency"], name="uniq_broker_daily")]

    def __str__(self) -> str:
        return f"broker {self.day} {self.currency}"


class IbDaily(models.Model):
    """One IB's day: its funnel (clicks on its links, clients attributed, clients verified, first deposits) and its
    own clients' money and trading, with the commissions the IB earned that day at every level.

    Money is in USD at the reference rates (settings.PAYMENTS_FX_TO_USD), so one row per IB adds up across
    currencies; "own clients" are the clients attributed to this IB (a sub-IB's clients are on the sub-IB's row, and
    the IB's override on them is in its `commission_usd`).
    """

    day = models.DateField()
    ib_id = models.BigIntegerField(help_text="ib.IntroducingBroker id (analytics keeps no foreign keys to sources).")
    clicks = models.PositiveIntegerField()
    signups = models.PositiveIntegerField(help_text="Clients attributed to the IB this day.")
    verified = models.PositiveIntegerField(help_text="Its clients whose first KYC approval was this day.")
    ftd_count = models.PositiveIntegerField()
    ftd_amount_usd = models.DecimalField(**MONEY)
    net_deposit_usd = models.DecimalField(**MONEY, help_text="Its clients' deposits minus withdrawals.")
    lots = models.DecimalField(**LOTS, help_text="Its clients' lots on live servers.")
    commission_usd = models.DecimalField(**MONEY, help_text="Commissions the IB earned on deals closed this day.")

    class Meta:
        ordering = ["-day", "ib_id"]
        constraints = [models.UniqueConstraint(fields=["day", "ib_id"], name="uniq_ib_daily")]

    def __str__(self) -> str:
        return f"IB {self.ib_id} {self.day}"


class PaymentsDaily(models.Model):
    """Deposits and withdrawals started on a day, by provider, method, currency and the client's country, with
    what became of them. `fees`: what the PSPs charged on the deposits (the broker's cost, `Deposit.fee`)."""

    class Direction(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL = "withdrawal", "Withdrawal"

    day = models.DateField()
    direction = models.CharField(max_length=10, choices=Direction.choices)
    provider = models.CharField(max_length=32)
    method = models.CharField(max_length=16)
    currency = models.CharField(max_length=8)
    country = models.CharField(max_length=2)
    count_total = models.PositiveIntegerField()
    count_succeeded = models.PositiveIntegerField()
    count_failed = models.PositiveIntegerField(help_text="Declined, expired or rejected.")
    count_cancelled = models.PositiveIntegerField(help_text="Withdrawals the client cancelled.")
    count_open = models.PositiveIntegerField(help_text="Still in flight when the bucket was built.")
    amount_total = models.DecimalField(**MONEY)
    amount_succeeded = models.DecimalField(**MONEY)
    fees = models.DecimalField(**MONEY, null=True)

    class Meta:
        ordering = ["-day", "direction", "provider", "method", "currency", "country"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "direction", "provider", "method", "currency", "country"], name="uniq_payments_daily"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.provider} {self.day} {self.currency} {self.country}"

    @property
    def success_rate(self):
        """Succeeded over decided (succeeded + failed); None while nothing was decided. Cancelled ones are the
        client's choice and do not count against the provider."""
        from decimal import Decimal

        decided = self.count_succeeded + self.count_failed
        if not decided:
            return None
        return (Decimal(self.count_succeeded) * 100 / decided).quantize(Decimal("0.1"))
