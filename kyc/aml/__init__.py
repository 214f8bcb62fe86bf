"""AML monitoring: rules as pure functions over plain facts (no models, no database, never importing payments).

Payments builds a `FactWindow` when money moves and analytics builds one per client nightly; `evaluate` returns
the `RuleHit`s, which the alert layer stores once per `dedup_key`.
"""

from .engine import DEFAULT_AML_RULES, evaluate, load_rules
from .facts import ClientFacts, FactWindow, MoneyMovement, TradingActivity
from .rules import (
    FATF_HIGH_RISK_COUNTRIES,
    DepositThenWithdrawal,
    HighRiskCountry,
    LargeDeposit,
    NewWithdrawalMethod,
    PayerNameMismatch,
    Rule,
    RuleHit,
    Structuring,
    VelocitySpike,
    names_match,
)

__all__ = [
    "DEFAULT_AML_RULES",
    "FATF_HIGH_RISK_COUNTRIES",
    "ClientFacts",
    "DepositThenWithdrawal",
    "FactWindow",
    "HighRiskCountry",
    "LargeDeposit",
    "MoneyMovement",
    "NewWithdrawalMethod",
    "PayerNameMismatch",
    "Rule",
    "RuleHit",
    "Structuring",
    "TradingActivity",
    "VelocitySpike",
    "evaluate",
    "load_rules",
    "names_match",
]
