"""The IB program's data: introducing brokers and their hierarchy, referral links and clicks, plans, commissions.

Hierarchy: an adjacency list (`IntroducingBroker.parent`) read with recursive CTEs (`ib.selectors`), never a Python
loop per level. Commissions are written by the engine (`ib.services.engine`) in set-based SQL, one `Commission` per
(batch, IB, level, sub-IB, symbol, broker day, status): the rule and the rates it applied, the lots and deals it
covers and what they earned. The statement's per-deal lines are derived from those rows and the immutable deals
(`ib.selectors.commission_lines`), by the same SQL expressions the engine summed, so every line adds up to the
cent; `ClientReferral.after_deal_id` and `ReferralSpan` make "whose client was this deal" a fixed fact.
Amounts are stored in integer minor units of their currency (`amount_minor`), so SQLite stays exact too.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField

from core.fsm import logged_transition
from core.models import TimeStampedModel
from core.money import currency_exponent

code_validator = RegexValidator(
    r"^[A-Za-z0-9_-]{3,32}$", "A referral code has 3 to 32 letters, digits, dashes or underscores."
)
RATE = {"max_digits": 14, "decimal_places": 4}
LOTS = {"max_digits": 14, "decimal_places": 2}
# Deal-based kinds and CPA: see CommissionRule.Kind. Adjustments are staff corrections.
PLAN_CURRENCIES = [("USD", "USD"), ("EUR", "EUR")]


class SymbolGroup(models.Model):
    """FX majors, minors, metals, indices, crypto: what a plan's rules are written against."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    spread_markup_per_lot = models.DecimalField(
        **RATE,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="The broker's markup earned per standard lot, in the markup currency (what a spread share shares).",
    )
    markup_currency = models.CharField(max_length=8, choices=PLAN_CURRENCIES, default="USD")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SymbolGroupMember(models.Model):
    symbol = models.CharField(max_length=32, unique=True, help_text="As MT5 names it, e.g. EURUSD, XAUUSD, US30.")
    group = models.ForeignKey(SymbolGroup, on_delete=models.CASCADE, related_name="members")

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.group.code})"


class CommissionPlan(TimeStampedModel):
    """What an IB earns. Rules per symbol group and level; overrides by level rates or the difference model."""

    class OverrideModel(models.TextChoices):
        LEVEL_RATES = "level_rates", "Level rates (each upline level earns its own configured rate)"
        DIFFERENCE = "difference", "Difference (an upline earns its rate minus the best rate below it)"

    name = models.CharField(max_length=80, unique=True)
    currency = models.CharField(max_length=8, choices=PLAN_CURRENCIES, default="USD")
    override_model = models.CharField(max_length=16, choices=OverrideModel.choices, default=OverrideModel.DIFFERENCE)
    min_hold_seconds = models.PositiveIntegerField(
        default=0, help_text="Positions held for less than this earn nothing (anti-scalping). 0 turns it off."
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            currency_exponent(self.currency)
        except ValueError as exc:
            raise ValidationError({"currency": str(exc)}) from None


class CommissionRule(models.Model):
    """One rate of a plan: for a symbol group (or CPA), at a level, from a monthly volume tier.

    Level 0 is what the IB earns on its own clients. With the level-rates model, level N is what the IB earns on
    clients N levels below it; the difference model uses level 0 only. Tiers: the rule with the highest
    `min_monthly_lots` not above the IB's downline volume of the previous calendar month applies.
    Rates: per standard lot for a rebate, a fraction (0.4 = 40 %) for spread and commission shares, an amount
    per qualified first deposit for CPA.
    """

    class Kind(models.TextChoices):
        REBATE_PER_LOT = "rebate_per_lot", "Rebate per standard lot"
        SPREAD_SHARE = "spread_share", "Share of the spread markup"
        COMMISSION_SHARE = "commission_share", "Share of the broker's commission"
        CPA = "cpa", "CPA per qualified first deposit"

    plan = models.ForeignKey(CommissionPlan, on_delete=models.CASCADE, related_name="rules")
    symbol_group = models.ForeignKey(
        SymbolGroup, on_delete=models.PROTECT, null=True, blank=True, related_name="rules", help_text="Empty for CPA."
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    level = models.PositiveSmallIntegerField(default=0, help_text="0: own clients; N: clients N levels below.")
    rate = models.DecimalField(**RATE, validators=[MinValueValidator(Decimal("0"))])
    min_monthly_lots = models.DecimalField(
        **LOTS, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))], help_text="Volume tier threshold."
    )
    cpa_min_deposit = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal("0"))
    cpa_min_lots = models.DecimalField(**LOTS, default=Decimal("0"))
    cpa_within_days = models.PositiveIntegerField(default=30)

    class Meta:
        ordering = ["plan", "kind", "symbol_group", "level", "min_monthly_lots"]
        constraints = [
            # Two rules that would apply to the same deal at the same level and tier: ambiguous, refused.
            models.UniqueConstraint(
                fields=["plan", "symbol_group", "level", "min_monthly_lots"],
                condition=Q(symbol_group__isnull=False),
                name="ib_rule_no_overlap",
            ),
            models.UniqueConstraint(fields=["plan", "level"], condition=Q(kind="cpa"), name="ib_rule_one_cpa"),
            models.CheckConstraint(
                condition=Q(kind="cpa", symbol_group__isnull=True) | (~Q(kind="cpa") & Q(symbol_group__isnull=False)),
                name="ib_rule_group_unless_cpa",
            ),
            models.CheckConstraint(condition=Q(rate__gte=0), name="ib_rule_rate_not_negative"),
        ]

    def __str__(self) -> str:
        where = self.symbol_group.code if self.symbol_group_id else "first deposit"
        tier = f", from {self.min_monthly_lots} lots/month" if self.min_monthly_lots else ""
        return f"{self.get_kind_display()} {self.rate} on {where}, level {self.level}{tier}"

    def clean(self) -> None:
        from ib.services.plans import rule_problems

        problems = rule_problems(rule=self)
        if problems:
            raise ValidationError(problems)


