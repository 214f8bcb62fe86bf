"""The AML engine: which rules run (configuration as data) and one call that runs them over a `FactWindow`.

Configuration is a list of items `{"class": "kyc.aml.rules.LargeDeposit", "thresholds": {...}, "enabled": True}`.
`settings.AML_RULES` replaces `DEFAULT_AML_RULES` when it is set; it is read at call time, not import time, so
settings overrides (and tests) take effect without reloading this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from .facts import FactWindow
from .rules import (
    SEVERITY_RANK,
    DepositThenWithdrawal,
    HighRiskCountry,
    LargeDeposit,
    NewWithdrawalMethod,
    PayerNameMismatch,
    Rule,
    RuleHit,
    Structuring,
    ThresholdValue,
    VelocitySpike,
)

logger = logging.getLogger(__name__)

_ITEM_KEYS = frozenset({"class", "thresholds", "enabled"})


def _as_setting(value: ThresholdValue) -> str | int | list[str]:
    """A threshold as plain data (Decimal as a string, tuples as lists), as it would be written in settings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


# Every rule, enabled, with its default thresholds spelled out: copy it into settings.AML_RULES and edit.
DEFAULT_AML_RULES: list[dict[str, Any]] = [
    {
        "class": f"{rule_class.__module__}.{rule_class.__qualname__}",
        "thresholds": {key: _as_setting(value) for key, value in rule_class.default_thresholds.items()},
        "enabled": True,
    }
    for rule_class in (
        LargeDeposit,
        DepositThenWithdrawal,
        Structuring,
        VelocitySpike,
        PayerNameMismatch,
        NewWithdrawalMethod,
        HighRiskCountry,
    )
]


def load_rules(config: Iterable[Mapping[str, Any]] | None = None) -> list[Rule]:
    """The enabled rules of `config`, built with their thresholds; `None` reads `settings.AML_RULES` (else
    `DEFAULT_AML_RULES`).

    A malformed item, a class that is not a `Rule`, or bad thresholds raise (ValueError, ImportError) naming the
    culprit: a monitoring rule silently dropped is worse than a deploy that fails. Disabled items are skipped
    without importing their class.
    """
    if config is None:
        config = getattr(settings, "AML_RULES", DEFAULT_AML_RULES)
    rules = []
    for position, item in enumerate(config):
        unknown = sorted(set(item) - _ITEM_KEYS)
        if unknown or "class" not in item:
            raise ValueError(
                f"AML rule config item {position} needs a 'class' and may only hold {sorted(_ITEM_KEYS)}; "
                f"got {sorted(item)}."
            )
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"AML rule config item {position} ({item['class']}): 'enabled' must be a bool.")
        if not enabled:
            continue
        rule_class = import_string(item["class"])
        if not (isinstance(rule_class, type) and issubclass(rule_class, Rule)):
            raise ValueError(f"AML rule config item {position}: {item['class']} is not an AML Rule class.")
        rules.append(rule_class(item.get("thresholds")))
    return rules


def _rank(hit: RuleHit) -> tuple[int, int]:
    return SEVERITY_RANK[hit.severity], hit.score


def evaluate(window: FactWindow, rules: Sequence[Rule] | None = None) -> list[RuleHit]:
    """Run `rules` (default: `load_rules()`) over `window`.

    Hits sharing a `dedup_key` collapse into the most severe one (then the highest score, then the first found).
    The result is ordered most severe first, then by score (highest first), then by code and key so it is stable.
    A rule that raises is logged with its traceback and skipped; the other rules still run.
    """
    if rules is None:
        rules = load_rules()
    kept: dict[str, RuleHit] = {}
    for rule in rules:
        try:
            hits = rule.evaluate(window)
        except Exception:
            # One broken rule (a bug, an FX rate missing for one currency) must not blind the others.
            logger.exception("AML rule %s failed for client %s.", rule.code, window.client.client_id)
            continue
        for hit in hits:
            held = kept.get(hit.dedup_key)
            if held is None or _rank(hit) > _rank(held):
                kept[hit.dedup_key] = hit
    return sorted(kept.values(), key=lambda hit: (-SEVERITY_RANK[hit.severity], -hit.score, hit.code, hit.dedup_key))
