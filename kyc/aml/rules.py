"""AML monitoring rules: pure functions of a `FactWindow`, tuned by thresholds that are plain data.

Conventions every rule shares:

- Only settled movements count, except that `NewWithdrawalMethod` also judges withdrawals still in flight (so the
  alert can stop the payout) while only settled deposits make an instrument known.
- A money threshold is an amount and a currency (`{"amount": "10000", "currency": "USD"}`). Movements in another
  currency are converted through the window's `fx_to_usd` at full precision before comparing; a movement whose
  currency has no rate makes the rule raise rather than quietly leave that money out (the engine logs it and runs
  the other rules).
- Days are UTC calendar days.
- Scope: with `window.event` set (payments, as it happens) a rule reports only the hits the event takes part in
  (its reference is among the hit's `references`); with no event (the nightly run) it reports every hit in the
  window. A hit's `dedup_key` is the same either way, so the alert layer turns both into ONE alert.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal, cast

from core.money import CurrencyError, Money, currency_exponent, quantize

from .facts import FactWindow, MoneyMovement, utc_day

Severity = Literal["low", "medium", "high"]
SEVERITY_RANK: Mapping[str, int] = {"low": 0, "medium": 1, "high": 2}

# What a threshold may hold once parsed. The type of each default decides what a configured value must be.
ThresholdValue = Decimal | int | str | tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleHit:
    """One finding for a compliance officer.

    `summary` is a sentence with the numbers in it; `evidence` holds plain JSON-able values (amounts as strings,
    dates as ISO text); `references` names the movements the hit rests on; `dedup_key` is stable across the event
    run and the nightly run, so the same finding becomes one alert.
    """

    code: str
    client_id: int
    severity: Severity
    score: int
    summary: str
    evidence: dict[str, Any]
    references: tuple[str, ...]
    dedup_key: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"Rule hit {self.dedup_key}: unknown severity {self.severity!r}.")
        if not 0 <= self.score <= 100:
            raise ValueError(f"Rule hit {self.dedup_key}: score must be within 0-100, got {self.score}.")


class Rule(ABC):
    """A monitoring rule. Subclasses set the class attributes and implement `scan`.

    `thresholds` given at construction are merged over `default_thresholds`. A key the rule does not know, or a
    value of the wrong type or range, raises ValueError naming the rule and the key: a typo in the configuration
    must fail the deploy, not switch a rule to its defaults unnoticed. Decimal thresholds accept a string, an int or
    a Decimal, never a float; int thresholds accept only an int; lists of codes accept a list or tuple of strings.
    """

    code: ClassVar[str]
    title: ClassVar[str]
    severity: ClassVar[Severity]
    score: ClassVar[int]
    default_thresholds: ClassVar[Mapping[str, ThresholdValue]]

    def __init__(self, thresholds: Mapping[str, object] | None = None) -> None:
        given = {} if thresholds is None else thresholds
        if not isinstance(given, Mapping):
            raise ValueError(f"AML rule {self.code!r}: thresholds must be a mapping, got {given!r}.")
        for key in given:
            if key not in self.default_thresholds:
                known = ", ".join(sorted(self.default_thresholds)) or "none"
                raise ValueError(f"AML rule {self.code!r}: unknown threshold {key!r} (known: {known}).")
        self.thresholds: dict[str, ThresholdValue] = {
            key: self._parse(key, given.get(key, default)) for key, default in self.default_thresholds.items()
        }

    def evaluate(self, window: FactWindow) -> list[RuleHit]:
        """The hits in `window`; with an event, only those the event takes part in (see the module docstring)."""
        hits = self.scan(window)
        if window.event is None:
            return hits
        reference = window.event.reference
        return [hit for hit in hits if reference in hit.references]

    @abstractmethod
    def scan(self, window: FactWindow) -> list[RuleHit]:
        """Every hit in the whole window, whether or not an event triggered the run."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.thresholds!r})"

    # Helpers for subclasses.

    def _parse(self, key: str, value: object) -> ThresholdValue:
        default = self.default_thresholds[key]
        if isinstance(default, Decimal):
            # bool is an int; a float would carry binary rounding into a money threshold.
            if isinstance(value, Decimal | int | str) and not isinstance(value, bool):
                try:
                    number = Decimal(value)
                except InvalidOperation:
                    pass
                else:
                    if number.is_finite():
                        return number
            raise self._invalid(key, f"must be a decimal number (a string, int or Decimal), got {value!r}")
        if isinstance(default, int):
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise self._invalid(key, f"must be an int, got {value!r}")
        if isinstance(default, str):
            if isinstance(value, str):
                return value
            raise self._invalid(key, f"must be a string, got {value!r}")
        # The remaining kind of default is a tuple of codes.
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise self._invalid(key, f"must be a list of strings, got {value!r}")

    def _invalid(self, key: str, problem: str) -> ValueError:
        return ValueError(f"AML rule {self.code!r}, threshold {key!r}: {problem}.")

    def _require(self, condition: bool, key: str, problem: str) -> None:
        if not condition:
            raise self._invalid(key, f"{problem}, got {self.thresholds[key]!r}")

    def _decimal(self, key: str) -> Decimal:
        return cast(Decimal, self.thresholds[key])

    def _int(self, key: str) -> int:
        return cast(int, self.thresholds[key])

    def _currency(self, key: str = "currency") -> str:
        currency = cast(str, self.thresholds[key])
        try:
            currency_exponent(currency)
        except CurrencyError as error:
            raise self._invalid(key, str(error).rstrip(".")) from None
        return currency

    def _money(self, amount_key: str, currency_key: str = "currency") -> Money:
        money = Money(self._decimal(amount_key), self._currency(currency_key))
        # Checked after rounding to the minor unit: "0.001" USD would otherwise become a threshold of zero.
        self._require(money.amount > 0, amount_key, "must be positive in the currency's minor unit")
        return money

    def _hit(
        self,
        window: FactWindow,
        *,
        key: str,
        references: Sequence[str],
        summary: str,
        evidence: dict[str, Any],
    ) -> RuleHit:
        client_id = window.client.client_id
        return RuleHit(
            code=self.code,
            client_id=client_id,
            severity=self.severity,
            score=self.score,
            summary=summary,
            evidence=evidence,
            references=tuple(references),
            dedup_key=f"{self.code}:{client_id}:{key}",
        )


