"""Trade servers, their groups, trading accounts, balance operations and what is imported from MT5."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import NotSupportedError, models
from django.db.models import Func, Q
from django.utils.deconstruct import deconstructible
from django_fsm import FSMField

from core.fsm import logged_transition
from core.models import TimeStampedModel

MONEY = {"max_digits": 18, "decimal_places": 2}
BALANCE_KINDS = [(2, "Balance"), (3, "Credit"), (4, "Charge"), (5, "Correction"), (6, "Bonus")]
DEAL_ACTIONS = [(0, "Buy"), (1, "Sell"), *BALANCE_KINDS, (7, "Commission")]
DEAL_ENTRIES = [(0, "In"), (1, "Out"), (2, "In/out"), (3, "Out by")]
TRADE_ACTIONS = (0, 1)  # buy, sell: the deals of positions (the rest are balance operations)
CLOSING_ENTRIES = (1, 2, 3)  # out, in/out, out by


@deconstructible(path="mt5bridge.models.VendorSQL")
class VendorSQL(Func):
    """A generated column's expression in each database's own SQL, over columns of the same row."""

    def __init__(self, *, postgresql: str, sqlite: str, output_field):
        super().__init__(output_field=output_field)
        self.postgresql, self.sqlite = postgresql, sqlite

    def as_sql(self, compiler, connection, **extra_context):
        sql = {"postgresql": self.postgresql, "sqlite": self.sqlite}.get(connection.vendor)
        if sql is None:
            raise NotSupportedError(f"No generated-column SQL for {connection.vendor}.")
        return f"({sql})", []


def _centi(column: str) -> dict[str, str]:
    """A decimal column with 2 places as an exact integer of hundredths (SQLite: its REAL rounded back)."""
    return {
        "postgresql": f"ROUND({column} * 100)::bigint",
        "sqlite": f"CAST(ROUND({column} * 100) AS INTEGER)",
    }


# What the IB commission engine reads of a closing deal, computed by the database whenever the row is written.
# The round turn's commission: this deal's, plus the opening side's in proportion to the volume it closes (MT5
# charges each side), rounded to the hundredth (half away from zero).
_TURN_COMMISSION = {
    "postgresql": (
        "ROUND((ABS(commission) + COALESCE(CASE WHEN open_volume = volume OR open_volume = 0 "
        "THEN ABS(open_commission) ELSE ROUND(ABS(open_commission) * volume / open_volume, 2) END, 0)) * 100)::bigint"
    ),
    "sqlite": (
        "{c} + COALESCE(CASE WHEN {ov} = {v} OR {ov} = 0 THEN {oc} "
        "ELSE CAST(ROUND({oc} * 1.0 * {v} / {ov}) AS INTEGER) END, 0)"
    ).format(
        c=_centi("ABS(commission)")["sqlite"],
        oc=_centi("ABS(open_commission)")["sqlite"],
        v=_centi("volume")["sqlite"],
        ov=_centi("open_volume")["sqlite"],
    ),
}
# Whole milliseconds since the position's first opening deal (date_part's double is exact at these magnitudes).
_HOLD_MS = {
    "postgresql": "FLOOR(date_part('epoch', \"time\" - open_time) * 1000)::bigint",
    "sqlite": 'CAST(ROUND((julianday("time") - julianday(open_time)) * 86400000) AS INTEGER)',
}


class TradeServer(TimeStampedModel):
    """One MT5 trade server the CRM manages. Secrets are not stored: `password_env` names the variable."""

    class Kind(models.TextChoices):
        LIVE = "live", "Live"
        DEMO = "demo", "Demo"

    name = models.SlugField(max_length=40, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    adapter = models.CharField(max_length=40, default="webapi", help_text="A key of settings.MT5_ADAPTERS.")
    url = models.URLField(help_text="Base URL of the MT5 Web API, e.g. https://mt5.example.com:443")
    manager_login = models.PositiveBigIntegerField()
    password_env = models.CharField(
        max_length=64, help_text="Name of the environment variable holding the manager password."
    )
    is_active = models.BooleanField(default=True)
    # Logins are allocated here, not by MT5, so that a retried "user add" is recognised as the same account.
    next_login = models.PositiveBigIntegerField(default=500000)
    # Health and the circuit breaker, shared by every process through the database.
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    breaker_open_until = models.DateTimeField(null=True, blank=True)
    # Deal import resumes after the last ticket stored.
    deal_cursor_ticket = models.PositiveBigIntegerField(default=0)
    deals_imported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class TradingGroup(models.Model):
    """An MT5 group the CRM may open accounts in, as read from the server (`trade_server_sync_groups`)."""

    class AccountType(models.TextChoices):
        STANDARD = "standard", "Standard"
        PRO = "pro", "Pro"

    server = models.ForeignKey(TradeServer, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=64)
    account_type = models.CharField(max_length=16, choices=AccountType.choices)
    currency = models.CharField(max_length=3)
    leverages = models.JSONField(default=list, help_text="Leverage values the group allows, e.g. [30, 100, 500].")
    margin_stop_out = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("50"))
    commission_per_lot = models.DecimalField(**MONEY, default=Decimal("0"))
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["server", "name"]
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="uniq_group_per_server")]

    def __str__(self) -> str:
        return self.name


class TradingAccount(TimeStampedModel):
    """A client's MT5 account. Opened by a task (`requested -> provisioned | failed`), later `disabled`."""

    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"
        PROVISIONED = "provisioned", "Open"
        FAILED = "failed", "Failed"
        DISABLED = "disabled", "Disabled"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trading_accounts")
    server = models.ForeignKey(TradeServer, on_delete=models.PROTECT, related_name="accounts")
    group = models.ForeignKey(TradingGroup, on_delete=models.PROTECT, related_name="accounts")
    login = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    leverage = models.PositiveIntegerField()
    state = FSMField(default=State.REQUESTED, choices=State.choices, protected=True)
    failure_reason = models.TextField(blank=True)
    # The first trading password, encrypted, until the client has seen it once (then erased).
    pending_password = models.TextField(blank=True)
    # The last snapshot read from MT5, with its time so pages can say how old it is.
    balance = models.DecimalField(**MONEY, null=True, blank=True)
    credit = models.DecimalField(**MONEY, null=True, blank=True)
    equity = models.DecimalField(**MONEY, null=True, blank=True)
    margin = models.DecimalField(**MONEY, null=True, blank=True)
    free_margin = models.DecimalField(**MONEY, null=True, blank=True)
    margin_level = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    snapshot_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["server", "login"], name="uniq_login_per_server")]
        indexes = [models.Index(fields=["server", "state"])]

    def __str__(self) -> str:
        return f"{self.login} on {self.server.name}"

    @property
    def is_demo(self) -> bool:
        return self.server.kind == TradeServer.Kind.DEMO

    @logged_transition(field=state, source=State.REQUESTED, target=State.PROVISIONED)
    def provision(self, by=None, description=None) -> None:
        """MT5 created the user."""

    @logged_transition(field=state, source=State.REQUESTED, target=State.FAILED)
    def fail(self, by=None, description=None) -> None:
        """MT5 refused the user for good."""

    @logged_transition(field=state, source=[State.PROVISIONED, State.FAILED], target=State.DISABLED)
    def disable(self, by=None, description=None) -> None:
        """Staff closed the account in the CRM."""


