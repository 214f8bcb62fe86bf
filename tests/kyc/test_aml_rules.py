"""AML rules over plain facts: for each rule a hit and a near miss at its boundary, threshold validation, and the
engine's configuration, dedup, ordering and isolation of a failing rule. No database."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import CurrencyError
from kyc.aml import (
    DEFAULT_AML_RULES,
    ClientFacts,
    DepositThenWithdrawal,
    FactWindow,
    HighRiskCountry,
    LargeDeposit,
    MoneyMovement,
    NewWithdrawalMethod,
    PayerNameMismatch,
    Rule,
    RuleHit,
    Structuring,
    TradingActivity,
    VelocitySpike,
    evaluate,
    load_rules,
    names_match,
)

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
CLIENT_ID = 7
_references = itertools.count(1)


# Fact builders: every field has a dull default, so a test spells out only what its rule looks at.


def client(**overrides) -> ClientFacts:
    fields = {
        "client_id": CLIENT_ID,
        "legal_name": "Jane Doe",
        "country": "DE",
        "risk_level": "low",
        "created_at": NOW - timedelta(days=365),
    }
    return ClientFacts(**(fields | overrides))


def movement(kind: str, amount: str, *, at: datetime = NOW, **overrides) -> MoneyMovement:
    fields = {
        "kind": kind,
        "client_id": CLIENT_ID,
        "amount": Decimal(amount),
        "currency": "USD",
        "at": at,
        "method": "card",
        "instrument_fingerprint": "card:1111",
        "settled": True,
        "reference": f"{kind[:3].upper()}-{next(_references)}",
        "payer_name": None,
    }
    return MoneyMovement(**(fields | overrides))


def deposit(amount: str, **overrides) -> MoneyMovement:
    return movement("deposit", amount, **overrides)


def withdrawal(amount: str, **overrides) -> MoneyMovement:
    return movement("withdrawal", amount, **overrides)


def traded(day: date, lots: str) -> TradingActivity:
    return TradingActivity(client_id=CLIENT_ID, day=day, lots=Decimal(lots), trades=1)


def window(*movements: MoneyMovement, **overrides) -> FactWindow:
    fields = {"client": client(), "movements": movements, "now": NOW}
    return FactWindow(**(fields | overrides))


def codes(hits: list[RuleHit]) -> list[str]:
    return [hit.code for hit in hits]


# LargeDeposit: amount >= threshold.


def test_large_deposit_fires_at_exactly_the_threshold():
    hits = LargeDeposit().evaluate(window(deposit("10000.00", reference="DEP-1")))

    assert len(hits) == 1
    hit = hits[0]
    assert hit.summary == "Deposit of 10,000.00 USD reaches the 10,000.00 USD single-deposit threshold."
    assert hit.dedup_key == f"large_deposit:{CLIENT_ID}:DEP-1"
    assert hit.references == ("DEP-1",)
    assert hit.evidence["amount"] == "10000.00"
    assert hit.evidence["at"] == NOW.isoformat()


def test_large_deposit_summary_states_the_excess():
    [hit] = LargeDeposit().evaluate(window(deposit("15000")))
    assert hit.summary == "Deposit of 15,000.00 USD exceeds the 10,000.00 USD single-deposit threshold."


def test_large_deposit_near_miss_one_cent_under_and_unsettled_deposits():
    assert LargeDeposit().evaluate(window(deposit("9999.99"))) == []
    assert LargeDeposit().evaluate(window(deposit("50000", settled=False))) == []


def test_large_deposit_converts_other_currencies_at_full_precision():
    rates = {"EUR": Decimal("1.08")}
    # 9,259.26 EUR is 10,000.0008 USD: over; 9,259.25 EUR is 9,999.99 USD: under.
    [hit] = LargeDeposit().evaluate(window(deposit("9259.26", currency="EUR"), fx_to_usd=rates))
    assert hit.summary.startswith("Deposit of 9,259.26 EUR (10,000.00 USD) exceeds")
    assert LargeDeposit().evaluate(window(deposit("9259.25", currency="EUR"), fx_to_usd=rates)) == []


def test_a_currency_without_a_rate_raises_rather_than_being_skipped():
    with pytest.raises(CurrencyError, match="No USD rate for EUR"):
        LargeDeposit().evaluate(window(deposit("50000", currency="EUR")))


def test_with_an_event_only_hits_the_event_takes_part_in_are_reported_under_the_nightly_key():
    old = deposit("20000", at=NOW - timedelta(days=3))
    event = deposit("12000", reference="DEP-EVENT")

    on_event = LargeDeposit().evaluate(window(old, event=event))
    nightly = LargeDeposit().evaluate(window(old, event))

    assert [hit.references for hit in on_event] == [("DEP-EVENT",)]
    assert {hit.dedup_key for hit in nightly} == {f"large_deposit:{CLIENT_ID}:{old.reference}", on_event[0].dedup_key}


def test_the_event_replaces_an_older_version_of_the_same_movement():
    pending = deposit("12000", reference="DEP-9", settled=False)
    settled = deposit("12000", reference="DEP-9", settled=True)

    facts = window(pending, event=settled)

    assert facts.movements == (settled,)
    assert len(LargeDeposit().evaluate(facts)) == 1


# DepositThenWithdrawal: withdrawn >= 80 % of deposits in the last 7 days and lots < 1.0.


def test_in_and_out_fires_at_80_percent_within_exactly_seven_days_with_little_trading():
    paid_in = deposit("1000", at=NOW - timedelta(days=7))
    paid_out = withdrawal("800", reference="WD-1")
    activity = (traded(NOW.date() - timedelta(days=2), "0.99"),)

    [hit] = DepositThenWithdrawal().evaluate(window(paid_in, paid_out, activity=activity))

    assert hit.dedup_key == f"deposit_then_withdrawal:{CLIENT_ID}:WD-1"
    assert hit.references == (paid_in.reference, "WD-1")
    assert hit.summary == (
        "Withdrew 800.00 USD (80.0% of the 1,000.00 USD deposited since 2025-03-03) within 7 days of depositing, "
        "having traded 0.99 lots (less than 1.0)."
    )


def test_in_and_out_near_misses_at_each_boundary():
    rule = DepositThenWithdrawal()
    paid_in = deposit("1000", at=NOW - timedelta(days=7))

    assert rule.evaluate(window(paid_in, withdrawal("799.99"))) == []
    one_lot = (traded(NOW.date(), "1.0"),)
    assert rule.evaluate(window(paid_in, withdrawal("1000"), activity=one_lot)) == []
    too_early = deposit("1000", at=NOW - timedelta(days=7, seconds=1))
    assert rule.evaluate(window(too_early, withdrawal("1000"))) == []


def test_in_and_out_adds_up_a_withdrawal_split_in_parts():
    paid_in = deposit("1000", at=NOW - timedelta(days=2))
    first = withdrawal("500", at=NOW - timedelta(days=1))
    second = withdrawal("300")

    hits = DepositThenWithdrawal().evaluate(window(paid_in, first, second))

    assert [hit.evidence["withdrawal"] for hit in hits] == [second.reference]
    assert hits[0].evidence["withdrawn"] == "800.00"


# Structuring: >= 3 deposits each in [0.8, 1.0) x 10,000 USD within 24 h, summing to >= 10,000 USD.


def test_structuring_fires_on_three_deposits_just_under_the_threshold_exactly_24_hours_apart():
    deposits = [
        deposit("8000.00", at=NOW - timedelta(hours=24), reference="DEP-A"),
        deposit("9999.99", at=NOW - timedelta(hours=12)),
        deposit("9000.00", at=NOW),
    ]

    [hit] = Structuring().evaluate(window(*deposits))

    assert hit.dedup_key == f"structuring:{CLIENT_ID}:DEP-A"
    assert hit.evidence["total"] == "26999.99"
    assert hit.summary == (
        "3 deposits totalling 26,999.99 USD between 2025-03-09 12:00 UTC and 2025-03-10 12:00 UTC, each from "
        "8,000.00 USD to just under the 10,000.00 USD single-deposit threshold."
    )


@pytest.mark.parametrize(
    ("amounts", "last_after"),
    [
        (("7999.99", "9000", "9000"), timedelta(hours=24)),  # one deposit below 0.8 x threshold
        (("10000", "9000", "9000"), timedelta(hours=24)),  # one at the threshold: LargeDeposit's, not structuring
        (("9000", "9000", "9000"), timedelta(hours=24, seconds=1)),  # spread over more than 24 hours
        (("9000", "9000"), timedelta(hours=1)),  # only two deposits
    ],
)
def test_structuring_near_misses(amounts, last_after):
    # Evenly spaced, the first `last_after` before NOW and the last at NOW.
    steps = len(amounts) - 1
    deposits = [deposit(amount, at=NOW - last_after * (steps - i) / steps) for i, amount in enumerate(amounts)]
    assert Structuring().evaluate(window(*deposits)) == []


def test_structuring_reports_overlapping_windows_once_keyed_by_the_first_deposit():
    deposits = [deposit("9000", at=NOW - timedelta(hours=hours)) for hours in (20, 15, 10, 5, 0)]

    hits = Structuring().evaluate(window(*deposits))

    assert [hit.dedup_key for hit in hits] == [f"structuring:{CLIENT_ID}:{deposits[0].reference}"]
    assert len(hits[0].references) == 5


def test_structuring_event_run_and_nightly_run_share_the_key():
    first = deposit("9000", at=NOW - timedelta(hours=3))
    second = deposit("9000", at=NOW - timedelta(hours=2))
    third = deposit("9000", at=NOW - timedelta(hours=1))
    fourth = deposit("9000")

    [on_event] = Structuring().evaluate(window(first, second, event=third))
    [nightly] = Structuring().evaluate(window(first, second, third, fourth, now=NOW + timedelta(hours=12)))

    assert on_event.dedup_key == nightly.dedup_key == f"structuring:{CLIENT_ID}:{first.reference}"
    assert len(nightly.references) == 4


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("7999.99"), places=2),
            st.integers(min_value=0, max_value=48 * 60),
        ),
        max_size=15,
    )
)
def test_structuring_never_fires_when_every_deposit_is_below_the_lower_ratio(deposits):
    facts = window(*(deposit(str(amount), at=NOW - timedelta(minutes=minutes)) for amount, minutes in deposits))
    assert Structuring().evaluate(facts) == []


@given(
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2),
    threshold=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2),
)
def test_large_deposit_fires_iff_the_amount_reaches_the_threshold(amount, threshold):
    rule = LargeDeposit({"amount": str(threshold)})
    assert bool(rule.evaluate(window(deposit(str(amount))))) == (amount >= threshold)


# VelocitySpike: recent day vs the previous 30 days, factor 5, floors 3 deposits and 2,000 USD.


def test_velocity_without_history_fires_once_both_floors_are_met():
    deposits = [deposit("700", at=NOW - timedelta(hours=hours)) for hours in (3, 2, 1)]

    [hit] = VelocitySpike().evaluate(window(*deposits))

    assert hit.dedup_key == f"velocity_spike:{CLIENT_ID}:2025-03-10"
    assert hit.summary == (
        "3 deposits totalling 2,100.00 USD in the 1 day to 2025-03-10 12:00 UTC, with no deposits in the previous "
        "30 days."
    )


def test_velocity_without_history_stays_quiet_below_either_floor():
    rule = VelocitySpike()
    assert rule.evaluate(window(deposit("5000"), deposit("5000"))) == []  # two deposits, however large
    assert rule.evaluate(window(*(deposit("600") for _ in range(3)))) == []  # 1,800 USD < 2,000 USD
    # A deposit exactly one day before now belongs to the baseline, leaving two recent ones.
    at_the_edge = deposit("700", at=NOW - timedelta(days=1))
    assert rule.evaluate(window(at_the_edge, deposit("700"), deposit("700"))) == []


def _daily_history(amount: str, days: int = 30) -> list[MoneyMovement]:
    """One deposit a day over the `days` before the recent day."""
    return [deposit(amount, at=NOW - timedelta(days=day, hours=1)) for day in range(1, days + 1)]


def test_velocity_with_history_fires_at_exactly_five_times_the_daily_count():
    recent = [deposit("800", at=NOW - timedelta(hours=hours)) for hours in range(5)]

    [hit] = VelocitySpike().evaluate(window(*_daily_history("1000"), *recent))

    assert hit.evidence["by_count"] is True
    assert hit.evidence["by_amount"] is False
    assert "5.0x the daily deposit count and 4.0x the daily amount of the previous 30 days" in hit.summary


def test_velocity_with_history_near_miss_at_four_times_count_and_amount():
    recent = [deposit("1000", at=NOW - timedelta(hours=hours)) for hours in range(4)]
    assert VelocitySpike().evaluate(window(*_daily_history("1000"), *recent)) == []


def test_velocity_averages_a_young_client_over_the_days_it_existed():
    young = client(created_at=NOW - timedelta(days=3))  # two whole days before the recent day
    history = _daily_history("1000", days=2)
    recent = [deposit("1000", at=NOW - timedelta(hours=hours)) for hours in range(4)]

    # Averaged over 2 days the baseline is 1 deposit and 1,000 USD a day, so 4 is no spike; over 30 days it would be.
    assert VelocitySpike().evaluate(window(*history, *recent, client=young)) == []
    assert len(VelocitySpike().evaluate(window(*history, *recent))) == 1


# PayerNameMismatch.


@pytest.mark.parametrize(
    ("payer", "legal"),
    [
        ("Jane A. Doe", "Doe Jane"),
        ("DOE, JANE", "Jane Doe"),
        ("JOSÉ MÜLLER", "Jose Muller"),
        ("J DOE", "Jane Doe"),
        ("Sean O'Brien", "Seán OBrien"),
        ("Mrs Jane Mary Doe-Smith", "Jane Doe"),
        ("Madonna Ciccone", "Madonna"),
    ],
)
def test_names_that_match(payer, legal):
    assert names_match(payer, legal)


@pytest.mark.parametrize(
    ("payer", "legal"),
    [("John Doe", "Jane Doe"), ("Doe", "Jane Doe"), ("J D", "Jane Doe"), ("Max Mustermann", "Jane Doe")],
)
def test_names_that_do_not_match(payer, legal):
    assert not names_match(payer, legal)


def test_payer_name_mismatch_fires_on_a_third_party_deposit():
    [hit] = PayerNameMismatch().evaluate(window(deposit("500", payer_name="John Doe", reference="DEP-3")))

    assert hit.dedup_key == f"payer_name_mismatch:{CLIENT_ID}:DEP-3"
    assert hit.summary == (
        'Deposit of 500.00 USD by card was paid by "John Doe", which does not match the client\'s legal name '
        '"Jane Doe".'
    )


def test_payer_name_mismatch_near_misses():
    rule = PayerNameMismatch()
    assert rule.evaluate(window(deposit("500", payer_name="Doe Jane A."))) == []
    assert rule.evaluate(window(deposit("500", payer_name=None))) == []
    assert rule.evaluate(window(deposit("500", payer_name=" - "))) == []
    assert rule.evaluate(window(deposit("500", payer_name="John Doe", settled=False))) == []
    # One shared part is exactly enough when min_overlap is 1.
    assert PayerNameMismatch({"min_overlap": 1}).evaluate(window(deposit("500", payer_name="John Doe"))) == []


# NewWithdrawalMethod.


def test_withdrawal_to_an_instrument_that_never_funded_a_deposit_fires_even_before_it_settles():
    facts = window(
        deposit("1000", at=NOW - timedelta(days=1), instrument_fingerprint="card:1111"),
        withdrawal("900", instrument_fingerprint="wallet:abc", method="crypto", settled=False, reference="WD-2"),
    )

    [hit] = NewWithdrawalMethod().evaluate(facts)

    assert hit.dedup_key == f"new_withdrawal_method:{CLIENT_ID}:WD-2"
    assert hit.summary == (
        "Withdrawal of 900.00 USD by crypto (not yet settled) goes to an instrument that never funded a settled "
        "deposit, against return to source."
    )
    assert hit.evidence["known_deposit_instruments"] == ["card:1111"]


def test_only_an_earlier_settled_deposit_makes_an_instrument_known():
    rule = NewWithdrawalMethod()
    out = withdrawal("900", instrument_fingerprint="wallet:abc")
    assert len(rule.evaluate(window(deposit("1000", instrument_fingerprint="wallet:abc", settled=False), out))) == 1
    later = deposit("1000", instrument_fingerprint="wallet:abc", at=NOW + timedelta(minutes=1))
    assert len(rule.evaluate(window(out, later))) == 1


def test_withdrawal_back_to_a_funding_instrument_is_a_near_miss():
    rule = NewWithdrawalMethod()
    back = withdrawal("900", instrument_fingerprint="card:1111")
    assert rule.evaluate(window(deposit("1000", at=NOW - timedelta(days=1)), back)) == []
    assert rule.evaluate(window(back, prior_deposit_instruments=frozenset({"card:1111"}))) == []


# HighRiskCountry.


def test_high_risk_country_fires_once_per_day_of_settled_movements():
    facts = window(
        deposit("100", at=NOW - timedelta(days=1)),
        deposit("100", at=NOW - timedelta(hours=2)),
        withdrawal("50"),
        deposit("100", settled=False),
        client=client(country="ir"),
    )

    hits = HighRiskCountry().evaluate(facts)

    assert sorted(hit.dedup_key for hit in hits) == [
        f"high_risk_country:{CLIENT_ID}:2025-03-09",
        f"high_risk_country:{CLIENT_ID}:2025-03-10",
    ]
    today = next(hit for hit in hits if hit.evidence["day"] == "2025-03-10")
    assert len(today.references) == 2
    assert today.summary == (
        "2 settled money movements on 2025-03-10 by a client who is based in IR (high-risk country list)."
    )


def test_a_client_rated_high_risk_fires_outside_the_listed_countries():
    [hit] = HighRiskCountry().evaluate(window(deposit("100"), client=client(risk_level="high")))
    assert hit.summary.endswith("by a client who is rated high risk.")


def test_high_risk_country_near_misses():
    assert HighRiskCountry().evaluate(window(deposit("100"), client=client(country="DE", risk_level="medium"))) == []
    assert HighRiskCountry().evaluate(window(deposit("100", settled=False), client=client(country="IR"))) == []
    configured = HighRiskCountry({"countries": ["de"]})
    assert len(configured.evaluate(window(deposit("100")))) == 1


# Thresholds are data, checked when the rule is built.


def test_thresholds_merge_over_the_defaults():
    rule = Structuring({"min_deposits": 4})
    assert rule.thresholds["min_deposits"] == 4
    assert rule.thresholds["lower_ratio"] == Decimal("0.8")


@pytest.mark.parametrize(
    ("rule_class", "thresholds", "message"),
    [
        (LargeDeposit, {"amont": "5000"}, "'large_deposit': unknown threshold 'amont'"),
        (LargeDeposit, {"amount": 5000.0}, "'large_deposit', threshold 'amount': must be a decimal number"),
        (LargeDeposit, {"amount": "lots"}, "'large_deposit', threshold 'amount': must be a decimal number"),
        (LargeDeposit, {"amount": "0"}, "'large_deposit', threshold 'amount': must be positive"),
        (LargeDeposit, {"amount": "0.001"}, "'large_deposit', threshold 'amount': must be positive"),
        (LargeDeposit, {"currency": "XXX"}, "'large_deposit', threshold 'currency': Unsupported currency"),
        (Structuring, {"min_deposits": True}, "'structuring', threshold 'min_deposits': must be an int"),
        (Structuring, {"min_deposits": "3"}, "'structuring', threshold 'min_deposits': must be an int"),
        (Structuring, {"lower_ratio": "1"}, "'structuring', threshold 'lower_ratio': must be between 0 and 1"),
        (VelocitySpike, {"factor": "1"}, "'velocity_spike', threshold 'factor': must be above 1"),
        (DepositThenWithdrawal, {"min_withdrawn_pct": "101"}, "'deposit_then_withdrawal', threshold"),
        (HighRiskCountry, {"countries": "IR"}, "'high_risk_country', threshold 'countries': must be a list"),
        (HighRiskCountry, {"countries": ["IRN"]}, "'high_risk_country', threshold 'countries': must be ISO-2"),
        (NewWithdrawalMethod, {"days": 3}, "'new_withdrawal_method': unknown threshold 'days' \\(known: none\\)"),
    ],
)
def test_bad_thresholds_name_the_rule_and_the_key(rule_class, thresholds, message):
    with pytest.raises(ValueError, match=message):
        rule_class(thresholds)


# The engine.


def test_default_config_loads_every_rule_and_is_plain_data():
    rules = load_rules(DEFAULT_AML_RULES)
    assert [type(rule) for rule in rules] == [
        LargeDeposit,
        DepositThenWithdrawal,
        Structuring,
        VelocitySpike,
        PayerNameMismatch,
        NewWithdrawalMethod,
        HighRiskCountry,
    ]
    assert DEFAULT_AML_RULES[0] == {
        "class": "kyc.aml.rules.LargeDeposit",
        "thresholds": {"amount": "10000", "currency": "USD"},
        "enabled": True,
    }


def test_settings_override_the_default_config_and_disabled_rules_are_skipped(settings):
    settings.AML_RULES = [
        {"class": "kyc.aml.rules.LargeDeposit", "thresholds": {"amount": "500"}},
        {"class": "kyc.aml.rules.NoSuchRule", "enabled": False},  # never imported
    ]
    [rule] = load_rules()
    assert isinstance(rule, LargeDeposit)
    assert codes(evaluate(window(deposit("600")))) == ["large_deposit"]


@pytest.mark.parametrize(
    ("item", "error", "message"),
    [
        ({"class": "kyc.aml.rules.LargeDeposit", "threshold": {}}, ValueError, "may only hold"),
        ({"thresholds": {}}, ValueError, "needs a 'class'"),
        ({"class": "kyc.aml.rules.LargeDeposit", "enabled": "yes"}, ValueError, "'enabled' must be a bool"),
        ({"class": "kyc.aml.rules.RuleHit"}, ValueError, "is not an AML Rule class"),
        ({"class": "kyc.aml.rules.NoSuchRule"}, ImportError, "NoSuchRule"),
    ],
)
def test_a_malformed_config_item_fails_loudly(item, error, message):
    with pytest.raises(error, match=message):
        load_rules([item])


class FixedHits(Rule):
    """A test rule that returns the hits it was given."""

    code = "fixed"
    title = "Fixed hits"
    severity = "low"
    score = 0
    default_thresholds = {}

    def __init__(self, *hits: RuleHit) -> None:
        super().__init__()
        self.hits = list(hits)

    def scan(self, window: FactWindow) -> list[RuleHit]:
        return self.hits


class Broken(Rule):
    code = "broken"
    title = "Always fails"
    severity = "high"
    score = 100
    default_thresholds = {}

    def scan(self, window: FactWindow) -> list[RuleHit]:
        raise RuntimeError("boom")


def fixed_hit(key: str, severity: str, score: int) -> RuleHit:
    return RuleHit(
        code="fixed",
        client_id=CLIENT_ID,
        severity=severity,
        score=score,
        summary=f"{key} {severity} {score}",
        evidence={},
        references=(),
        dedup_key=key,
    )


def test_engine_keeps_the_most_severe_hit_per_dedup_key_and_orders_by_severity_then_score():
    rules = [
        FixedHits(fixed_hit("a", "low", 90), fixed_hit("b", "medium", 10)),
        FixedHits(fixed_hit("a", "high", 20), fixed_hit("c", "medium", 50), fixed_hit("b", "medium", 5)),
    ]

    hits = evaluate(window(), rules)

    assert [hit.summary for hit in hits] == ["a high 20", "c medium 50", "b medium 10"]


def test_engine_collapses_the_same_finding_from_two_configurations_of_a_rule():
    rules = [LargeDeposit(), LargeDeposit({"amount": "5000"})]
    assert len(evaluate(window(deposit("12000")), rules)) == 1


def test_a_failing_rule_is_logged_and_does_not_stop_the_others(caplog):
    with caplog.at_level(logging.ERROR, logger="kyc.aml.engine"):
        hits = evaluate(window(deposit("20000")), [Broken(), LargeDeposit()])

    assert codes(hits) == ["large_deposit"]
    [record] = caplog.records
    assert record.getMessage() == f"AML rule broken failed for client {CLIENT_ID}."
    assert record.exc_info is not None


def test_default_rules_over_one_suspicious_window():
    facts = window(
        deposit("12000", at=NOW - timedelta(days=2), payer_name="John Smith"),
        withdrawal("11000", instrument_fingerprint="wallet:new", method="crypto"),
        client=client(country="IR"),
    )

    hits = evaluate(facts)

    assert codes(hits) == [
        "deposit_then_withdrawal",
        "new_withdrawal_method",
        "payer_name_mismatch",
        "large_deposit",
        "high_risk_country",
        "high_risk_country",
    ]


# The facts refuse what would mislead a rule.


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"amount": 100.0}, "positive Decimal"),
        ({"amount": Decimal("-1")}, "positive Decimal"),
        ({"at": datetime(2025, 3, 10, 12, 0)}, "timezone-aware"),  # naive: no tzinfo
        ({"kind": "transfer"}, "kind must be one of"),
        ({"instrument_fingerprint": ""}, "instrument_fingerprint"),
        ({"currency": "XXX"}, "Unsupported currency"),
    ],
)
def test_movements_refuse_floats_naive_times_and_unknown_kinds(overrides, message):
    with pytest.raises(ValueError, match=message):
        replace(deposit("100"), **overrides)


def test_a_window_refuses_another_clients_facts_and_float_rates():
    with pytest.raises(ValueError, match="other clients"):
        window(deposit("100", client_id=CLIENT_ID + 1))
    with pytest.raises(ValueError, match="positive Decimal"):
        window(fx_to_usd={"EUR": 1.08})