def _shown(amount: Decimal, currency: str) -> str:
    """'15,000.00 USD': rounded to the currency's minor unit, for sentences."""
    return str(Money(amount, currency))


def _shown_converted(movement: MoneyMovement, converted: Decimal, currency: str) -> str:
    """'9,500.00 EUR (10,260.00 USD)', or just '15,000.00 USD' when nothing was converted."""
    own = _shown(movement.amount, movement.currency)
    return own if movement.currency == currency else f"{own} ({_shown(converted, currency)})"


def _count(number: int, noun: str) -> str:
    """'1 deposit', '3 deposits'."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _utc_text(moment: datetime) -> str:
    """'2025-03-10 08:00 UTC': a moment as a compliance officer reads it."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _plain(amount: Decimal, currency: str) -> str:
    """'15000.00': an amount for evidence, exact to the minor unit and free of thousands separators."""
    return str(quantize(amount, currency))


class LargeDeposit(Rule):
    """A single settled deposit of at least `amount` (`>=`: exactly the threshold fires; one minor unit less does not).

    Defaults: 10,000 USD. One hit per deposit, keyed by its reference.
    """

    code = "large_deposit"
    title = "Large single deposit"
    severity = "medium"
    score = 60
    default_thresholds = {"amount": Decimal("10000"), "currency": "USD"}

    def __init__(self, thresholds: Mapping[str, object] | None = None) -> None:
        super().__init__(thresholds)
        self.limit = self._money("amount")

    def scan(self, window: FactWindow) -> list[RuleHit]:
        hits = []
        for deposit in window.settled("deposit"):
            value = window.convert(deposit.amount, deposit.currency, self.limit.currency)
            if value < self.limit.amount:
                continue
            verb = "reaches" if value == self.limit.amount else "exceeds"
            hits.append(
                self._hit(
                    window,
                    key=deposit.reference,
                    references=[deposit.reference],
                    summary=(
                        f"Deposit of {_shown_converted(deposit, value, self.limit.currency)} {verb} "
                        f"the {self.limit} single-deposit threshold."
                    ),
                    evidence={
                        "reference": deposit.reference,
                        "at": deposit.at.isoformat(),
                        "amount": _plain(deposit.amount, deposit.currency),
                        "currency": deposit.currency,
                        "amount_in_threshold_currency": _plain(value, self.limit.currency),
                        "threshold": _plain(self.limit.amount, self.limit.currency),
                        "threshold_currency": self.limit.currency,
                    },
                )
            )
        return hits


