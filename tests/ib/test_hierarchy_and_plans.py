"""Applications and decisions, the hierarchy (recursive CTEs, no cycles), and plans that refuse overlapping rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django_fsm_log.models import StateLog

from core.errors import ApplicationError
from ib.models import CommissionRule, IntroducingBroker, ReferralLink, SymbolGroup
from ib.selectors import ib_ancestors, ib_downline, ib_downline_ids
from ib.services import (
    ib_apply,
    ib_approve,
    ib_reinstate,
    ib_reject,
    ib_set_parent,
    ib_suspend,
    plan_rule_add,
)
from tests.crm.factories import ClientFactory, make_staff
from tests.ib.factories import attribute, make_chain, make_ib, make_plan, rebate_plan

pytestmark = pytest.mark.django_db


def test_apply_then_approve_gives_a_plan_and_a_link():
    referrer = make_ib(plan=rebate_plan("7"))
    client = ClientFactory(first_name="Nadia")
    attribute(client, referrer)
    manager, _ = make_staff("IB Manager")

    ib = ib_apply(user=client, note="Telegram channel, 4k members")
    assert (ib.state, ib.parent_id) == ("applied", referrer.pk)  # the IB who introduced the client is its upline
    assert ib.referral_code.startswith("NADIA-")
    with pytest.raises(ApplicationError, match="plan"):
        ib_approve(ib=ib, actor=manager)
    assert IntroducingBroker.objects.get(pk=ib.pk).state == "applied"

    ib = ib_approve(ib=ib, actor=manager, plan=rebate_plan("5"))
    assert (ib.state, ib.decided_by) == ("approved", manager)
    assert ReferralLink.objects.filter(ib=ib, code=ib.referral_code).exists()
    log = StateLog.objects.for_(ib).get()
    assert (log.transition, log.by, log.description) == ("approve", manager, "application approved")


def test_apply_refuses_unknown_codes_duplicates_and_staff():
    client = ClientFactory()
    with pytest.raises(ApplicationError, match="No active IB has the referral code “NOPE”"):
        ib_apply(user=client, parent_code="NOPE")
    applied = make_ib(state="applied")
    with pytest.raises(ApplicationError, match="No active IB"):
        ib_apply(user=client, parent_code=applied.referral_code)  # not approved: not a valid upline
    assert not IntroducingBroker.objects.filter(user=client).exists()
    ib_apply(user=client)
    with pytest.raises(ApplicationError, match="already applied"):
        ib_apply(user=client)
    staff, _ = make_staff("Support")
    with pytest.raises(ApplicationError, match="Staff"):
        ib_apply(user=staff)


def test_decisions_follow_the_state_machine():
    manager, _ = make_staff("IB Manager")
    ib = make_ib(state="applied", plan=rebate_plan("5"))
    with pytest.raises(ApplicationError, match="reason"):
        ib_reject(ib=ib, actor=manager, reason=" ")
    ib_reject(ib=ib, actor=manager, reason="no website")
    with pytest.raises(ApplicationError, match="not allowed"):
        ib_approve(ib=ib, actor=manager)
    approved = make_ib(plan=rebate_plan("5"))
    ib_suspend(ib=approved, actor=manager, reason="chargebacks")
    with pytest.raises(ApplicationError, match="not allowed"):
        ib_suspend(ib=approved, actor=manager, reason="again")
    assert ib_reinstate(ib=approved, actor=manager).state == "approved"
    assert [log.transition for log in StateLog.objects.for_(approved).order_by("timestamp")] == ["suspend", "reinstate"]


def test_downline_and_ancestors_over_ten_levels_in_one_query_each(django_assert_num_queries):
    chain = make_chain([None] * 10)
    side = make_ib(parent=chain[3])
    with django_assert_num_queries(1):
        down = ib_downline(ib_id=chain[2].pk)
    assert [(row[0], row[2]) for row in down] == [
        (chain[2].pk, 0),
        (chain[3].pk, 1),
        (chain[4].pk, 2),
        (side.pk, 2),
        *[(chain[i].pk, i - 2) for i in range(5, 10)],
    ]
    with django_assert_num_queries(1):
        up = ib_ancestors(ib_id=chain[9].pk)
    assert up == [(chain[9 - level].pk, level) for level in range(10)]
    assert set(ib_downline_ids(ib_id=chain[8].pk, include_self=False)) == {chain[9].pk}


def test_moves_that_would_make_a_cycle_are_refused():
    top, middle, bottom = make_chain([None, None, None])
    with pytest.raises(ApplicationError, match="would make a cycle"):
        ib_set_parent(ib=top, parent=bottom)
    with pytest.raises(ApplicationError, match="own upline"):
        ib_set_parent(ib=middle, parent=middle)
    assert IntroducingBroker.objects.get(pk=top.pk).parent_id is None
    # The model check the admin form runs says the same.
    top.parent = bottom
    with pytest.raises(ValidationError, match="cycle"):
        top.full_clean(exclude=["state"])  # as the admin form does: the state is read-only there
    other = make_ib()
    ib_set_parent(ib=bottom, parent=other)
    assert ib_ancestors(ib_id=bottom.pk) == [(bottom.pk, 0), (other.pk, 1)]


def group(code: str) -> SymbolGroup:
    return SymbolGroup.objects.get(code=code)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ({"kind": "rebate_per_lot", "rate": "5"}, {"kind": "rebate_per_lot", "rate": "6"}, "overlap"),
        ({"kind": "rebate_per_lot", "rate": "5"}, {"kind": "spread_share", "rate": "0.3"}, "another kind"),
        (
            {"kind": "rebate_per_lot", "rate": "5"},
            {"kind": "rebate_per_lot", "rate": "6", "min_monthly_lots": Decimal("0.00")},
            "overlap",
        ),
    ],
)
def test_overlapping_rules_are_refused(first, second, message):
    plan = make_plan(model="level_rates")
    plan_rule_add(plan=plan, symbol_group=group("fx_majors"), **first)
    with pytest.raises(ApplicationError, match=message):
        plan_rule_add(plan=plan, symbol_group=group("fx_majors"), **second)
    assert CommissionRule.objects.filter(plan=plan).count() == 1


def test_rules_that_make_no_sense_are_refused_with_a_reason():
    plan = make_plan()  # difference model
    cases = [
        ({"kind": "rebate_per_lot", "rate": "5", "symbol_group": group("metals"), "level": 1}, "level 0 only"),
        ({"kind": "spread_share", "rate": "1.5", "symbol_group": group("metals")}, "fraction"),
        ({"kind": "rebate_per_lot", "rate": "-1", "symbol_group": group("metals")}, "negative"),
        ({"kind": "cpa", "rate": "100", "symbol_group": group("metals")}, "leave the symbol group empty"),
        ({"kind": "rebate_per_lot", "rate": "5"}, "Choose the symbol group"),
    ]
    for fields, message in cases:
        with pytest.raises(ApplicationError, match=message):
            plan_rule_add(plan=plan, **fields)
    plan_rule_add(plan=plan, kind="cpa", rate="100")
    with pytest.raises(ApplicationError, match="already has a CPA rule"):
        plan_rule_add(plan=plan, kind="cpa", rate="150")
    eur = make_plan(currency="EUR")
    with pytest.raises(ApplicationError, match="same currency"):
        plan_rule_add(plan=eur, kind="spread_share", rate="0.5", symbol_group=group("metals"))
    assert CommissionRule.objects.filter(plan__in=[plan, eur]).count() == 1


def test_tiers_of_one_rule_are_not_an_overlap():
    plan = make_plan()
    plan_rule_add(plan=plan, kind="rebate_per_lot", rate="5", symbol_group=group("fx_majors"))
    plan_rule_add(
        plan=plan, kind="rebate_per_lot", rate="6", symbol_group=group("fx_majors"), min_monthly_lots=Decimal("100")
    )
    assert plan.rules.count() == 2


def test_staff_change_an_ibs_terms_through_the_service_only_with_the_permission():
    from core.errors import ApplicationError
    from crm import roles
    from ib.models import IntroducingBroker
    from ib.services import ib_terms_update
    from tests.crm.factories import ClientFactory, make_staff
    from tests.ib.factories import make_ib, rebate_plan

    ib, plan = make_ib(plan=rebate_plan("5")), rebate_plan("6")
    manager, _ = make_staff(roles.IB_MANAGER)
    with pytest.raises(ApplicationError, match="may not change IB terms"):
        ib_terms_update(ib=ib, actor=ClientFactory(), plan=plan, payout_schedule="daily", review_window_days=3,
                        mask_client_emails=True)  # fmt: skip
    with pytest.raises(ApplicationError, match="payout schedule"):
        ib_terms_update(ib=ib, actor=manager, plan=plan, payout_schedule="hourly", review_window_days=3,
                        mask_client_emails=True)  # fmt: skip
    ib_terms_update(ib=ib, actor=manager, plan=plan, payout_schedule="daily", review_window_days=3,
                    mask_client_emails=True)  # fmt: skip
    saved = IntroducingBroker.objects.get(pk=ib.pk)
    assert (saved.plan_id, saved.payout_schedule, saved.review_window_days, saved.mask_client_emails) == (
        plan.pk, "daily", 3, True,
    )  # fmt: skip