class IntroducingBroker(TimeStampedModel):
    """A client who introduces other clients. `applied -> approved | rejected`; `approved <-> suspended`.

    Suspended IBs keep accruing (their clients still trade and the statement stays complete) but nothing is
    released to their wallet until they are reinstated.
    """

    class State(models.TextChoices):
        APPLIED = "applied", "Applied"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"

    class PayoutSchedule(models.TextChoices):
        DAILY = "daily", "Daily"
        MONTHLY = "monthly", "Monthly"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="introducing_broker")
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children", verbose_name="upline IB"
    )
    referral_code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    state = FSMField(default=State.APPLIED, choices=State.choices, protected=True)
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="ibs")
    payout_schedule = models.CharField(max_length=8, choices=PayoutSchedule.choices, default=PayoutSchedule.MONTHLY)
    review_window_days = models.PositiveSmallIntegerField(
        default=0, help_text="Accrued commissions wait this many days before release (0: none)."
    )
    mask_client_emails = models.BooleanField(default=True, help_text="Show the IB its clients' emails masked.")
    application_note = models.TextField(blank=True, help_text="How the applicant plans to introduce clients.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["referral_code"]
        verbose_name = "introducing broker"
        permissions = [("approve_introducingbroker", "Can approve, reject, suspend and reinstate IBs")]
        constraints = [models.CheckConstraint(condition=~Q(parent=models.F("id")), name="ib_not_own_parent")]

    def __str__(self) -> str:
        return f"{self.referral_code} ({self.user.email})"

    def clean(self) -> None:
        if self.parent_id is None:
            return
        if self.pk and self.parent_id == self.pk:
            raise ValidationError({"parent": "An IB cannot be its own upline."})
        if self.pk:
            from ib.selectors import ib_ancestor_ids

            if self.pk in ib_ancestor_ids(ib_id=self.parent_id):
                raise ValidationError({"parent": "That would make the IB its own upline (a cycle in the hierarchy)."})

    @property
    def is_active(self) -> bool:
        return self.state == self.State.APPROVED

    @logged_transition(field=state, source=State.APPLIED, target=State.APPROVED)
    def approve(self, by=None, description=None) -> None:
        """An IB Manager accepted the application."""

    @logged_transition(field=state, source=State.APPLIED, target=State.REJECTED)
    def reject(self, by=None, description=None) -> None:
        """An IB Manager turned the application down."""

    @logged_transition(field=state, source=State.APPROVED, target=State.SUSPENDED)
    def suspend(self, by=None, description=None) -> None:
        """Payouts stop and new clients are refused; accruals continue."""

    @logged_transition(field=state, source=State.SUSPENDED, target=State.APPROVED)
    def reinstate(self, by=None, description=None) -> None:
        """Back to normal."""


class ReferralLink(TimeStampedModel):
    """A shareable link `/r/<code>/` with a campaign tag. Every IB has a default link whose code is its own."""

    ib = models.ForeignKey(IntroducingBroker, on_delete=models.CASCADE, related_name="links")
    code = models.SlugField(max_length=40, unique=True)
    campaign = models.CharField(max_length=64, blank=True, help_text="A tag to tell campaigns apart.")
    landing_path = models.CharField(max_length=200, default="/accounts/signup/")

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.code


class ReferralClick(models.Model):
    """One visit through a referral link. The IP is never stored: only a salted hash of it."""

    link = models.ForeignKey(ReferralLink, on_delete=models.CASCADE, related_name="clicks")
    ip_hash = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=300, blank=True)
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True)
    utm_term = models.CharField(max_length=100, blank=True)
    utm_content = models.CharField(max_length=100, blank=True)
    landing_page = models.CharField(max_length=300, blank=True)
    referer = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"click on {self.link_id} at {self.created_at:%Y-%m-%d %H:%M}"