class DepositThenWithdrawal(Rule):
    """Money deposited and withdrawn again without being traded ("in and out").

    For each settled withdrawal W, the deposits considered are the settled ones from `days` before W up to W, both
    ends included. The rule fires when the settled withdrawals from the first of those deposits up to and including
    W (so a withdrawal split in parts is still caught) add up to at least `min_withdrawn_pct` percent of those
    deposits (`>=`), while the lots traded on the UTC days from the first deposit to W stay below `max_lots` (`<`:
    exactly `max_lots` is enough trading to clear it). Sums are in `currency`.

    Defaults: 7 days, 80 %, 1.0 lot, USD. One hit per withdrawal, keyed by its reference.
    """

    code = "deposit_then_withdrawal"
    title = "Deposit withdrawn again without trading"
    severity = "high"
    score = 75
    default_thresholds = {
        "days": 7,
        "min_withdrawn_pct": Decimal("80"),
        "max_lots": Decimal("1.0"),
        "currency": "USD",
    }

    def __init__(self, thresholds: Mapping[str, object] | None = None) -> None:
        super().__init__(thresholds)
        self.days = self._int("days")
        self.min_withdrawn_pct = self._decimal("min_withdrawn_pct")
        self.max_lots = self._decimal("max_lots")
        self.currency = self._currency()
        self._require(self.days >= 1, "days", "must be at least 1")
        self._require(0 < self.min_withdrawn_pct <= 100, "min_withdrawn_pct", "must be above 0 and at most 100")
        self._require(self.max_lots > 0, "max_lots", "must be positive")

    def scan(self, window: FactWindow) -> list[RuleHit]:
        deposits = window.settled("deposit")
        withdrawals = window.settled("withdrawal")
        hits = []
        for position, withdrawal in enumerate(withdrawals):
            opens = withdrawal.at - timedelta(days=self.days)
            funded = [d for d in deposits if opens <= d.at <= withdrawal.at]
            if not funded:
                continue
            since = funded[0].at
            taken = [w for w in withdrawals[: position + 1] if w.at >= since]
            deposited = window.total(funded, self.currency)
            withdrawn = window.total(taken, self.currency)
            lots = window.lots_between(utc_day(since), utc_day(withdrawal.at))
            if withdrawn * 100 < deposited * self.min_withdrawn_pct or lots >= self.max_lots:
                continue
            share = (withdrawn * 100 / deposited).quantize(Decimal("0.1"))
            hits.append(
                self._hit(
                    window,
                    key=withdrawal.reference,
                    references=[m.reference for m in (*funded, *taken)],
                    summary=(
                        f"Withdrew {_shown(withdrawn, self.currency)} ({share}% of the "
                        f"{_shown(deposited, self.currency)} deposited since {utc_day(since).isoformat()}) "
                        f"within {_count(self.days, 'day')} of depositing, having traded {lots} lots "
                        f"(less than {self.max_lots})."
                    ),
                    evidence={
                        "withdrawal": withdrawal.reference,
                        "deposits": [d.reference for d in funded],
                        "withdrawals": [w.reference for w in taken],
                        "deposited": _plain(deposited, self.currency),
                        "withdrawn": _plain(withdrawn, self.currency),
                        "currency": self.currency,
                        "withdrawn_pct": str(share),
                        "lots": str(lots),
                        "since": since.isoformat(),
                        "until": withdrawal.at.isoformat(),
                    },
                )
            )
        return hits


