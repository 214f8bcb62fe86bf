"""The gate: one answer to "may this client do X?", asked by every door that moves money or opens live exposure
(portal, API, admin actions and tasks all go through the services that call it).

A decision combines the client's verification level (what it allows, up to which amounts) and any active
compliance hold. The reason is written for the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
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


_NEEDS = {
    Action.DEPOSIT: ("may_deposit", "Verify your identity before you deposit."),
    Action.WITHDRAW: ("may_withdraw", "Verify your identity before you withdraw."),
    Action.TRANSFER: ("may_deposit", "Verify your identity before you move funds."),
    Action.OPEN_LIVE_ACCOUNT: ("may_open_live_account", "Verify your identity to open a live account."),
    Action.TRADE: ("may_trade", "Verify your identity to trade."),
}
_HOLD_FLAGS = {
    Action.DEPOSIT: "blocks_deposits",
    Action.WITHDRAW: "blocks_withdrawals",
    Action.TRANSFER: "blocks_withdrawals",
    Action.TRADE: "blocks_trading",
    Action.OPEN_LIVE_ACCOUNT: "blocks_trading",
}


def client_may(
    *, user, action: Action, amount: Decimal | None = None, deposited_before: Decimal | None = None
) -> GateDecision:
    """Whether `user` may perform `action` now.

    `amount` (in the level's currency) is checked against the level's per-withdrawal limit, and for deposits
    `deposited_before + amount` against the level's total deposit limit.
    """
    from kyc.models import ComplianceHold
    from kyc.services.compliance import client_compliance

    level = client_compliance(user=user).level
    flag, message = _NEEDS[action]
    if not getattr(level, flag):
        return GateDecision(False, message)
    hold_flag = _HOLD_FLAGS.get(action)
    if hold_flag and ComplianceHold.objects.filter(user=user, released_at__isnull=True, **{hold_flag: True}).exists():
        return GateDecision(False, "Your account is under review by our compliance team. Please contact support.")
    if action == Action.WITHDRAW and None not in (amount, level.max_withdrawal) and amount > level.max_withdrawal:
        return GateDecision(False, f"Withdrawals above {level.max_withdrawal} {level.currency} need full verification.")
    total_after = (deposited_before or Decimal(0)) + (amount or Decimal(0))
    if action == Action.DEPOSIT and level.max_deposit_total is not None and total_after > level.max_deposit_total:
        return GateDecision(
            False,
            f"Your verification level allows deposits up to {level.max_deposit_total} {level.currency} "
            "in total. Complete full verification to deposit more.",
        )
    return GateDecision(True, f"Allowed at level “{level.name}”.")


def leverage_cap(*, user) -> int | None:
    """The highest leverage the appropriateness test allows this client (None: not limited by the test)."""
    from kyc.services.compliance import client_compliance

    return client_compliance(user=user).leverage_cap
