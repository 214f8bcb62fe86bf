"""Commission plans and their rules: a plan never holds two rules that would apply to the same deal."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from core.errors import ApplicationError
from ib.models import CommissionPlan, CommissionRule

SHARES = (CommissionRule.Kind.SPREAD_SHARE, CommissionRule.Kind.COMMISSION_SHARE)


def rule_problems(*, rule: CommissionRule) -> dict[str, str]:
    """What is wrong with a rule in its plan (field -> message); empty when it may be saved. Shared by the
    admin's form validation and `plan_rule_add`."""
    problems: dict[str, str] = {}
    plan = rule.plan if rule.plan_id else None
    if plan is None:
        return {"plan": "A rule belongs to a plan."}
    is_cpa = rule.kind == CommissionRule.Kind.CPA
    if is_cpa and rule.symbol_group_id:
        problems["symbol_group"] = "A CPA rule pays per first deposit: leave the symbol group empty."
    if not is_cpa and not rule.symbol_group_id:
        problems["symbol_group"] = "Choose the symbol group this rule pays on."
    if rule.rate is not None and rule.rate < 0:
        problems["rate"] = "A rate cannot be negative."
    if rule.kind in SHARES and rule.rate is not None and rule.rate > 1:
        problems["rate"] = "A share is a fraction between 0 and 1 (0.40 is 40 %)."
    if is_cpa and rule.min_monthly_lots:
        problems["min_monthly_lots"] = "CPA rules have no volume tiers."
    if plan.override_model == CommissionPlan.OverrideModel.DIFFERENCE and rule.level != 0:
        problems["level"] = "With the difference model, uplines earn from their level-0 rates: use level 0 only."
    if (
        rule.kind == CommissionRule.Kind.SPREAD_SHARE
        and rule.symbol_group_id
        and rule.symbol_group.markup_currency != plan.currency
    ):
        problems["kind"] = (
            f"The markup of {rule.symbol_group.name} is in {rule.symbol_group.markup_currency}, the plan pays in "
            f"{plan.currency}: a spread share needs both in the same currency."
        )
    others = CommissionRule.objects.filter(plan=plan, level=rule.level).exclude(pk=rule.pk)
    if is_cpa:
        if others.filter(kind=CommissionRule.Kind.CPA).exists():
            problems["kind"] = f"The plan already has a CPA rule at level {rule.level}."
    elif rule.symbol_group_id:
        same_group = others.filter(symbol_group_id=rule.symbol_group_id)
        if same_group.exclude(kind=rule.kind).exists():
            problems["kind"] = (
                f"The plan already pays another kind of commission on {rule.symbol_group.name} at level "
                f"{rule.level}: two rules would apply to the same deal."
            )
        elif same_group.filter(min_monthly_lots=rule.min_monthly_lots or Decimal("0")).exists():
            problems["min_monthly_lots"] = (
                f"The plan already has a rule for {rule.symbol_group.name} at level {rule.level} from "
                f"{rule.min_monthly_lots} lots a month: the rules overlap."
            )
    return problems


def plan_rule_add(
    *, plan: CommissionPlan, kind: str, rate, symbol_group=None, level: int = 0, **extra
) -> CommissionRule:
    """Add a rule to a plan, refusing overlaps and nonsense with a message that says which."""
    with transaction.atomic():
        CommissionPlan.objects.select_for_update().get(pk=plan.pk)  # two concurrent adds cannot both pass
        rule = CommissionRule(
            plan=plan, kind=kind, rate=Decimal(str(rate)), symbol_group=symbol_group, level=level, **extra
        )
        problems = rule_problems(rule=rule)
        if problems:
            raise ApplicationError(" ".join(problems.values()), code="invalid_rule", extra=problems)
        rule.save()
        return rule