class Structuring(Rule):
    """Deposits split to stay just under the large-deposit threshold.

    A candidate is a settled deposit worth at least `lower_ratio` x `amount` (`>=`) and less than `amount` (`<`: a
    deposit of exactly `amount` belongs to LargeDeposit). The rule fires on a cluster of at least `min_deposits`
    candidates whose last came at most `window_hours` after its first (exactly `window_hours` apart still counts)
    and which add up to at least `amount`. Clusters are formed greedily in time order: each starts at the earliest
    candidate not yet reported and takes every candidate within the window, so overlapping windows make one hit and
    the event run and the nightly run agree on the first deposit, which keys the hit.

    Keep `amount` and `currency` equal to LargeDeposit's; each rule is configured on its own so it stands alone.
    Defaults: 10,000 USD, ratio 0.8, 3 deposits, 24 hours.
    """

    code = "structuring"
    title = "Deposits structured just under the threshold"
    severity = "high"
    score = 80
    default_thresholds = {
        "amount": Decimal("10000"),
        "currency": "USD",
        "lower_ratio": Decimal("0.8"),
        "min_deposits": 3,
        "window_hours": 24,
    }

    def __init__(self, thresholds: Mapping[str, object] | None = None) -> None:
        super().__init__(thresholds)
        self.limit = self._money("amount")
        self.lower_ratio = self._decimal("lower_ratio")
        self.min_deposits = self._int("min_deposits")
        self.window = timedelta(hours=self._int("window_hours"))
        self._require(0 < self.lower_ratio < 1, "lower_ratio", "must be between 0 and 1, both excluded")
        self._require(self.min_deposits >= 1, "min_deposits", "must be at least 1")
        self._require(self.window > timedelta(0), "window_hours", "must be positive")

    def scan(self, window: FactWindow) -> list[RuleHit]:
        floor = self.limit.amount * self.lower_ratio
        candidates: list[tuple[MoneyMovement, Decimal]] = []
        for deposit in window.settled("deposit"):
            value = window.convert(deposit.amount, deposit.currency, self.limit.currency)
            if floor <= value < self.limit.amount:
                candidates.append((deposit, value))
        hits = []
        start = 0
        while start < len(candidates):
            first = candidates[start][0]
            end = start
            while end < len(candidates) and candidates[end][0].at - first.at <= self.window:
                end += 1
            cluster = candidates[start:end]
            total = sum((value for _, value in cluster), Decimal(0))
            if len(cluster) < self.min_deposits or total < self.limit.amount:
                start += 1
                continue
            hits.append(self._cluster_hit(window, cluster, total, floor))
            start = end
        return hits

    def _cluster_hit(
        self, window: FactWindow, cluster: list[tuple[MoneyMovement, Decimal]], total: Decimal, floor: Decimal
    ) -> RuleHit:
        deposits = [deposit for deposit, _ in cluster]
        first, last = deposits[0], deposits[-1]
        currency = self.limit.currency
        return self._hit(
            window,
            key=first.reference,
            references=[d.reference for d in deposits],
            summary=(
                f"{_count(len(deposits), 'deposit')} totalling {_shown(total, currency)} between {_utc_text(first.at)} "
                f"and {_utc_text(last.at)}, each from {_shown(floor, currency)} to just under the {self.limit} "
                f"single-deposit threshold."
            ),
            evidence={
                "deposits": [d.reference for d in deposits],
                "amounts_in_threshold_currency": [_plain(value, currency) for _, value in cluster],
                "total": _plain(total, currency),
                "threshold": _plain(self.limit.amount, currency),
                "threshold_currency": currency,
                "lower_ratio": str(self.lower_ratio),
                "first_at": first.at.isoformat(),
                "last_at": last.at.isoformat(),
            },
        )


