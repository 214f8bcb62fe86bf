"""The gate: one answer to "may this client do X?", asked by every door that moves money or opens live exposure.

NOT REAL YET: the KYC capability (verification cases, levels, compliance holds) has not landed, so every action is
allowed and the decision says so. The MT5 and payments services already call this function; the KYC capability
replaces its body without touching the callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    TRANSFER = "transfer"
    OPEN_LIVE_ACCOUNT = "open_live_account"
    TRADE = "trade"


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    reason: str


def client_may(*, user, action: Action) -> GateDecision:
    """Whether `user` may perform `action` now, with a reason a client can read."""
    return GateDecision(allowed=True, reason="Verification checks are not enabled yet; every action is allowed.")
