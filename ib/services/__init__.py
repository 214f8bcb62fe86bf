"""The IB program's use cases. This package only re-exports; see the modules."""

from ib.services.attribution import (
    client_attribute_signup,
    client_attribute_staff,
    client_attribution_check,
    client_reassign,
    conflict_resolve,
    hash_ip,
    referral_click_record,
    referral_code_resolve,
    referral_link_create,
)
from ib.services.engine import commissions_run, cpa_run
from ib.services.hierarchy import (
    ib_apply,
    ib_approve,
    ib_reinstate,
    ib_reject,
    ib_set_parent,
    ib_suspend,
    ib_terms_update,
)
from ib.services.payouts import commission_adjust, commission_adjust_check, ib_payout_release, payouts_release_due
from ib.services.plans import plan_rule_add

__all__ = [
    "client_attribute_signup",
    "client_attribute_staff",
    "client_attribution_check",
    "client_reassign",
    "commission_adjust",
    "commission_adjust_check",
    "commissions_run",
    "conflict_resolve",
    "cpa_run",
    "hash_ip",
    "ib_apply",
    "ib_approve",
    "ib_payout_release",
    "ib_reinstate",
    "ib_reject",
    "ib_set_parent",
    "ib_suspend",
    "ib_terms_update",
    "payouts_release_due",
    "plan_rule_add",
    "referral_click_record",
    "referral_code_resolve",
    "referral_link_create",
]