class VelocitySpike(Rule):
    """Deposits far faster than the client's own habit.

    The recent period is the `recent_days` ending at `window.now`, start excluded and end included (a deposit exactly
    `recent_days` before now belongs to the baseline); the baseline is the `baseline_days` before it, same
    convention. Averages are per day. The baseline average is taken over the whole days the client existed in the
    baseline (at least one), so a week-old client is not compared with an average diluted over 30 days.

    Floors come first: nothing fires unless the recent period holds at least `min_deposits` settled deposits AND at
    least `min_amount` in total (`>=` both). One or two deposits, however large, are LargeDeposit's business; a few
    small ones are noise. Past the floors the rule fires when the recent daily count or the recent daily amount is
    at least `factor` times the baseline daily average (`>=`).

    No history: with no settled deposit in the baseline the average is zero, so a recent period that clears both
    floors fires. A new client thus never fires on its first two deposits, nor on three that total under the floor.

    Defaults: 1 recent day, 30 baseline days, factor 5, floors of 3 deposits and 2,000 USD. Keyed by the UTC day of
    the latest recent deposit, so the event run and that night's run share one alert.
    """

    code = "velocity_spike"
    title = "Spike in deposit velocity"
    severity = "medium"
    score = 55
    default_thresholds = {
        "recent_days": 1,
        "baseline_days": 30,
        "factor": Decimal("5"),
        "min_deposits": 3,
        "min_amount": Decimal("2000"),
        "currency": "USD",
    }

    def __init__(self, thresholds: Mapping[str, object] | None = None) -> None:
        super().__init__(thresholds)
        self.recent_days = self._int("recent_days")
        self.baseline_days = self._int("baseline_days")
        self.factor = self._decimal("factor")
        self.min_deposits = self._int("min_deposits")
        self.floor = self._money("min_amount")
        self._require(self.recent_days >= 1, "recent_days", "must be at least 1")
        self._require(self.baseline_days >= 1, "baseline_days", "must be at least 1")
        self._require(self.factor > 1, "factor", "must be above 1")
        self._require(self.min_deposits >= 1, "min_deposits", "must be at least 1")

    def scan(self, window: FactWindow) -> list[RuleHit]:
        currency = self.floor.currency
        recent_start = window.now - timedelta(days=self.recent_days)
        baseline_start = recent_start - timedelta(days=self.baseline_days)
        deposits = window.settled("deposit")
        recent = [d for d in deposits if recent_start < d.at <= window.now]
        recent_amount = window.total(recent, currency)
        if len(recent) < self.min_deposits or recent_amount < self.floor.amount:
            return []
        baseline = [d for d in deposits if baseline_start < d.at <= recent_start]
        baseline_amount = window.total(baseline, currency)
        baseline_days = max((recent_start - max(baseline_start, window.client.created_at)).days, 1)
        # Rates compared cross-multiplied (recent / recent_days >= factor * baseline / baseline_days) so the boundary
        # is exact instead of hanging on the last digit of a division.
        by_count = len(recent) * baseline_days >= self.factor * len(baseline) * self.recent_days
        by_amount = recent_amount * baseline_days >= self.factor * baseline_amount * self.recent_days
        if not (by_count or by_amount):
            return []
        latest = recent[-1]
        opening = (
            f"{_count(len(recent), 'deposit')} totalling {_shown(recent_amount, currency)} in the "
            f"{_count(self.recent_days, 'day')} to {_utc_text(window.now)}"
        )
        if baseline:
            count_multiple = (Decimal(len(recent)) * baseline_days / (len(baseline) * self.recent_days)).quantize(
                Decimal("0.1")
            )
            amount_multiple = (recent_amount * baseline_days / (baseline_amount * self.recent_days)).quantize(
                Decimal("0.1")
            )
            summary = (
                f"{opening}: {count_multiple}x the daily deposit count and {amount_multiple}x the daily amount of "
                f"the previous {_count(baseline_days, 'day')} (alert at {self.factor}x)."
            )
        else:
            summary = f"{opening}, with no deposits in the previous {_count(baseline_days, 'day')}."
        return [
            self._hit(
                window,
                key=utc_day(latest.at).isoformat(),
                references=[d.reference for d in recent],
                summary=summary,
                evidence={
                    "recent_deposits": [d.reference for d in recent],
                    "recent_count": len(recent),
                    "recent_amount": _plain(recent_amount, currency),
                    "baseline_count": len(baseline),
                    "baseline_amount": _plain(baseline_amount, currency),
                    "baseline_days": baseline_days,
                    "recent_days": self.recent_days,
                    "currency": currency,
                    "factor": str(self.factor),
                    "by_count": by_count,
                    "by_amount": by_amount,
                    "now": window.now.isoformat(),
                },
            )
        ]