class BalanceOperation(TimeStampedModel):
    """One dealer balance operation on MT5, sent exactly once.

    The idempotency key says who asked (a deposit, a withdrawal, a demo top-up); the short `reference` rides in
    the MT5 deal comment, so after a lost reply the deal can be found again instead of being sent twice.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        UNKNOWN = "unknown", "Unknown (reply lost)"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"

    idempotency_key = models.CharField(max_length=120, unique=True)
    reference = models.CharField(max_length=16, unique=True)
    server = models.ForeignKey(TradeServer, on_delete=models.PROTECT, related_name="balance_operations")
    account = models.ForeignKey(TradingAccount, on_delete=models.PROTECT, related_name="balance_operations")
    kind = models.PositiveSmallIntegerField(
        help_text="MT5 deal action: 2 balance, 3 credit, 4 charge, 5 correction, 6 bonus."
    )
    amount = models.DecimalField(**MONEY, help_text="Positive deposits, negative withdraws.")
    comment = models.CharField(max_length=31)
    state = FSMField(default=State.PENDING, choices=State.choices, protected=True)
    ticket = models.PositiveBigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["server", "ticket"], condition=Q(ticket__isnull=False), name="uniq_balance_op_ticket"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="balance_op_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(state="confirmed", ticket__isnull=False) | ~Q(state="confirmed"),
                name="confirmed_balance_op_has_ticket",
            ),
        ]
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount:+} on {self.account.login}"

    @logged_transition(field=state, source=State.PENDING, target=State.SENT)
    def mark_sent(self, by=None, description=None) -> None:
        """A worker claimed the operation and is about to call MT5."""

    @logged_transition(field=state, source=[State.SENT, State.UNKNOWN], target=State.CONFIRMED)
    def confirm(self, by=None, description=None) -> None:
        """MT5 answered with a ticket, or the deal was found by its comment."""

    @logged_transition(field=state, source=[State.SENT, State.UNKNOWN, State.PENDING], target=State.FAILED)
    def fail(self, by=None, description=None) -> None:
        """MT5 refused for good, or the operation was proven not applied and gave up."""

    @logged_transition(field=state, source=State.SENT, target=State.UNKNOWN)
    def mark_unknown(self, by=None, description=None) -> None:
        """The reply never came: the deal may exist."""

    @logged_transition(field=state, source=[State.UNKNOWN, State.SENT], target=State.PENDING)
    def requeue(self, by=None, description=None) -> None:
        """Proven not applied (no deal carries the comment, or the request never left): safe to send again."""


class Deal(models.Model):
    """An MT5 deal imported from a trade server. Import is idempotent on (server, ticket)."""

    # No index of its own: (server, ticket) and (server, position, entry) lead with it. A third, on the server alone,
    # cost every insert and tempted the planner away from the position index while the table's statistics lagged.
    server = models.ForeignKey(TradeServer, on_delete=models.PROTECT, db_index=False, related_name="deals")
    ticket = models.PositiveBigIntegerField()
    login = models.PositiveBigIntegerField()
    account = models.ForeignKey(TradingAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals")
    time = models.DateTimeField()
    symbol = models.CharField(max_length=32, blank=True)
    action = models.PositiveSmallIntegerField(choices=DEAL_ACTIONS)
    entry = models.PositiveSmallIntegerField(choices=DEAL_ENTRIES)
    volume = models.DecimalField(max_digits=14, decimal_places=2, help_text="Lots.")
    price = models.DecimalField(max_digits=18, decimal_places=5)
    profit = models.DecimalField(**MONEY)
    commission = models.DecimalField(**MONEY)
    swap = models.DecimalField(**MONEY)
    comment = models.CharField(max_length=64, blank=True)
    position_id = models.PositiveBigIntegerField(default=0)
    contract_size = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0"))
    imported_at = models.DateTimeField(auto_now_add=True)
    # A closing trade deal's position as opened, fixed when the deal is stored (`deals_store`): the position's
    # opening trade deals with a lower ticket, their first ticket and time, volume and commission summed. NULL when
    # no opening deal was known (or for other deals). Hold times and round-turn commissions are read from here.
    open_ticket = models.PositiveBigIntegerField(null=True, blank=True)
    open_time = models.DateTimeField(null=True, blank=True)
    open_volume = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    open_commission = models.DecimalField(**MONEY, null=True, blank=True)
    # Generated by the database from the columns above, so every way a row is written agrees.
    lots_centi = models.GeneratedField(
        expression=VendorSQL(**_centi("volume"), output_field=models.BigIntegerField()),
        output_field=models.BigIntegerField(),
        db_persist=True,
        help_text="Volume in hundredths of a lot.",
    )
    turn_commission_centi = models.GeneratedField(
        expression=VendorSQL(**_TURN_COMMISSION, output_field=models.BigIntegerField()),
        output_field=models.BigIntegerField(),
        db_persist=True,
        help_text="Closing deal: the commission on the round turn it completes, in hundredths of the currency.",
    )
    hold_ms = models.GeneratedField(
        expression=VendorSQL(**_HOLD_MS, output_field=models.BigIntegerField()),
        output_field=models.BigIntegerField(null=True),
        db_persist=True,
        help_text="Closing deal: milliseconds since its position's first opening deal (NULL when unknown).",
    )

    class Meta:
        ordering = ["server", "ticket"]
        constraints = [models.UniqueConstraint(fields=["server", "ticket"], name="uniq_deal_per_server")]
        indexes = [
            models.Index(fields=["login", "time"]),
            models.Index(fields=["time"]),
            # A position's deals (its opening deal: hold times for IB commissions, trade history).
            models.Index(fields=["server", "position_id", "entry"], name="deal_position_entry"),
        ]

    def __str__(self) -> str:
        return f"deal {self.ticket} on {self.server_id}"


class PositionSnapshot(models.Model):
    """An open position as last seen on MT5. Rows of positions that closed are removed by the next sync."""

    server = models.ForeignKey(TradeServer, on_delete=models.CASCADE, related_name="positions")
    position_id = models.PositiveBigIntegerField()
    login = models.PositiveBigIntegerField()
    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, null=True, related_name="positions")
    symbol = models.CharField(max_length=32)
    action = models.PositiveSmallIntegerField(choices=DEAL_ACTIONS[:2])
    volume = models.DecimalField(max_digits=14, decimal_places=2)
    price_open = models.DecimalField(max_digits=18, decimal_places=5)
    price_current = models.DecimalField(max_digits=18, decimal_places=5)
    profit = models.DecimalField(**MONEY)
    swap = models.DecimalField(**MONEY)
    opened_at = models.DateTimeField()
    snapshot_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "position_id"], name="uniq_position_per_server")]
        indexes = [models.Index(fields=["server", "symbol"])]

    def __str__(self) -> str:
        return f"position {self.position_id} on {self.server_id}"