class ClientReferral(TimeStampedModel):
    """One IB per client. Reassignments by staff keep the reason in `AttributionEvent`.

    The referral earns on the client's deals imported after it was made: deal ids above `after_deal_id` (the
    highest deal id when it was created; on reassignment the previous IB keeps the deals up to then as a
    `ReferralSpan`). Deal ids only grow, so which IB a deal belongs to never changes once it is imported."""

    class Source(models.TextChoices):
        SIGNUP_CODE = "signup_code", "Signup code"
        COOKIE = "cookie", "Referral link"
        STAFF = "staff", "Staff"

    client = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ib_referral")
    ib = models.ForeignKey(IntroducingBroker, on_delete=models.PROTECT, related_name="client_referrals")
    source = models.CharField(max_length=16, choices=Source.choices)
    link = models.ForeignKey(ReferralLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    click = models.ForeignKey(ReferralClick, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    attributed_at = models.DateTimeField()
    reassigned_reason = models.CharField(max_length=255, blank=True)
    after_deal_id = models.BigIntegerField(
        null=True, blank=True, help_text="Earns on the client's deals with a higher id (set when created)."
    )

    class Meta:
        ordering = ["-attributed_at"]
        indexes = [models.Index(fields=["ib", "attributed_at"])]

    def __str__(self) -> str:
        return f"{self.client} -> {self.ib.referral_code}"

    def save(self, *args, **kwargs) -> None:
        if self.after_deal_id is None:
            self.after_deal_id = last_deal_id()
        super().save(*args, **kwargs)


def last_deal_id() -> int:
    """The highest deal id imported so far: a referral made now earns on deals imported after it."""
    from mt5bridge.models import Deal

    return Deal.objects.order_by("-id").values_list("id", flat=True).first() or 0


class ReferralSpan(models.Model):
    """A past attribution: the client's deals with ids in (after_deal_id, until_deal_id] belong to `ib`.
    Written when staff reassign a client; never updated."""

    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ib = models.ForeignKey(IntroducingBroker, on_delete=models.PROTECT, related_name="+")
    after_deal_id = models.BigIntegerField()
    until_deal_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["client_id", "after_deal_id"]
        indexes = [models.Index(fields=["ib"], name="ib_span_ib")]

    def __str__(self) -> str:
        return f"{self.client_id} -> {self.ib_id} for deals ({self.after_deal_id}, {self.until_deal_id}]"


class AttributionEvent(models.Model):
    """The log of who was attributed to whom, when, how and why (never updated)."""

    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_ib = models.ForeignKey(IntroducingBroker, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_ib = models.ForeignKey(IntroducingBroker, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=16, choices=ClientReferral.Source.choices)
    reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.client} -> {self.to_ib_id} ({self.source})"


class AttributionConflict(TimeStampedModel):
    """A competing claim on a client (a cookie for another IB, an unknown code), flagged for staff."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        KEPT = "kept", "Resolved: kept the current IB"
        REASSIGNED = "reassigned", "Resolved: given to the claimant"

    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    current_ib = models.ForeignKey(IntroducingBroker, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    claimant_ib = models.ForeignKey(
        IntroducingBroker, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=255)
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolution_note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "claimant_ib", "reason"], condition=Q(state="open"), name="ib_one_open_conflict"
            )
        ]

    def __str__(self) -> str:
        return f"{self.client}: {self.reason}"


class MonthlyVolume(models.Model):
    """An IB's downline volume in one closed calendar month (centi-lots), recorded once: the tier it selects."""

    ib = models.ForeignKey(IntroducingBroker, on_delete=models.CASCADE, related_name="+")
    month = models.CharField(max_length=7, help_text="YYYY-MM")
    centilots = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ib", "month"], name="ib_monthly_volume_once")]

    def __str__(self) -> str:
        return f"IB {self.ib_id} {self.month}: {self.centilots / 100} lots"


class VolumeMonth(models.Model):
    """Marks a month whose `MonthlyVolume` rows were computed."""

    month = models.CharField(max_length=7, unique=True)
    computed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.month


class EngineCursor(models.Model):
    """The engine's progress: deals up to `last_deal_id` were processed. One row, locked by each batch."""

    name = models.CharField(max_length=32, unique=True)
    last_deal_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at deal {self.last_deal_id}"


class CommissionRun(models.Model):
    """One engine run (after an import, nightly, or by hand): where it started, how far it got, what it made."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    trigger = models.CharField(max_length=32)
    state = models.CharField(max_length=8, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    from_deal_id = models.BigIntegerField(default=0)
    last_deal_id = models.BigIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    rows_created = models.BigIntegerField(default=0)
    cpa_rows_created = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.trigger}, {self.state})"


class CommissionBatch(models.Model):
    """Deals with ids in (lo, hi] were computed once, together: their commissions are the rows of this batch.
    Batches never overlap (the engine computes only ranges no batch covers), which is what makes a deal earn
    once per (IB, level) however often the engine runs."""

    lo = models.BigIntegerField(unique=True)
    hi = models.BigIntegerField()
    run = models.ForeignKey(CommissionRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    deals = models.PositiveIntegerField(default=0, help_text="Closing deals of attributed clients in the range.")
    lines = models.BigIntegerField(default=0, help_text="Commission lines: (deal, IB, level).")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-lo"]
        verbose_name_plural = "commission batches"
        constraints = [models.CheckConstraint(condition=Q(hi__gt=models.F("lo")), name="ib_batch_not_empty")]

    def __str__(self) -> str:
        return f"deals {self.lo + 1}-{self.hi}"


class CommissionPayout(TimeStampedModel):
    """Accrued commissions released to the IB's wallet: IB payable -> wallet, one ledger transaction."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RELEASED = "released", "Released"

    ib = models.ForeignKey(IntroducingBroker, on_delete=models.PROTECT, related_name="payouts")
    currency = models.CharField(max_length=8)
    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.DecimalField(max_digits=20, decimal_places=8, default=Decimal("0"))
    rows = models.PositiveIntegerField(default=0)
    ledger_key = models.CharField(max_length=160, blank=True)
    state = FSMField(default=State.PENDING, choices=State.choices, protected=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"payout {self.pk} {self.amount} {self.currency} to {self.ib_id}"

    @logged_transition(field=state, source=State.PENDING, target=State.RELEASED)
    def release(self, by=None, description=None) -> None:
        """The ledger moved the money from IB payable to the IB's wallet."""


class Commission(models.Model):
    """What one IB earned at one level: from a batch's deals of one sub-IB's clients in one symbol on one broker
    day (with the rule and rates applied, the lots and the number of deals), or from a qualified first deposit
    (CPA), or a staff adjustment.

    The engine writes these rows in one INSERT ... SELECT ... GROUP BY per batch; a row of kind rebate, spread
    share or commission share is the exact sum of its per-deal lines, rounded to the cent line by line, which
    `ib.selectors.commission_lines` derives again for the statement. The foreign keys carry no database
    constraint: PostgreSQL queues a check per inserted row for each one, even where the value is NULL, which would
    cost the engine's bulk insert a fifth of its time. The engine joins every row it references in the same
    statement; payouts and adjustments set theirs from rows they hold in the same transaction; and none of these
    rows is ever deleted (PROTECT in the models). The batch is found through a BRIN index (migration 0008): a
    batch's rows are written together, so they lie together.
    """

    class Kind(models.TextChoices):
        REBATE_PER_LOT = "rebate_per_lot", "Rebate per lot"
        SPREAD_SHARE = "spread_share", "Spread share"
        COMMISSION_SHARE = "commission_share", "Commission share"
        CPA = "cpa", "CPA"
        ADJUSTMENT = "adjustment", "Adjustment"

    class Status(models.TextChoices):
        EARNED = "earned", "Earned"
        SHORT_HOLD = "short_hold", "Held below the minimum time"
        CURRENCY = "currency", "Account currency differs from the plan's"

    batch = models.ForeignKey(
        CommissionBatch,
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,  # a BRIN index on PostgreSQL instead (migration 0008)
        null=True,
        blank=True,
        related_name="rows",
    )
    ib = models.ForeignKey(
        IntroducingBroker, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    level = models.PositiveSmallIntegerField(help_text="0: the IB's own client; N: a client N levels below.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.EARNED)
    direct_ib = models.ForeignKey(
        IntroducingBroker,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        related_name="+",
        help_text="The IB the clients belong to (the sub-IB an override comes through).",
    )
    client = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        related_name="+",
        help_text="CPA: the client whose deposit qualified.",
    )
    deal_time = models.DateTimeField(help_text="The first deal's time (CPA: when qualified; adjustment: made).")
    last_deal_time = models.DateTimeField(null=True, blank=True, help_text="The last deal's time.")
    day = models.DateField(null=True, blank=True, help_text="The broker's trading day of the deals.")
    tier_month = models.CharField(max_length=7, blank=True, help_text="The month whose volume tier applied.")
    symbol = models.CharField(max_length=32, blank=True)
    deals = models.PositiveIntegerField(default=0, help_text="Deals summed in this row.")
    lots = models.DecimalField(**LOTS, default=Decimal("0"))
    min_hold_seconds = models.PositiveIntegerField(default=0)
    rule = models.ForeignKey(
        CommissionRule, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, null=True, related_name="+"
    )
    rule_rate = models.DecimalField(**RATE, null=True, blank=True, help_text="The IB's rate in its plan.")
    best_below = models.DecimalField(**RATE, null=True, blank=True, help_text="Difference model: best rate below.")
    rate = models.DecimalField(**RATE, null=True, blank=True, help_text="The rate actually applied.")
    base = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Spread share: markup per lot; commission share: commissions summed; CPA: the deposit.",
    )
    amount_minor = models.BigIntegerField(help_text="In minor units of the currency (cents for USD).")
    currency = models.CharField(max_length=8)
    note = models.CharField(max_length=255, blank=True, help_text="Adjustments: the reason.")
    # Set on staff adjustments only: indexed where set (a partial index, see Meta), not on every engine row.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        db_constraint=False,
        null=True,
        blank=True,
        db_index=False,
        related_name="+",
    )
    # No index of its own: payouts are always read per IB, through the (ib, deal_time) index.
    payout = models.ForeignKey(
        CommissionPayout,
        on_delete=models.PROTECT,
        db_constraint=False,
        null=True,
        blank=True,
        db_index=False,
        related_name="items",
    )
    created_at = models.DateTimeField(default=timezone.now, help_text="When it was accrued.")

    class Meta:
        ordering = ["-deal_time", "-id"]
        # Once per deal, IB and level is the batches' guarantee (they never overlap: on PostgreSQL an exclusion
        # constraint, see migration 0006) and the GROUP BY's within a batch; a unique index over these rows' eight
        # grouping columns would cost more to maintain than the rest of the insert.
        constraints = [
            models.UniqueConstraint(
                fields=["client", "ib", "level"], condition=Q(kind="cpa"), name="ib_commission_cpa_once"
            ),
        ]
        indexes = [
            models.Index(fields=["ib", "deal_time"], name="ib_commission_ib_time"),
            models.Index(fields=["batch"], name="ib_commission_batch"),  # BRIN on PostgreSQL (migration 0008)
            models.Index(fields=["created_by"], name="ib_commission_created_by", condition=Q(created_by__isnull=False)),
        ]
        permissions = [("adjust_commission", "Can adjust IB commissions with a reason")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency} to IB {self.ib_id}"

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_minor or 0).scaleb(-currency_exponent(self.currency or "USD"))


class CommissionAdjustment(Commission):
    """Staff corrections of commissions (a proxy: they are `Commission` rows of kind `adjustment`)."""

    class Meta:
        proxy = True
        verbose_name = "commission adjustment"