# Apostrophes join ("O'Brien" is one name); every other non-letter separates.
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc`")
_NAME_PART = re.compile(r"[^\W_]+")


def name_parts(name: str) -> tuple[str, ...]:
    """The comparable parts of a personal name: case-folded, accents stripped, apostrophes dropped, split on spaces
    and punctuation. "José O'Brien-Müller" gives ("jose", "obrien", "muller")."""
    decomposed = unicodedata.normalize("NFKD", name.casefold().translate(_APOSTROPHES))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return tuple(_NAME_PART.findall(bare))


def _initials_matched(initials: set[str], other: set[str]) -> int:
    return sum(1 for initial in initials if any(part.startswith(initial) for part in other))


def names_match(payer_name: str, legal_name: str, *, min_overlap: int = 2) -> bool:
    """Whether `payer_name` plausibly names the person called `legal_name`.

    Order and extra parts (middle names, titles) do not matter. A one-letter part is an initial and matches a part
    of the other name that starts with it. The names match when at least one full part is shared and the shared parts,
    initials included, number at least `min_overlap` (or all the legal name's parts, if it has fewer). So "Jane A. Doe"
    and "J Doe" match "Doe Jane", while "John Doe", "Doe" and "J D" do not match "Jane Doe".
    """
    payer, legal = set(name_parts(payer_name)), set(name_parts(legal_name))
    payer_full = {part for part in payer if len(part) > 1}
    legal_full = {part for part in legal if len(part) > 1}
    shared = payer_full & legal_full
    if not shared:
        return False
    initials = _initials_matched(payer - payer_full, legal - shared)
    initials += _initials_matched(legal - legal_full - payer, payer_full - shared)
    return len(shared) + initials >= min(min_overlap, len(legal))


class PayerNameMismatch(Rule):
    """A settled deposit paid by someone whose name, as the PSP reported it, does not match the client's legal name
    (third-party funding). Matching is `names_match` with `min_overlap` (default 2): a hit needs fewer shared parts.
    A deposit without a payer name, or with one that has no letters or digits, carries no evidence and never fires.
    One hit per deposit, keyed by its reference.
    """

    code = "payer_name_mismatch"
    title = "Deposit paid by a third party"
    severity = "high"
    score = 65
    default_thresholds = {"min_overlap": 2}

    def __init__(self, thresholds: Mapping[str, object] | None = None) -> None:
        super().__init__(thresholds)
        self.min_overlap = self._int("min_overlap")
        self._require(self.min_overlap >= 1, "min_overlap", "must be at least 1")

    def scan(self, window: FactWindow) -> list[RuleHit]:
        legal_name = window.client.legal_name
        hits = []
        for deposit in window.settled("deposit"):
            payer_name = deposit.payer_name
            if payer_name is None or not name_parts(payer_name):
                continue
            if names_match(payer_name, legal_name, min_overlap=self.min_overlap):
                continue
            hits.append(
                self._hit(
                    window,
                    key=deposit.reference,
                    references=[deposit.reference],
                    summary=(
                        f"Deposit of {_shown(deposit.amount, deposit.currency)} by {deposit.method} was paid by "
                        f'"{payer_name}", which does not match the client\'s legal name "{legal_name}".'
                    ),
                    evidence={
                        "reference": deposit.reference,
                        "at": deposit.at.isoformat(),
                        "amount": _plain(deposit.amount, deposit.currency),
                        "currency": deposit.currency,
                        "method": deposit.method,
                        "payer_name": payer_name,
                        "legal_name": legal_name,
                    },
                )
            )
        return hits


class NewWithdrawalMethod(Rule):
    """A withdrawal to an instrument that never funded a settled deposit: a break of return to source.

    An instrument is known once a settled deposit came from it earlier in the window (or it is among the window's
    `prior_deposit_instruments`); a deposit from it after the withdrawal does not excuse the withdrawal. Every
    withdrawal is judged, settled or still in flight, so the alert can stop the payout before it leaves.
    No thresholds. One hit per withdrawal, keyed by its reference.
    """

    code = "new_withdrawal_method"
    title = "Withdrawal to a method never used to deposit"
    severity = "high"
    score = 70
    default_thresholds = {}

    def scan(self, window: FactWindow) -> list[RuleHit]:
        known = set(window.prior_deposit_instruments)
        hits = []
        for movement in window.movements:  # time order: only deposits before a withdrawal can excuse it
            if movement.kind == "deposit":
                if movement.settled:
                    known.add(movement.instrument_fingerprint)
                continue
            if movement.instrument_fingerprint in known:
                continue
            state = "settled" if movement.settled else "not yet settled"
            hits.append(
                self._hit(
                    window,
                    key=movement.reference,
                    references=[movement.reference],
                    summary=(
                        f"Withdrawal of {_shown(movement.amount, movement.currency)} by {movement.method} ({state}) "
                        f"goes to an instrument that never funded a settled deposit, against return to source."
                    ),
                    evidence={
                        "reference": movement.reference,
                        "at": movement.at.isoformat(),
                        "amount": _plain(movement.amount, movement.currency),
                        "currency": movement.currency,
                        "method": movement.method,
                        "instrument_fingerprint": movement.instrument_fingerprint,
                        "settled": movement.settled,
                        "known_deposit_instruments": sorted(known),
                    },
                )
            )
        return hits


# A snapshot of the FATF lists (2025): the "call for action" countries (KP, IR, MM) and long-standing members of
# "increased monitoring". The lists change three times a year; compliance keeps the live one in settings.AML_RULES.
FATF_HIGH_RISK_COUNTRIES: tuple[str, ...] = ("KP", "IR", "MM", "CD", "HT", "LB", "SS", "SY", "VE", "YE")


class HighRiskCountry(Rule):
    """Any settled money movement of a client based in a listed country (`countries`, ISO-2, matched case-blind) or
    rated high risk. One hit per client per UTC day with that day's settled movements, keyed by the day, so a busy
    day makes one alert. Defaults: `FATF_HIGH_RISK_COUNTRIES`.
    """

    code = "high_risk_country"
    title = "Money movement of a high-risk client"
    severity = "low"
    score = 30
    default_thresholds = {"countries": FATF_HIGH_RISK_COUNTRIES}

    def __init__(self, thresholds: Mapping[str, object] | None = None) -> None:
        super().__init__(thresholds)
        self.countries = frozenset(code.upper() for code in cast(tuple[str, ...], self.thresholds["countries"]))
        self._require(
            all(len(code) == 2 and code.isascii() and code.isalpha() for code in self.countries),
            "countries",
            "must be ISO-2 country codes",
        )

    def scan(self, window: FactWindow) -> list[RuleHit]:
        client = window.client
        reasons = []
        if client.country in self.countries:
            reasons.append(f"is based in {client.country} (high-risk country list)")
        if client.risk_level == "high":
            reasons.append("is rated high risk")
        if not reasons:
            return []
        by_day: dict[date, list[MoneyMovement]] = {}
        for movement in window.movements:
            if movement.settled:
                by_day.setdefault(utc_day(movement.at), []).append(movement)
        return [
            self._hit(
                window,
                key=day.isoformat(),
                references=[m.reference for m in movements],
                summary=(
                    f"{_count(len(movements), 'settled money movement')} on {day.isoformat()} by a client who "
                    f"{' and '.join(reasons)}."
                ),
                evidence={
                    "day": day.isoformat(),
                    "movements": [m.reference for m in movements],
                    "country": client.country,
                    "risk_level": client.risk_level,
                    "country_listed": client.country in self.countries,
                },
            )
            for day, movements in by_day.items()
        ]
