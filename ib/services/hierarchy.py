"""IB applications, decisions and the hierarchy (unlimited depth, never a cycle)."""

from __future__ import annotations

import re
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError
from core.fsm import apply_transition
from ib.models import ClientReferral, CommissionPlan, EngineCursor, IntroducingBroker, ReferralLink
from ib.selectors import ib_ancestor_ids


def _new_code(user) -> str:
    stem = re.sub(r"[^A-Za-z0-9]", "", (user.first_name or user.email.split("@")[0]))[:10].upper() or "IB"
    return f"{stem}-{secrets.token_hex(3).upper()}"


def _approved_ib_by_code(code: str) -> IntroducingBroker:
    ib = IntroducingBroker.objects.filter(referral_code__iexact=code.strip()).first()
    if ib is None or ib.state != IntroducingBroker.State.APPROVED:
        raise ApplicationError(f"No active IB has the referral code “{code.strip()}”.", code="unknown_code")
    return ib


def ib_apply(*, user, parent_code: str = "", note: str = "") -> IntroducingBroker:
    """A client applies to become an IB (state `applied`). The upline is the IB whose code is given, else the IB
    that introduced the client, else none. Refused for staff, for a second application, for an unknown code."""
    if user.is_staff:
        raise ApplicationError("Staff accounts cannot become IBs.", code="forbidden")
    with transaction.atomic():
        if IntroducingBroker.objects.filter(user=user).exists():
            raise ApplicationError("You have already applied to become an IB.", code="duplicate")
        if parent_code.strip():
            parent = _approved_ib_by_code(parent_code)
        else:
            referral = ClientReferral.objects.select_related("ib").filter(client=user).first()
            parent = referral.ib if referral and referral.ib.state == IntroducingBroker.State.APPROVED else None
        if parent is not None and parent.user_id == user.pk:
            raise ApplicationError("You cannot be your own upline.", code="self_referral")
        for _attempt in range(5):
            try:
                with transaction.atomic():
                    return IntroducingBroker.objects.create(
                        user=user, parent=parent, referral_code=_new_code(user), application_note=note.strip()
                    )
            except IntegrityError:
                if IntroducingBroker.objects.filter(user=user).exists():
                    raise ApplicationError("You have already applied to become an IB.", code="duplicate") from None
        raise ApplicationError("Could not allocate a referral code; please try again.", code="retry")


def _locked(ib: IntroducingBroker) -> IntroducingBroker:
    return IntroducingBroker.objects.select_for_update().get(pk=ib.pk)


def ib_approve(*, ib: IntroducingBroker, actor, plan: CommissionPlan | None = None) -> IntroducingBroker:
    """An IB Manager approves an application; the IB gets its plan and its default referral link."""
    with transaction.atomic():
        ib = _locked(ib)
        if plan is not None:
            ib.plan = plan
        if ib.plan_id is None:
            raise ApplicationError("Choose a commission plan for this IB before approving it.", code="no_plan")
        apply_transition(ib, "approve", by=actor, description="application approved")
        ib.decided_by, ib.decided_at = actor, timezone.now()
        ib.save()
        ReferralLink.objects.get_or_create(ib=ib, code=ib.referral_code, defaults={"campaign": "default"})
        return ib


def ib_reject(*, ib: IntroducingBroker, actor, reason: str) -> IntroducingBroker:
    if not reason.strip():
        raise ApplicationError("Give a reason for the rejection.", code="reason_required")
    with transaction.atomic():
        ib = _locked(ib)
        apply_transition(ib, "reject", by=actor, description=reason.strip())
        ib.decided_by, ib.decided_at = actor, timezone.now()
        ib.save()
        return ib


def ib_suspend(*, ib: IntroducingBroker, actor, reason: str) -> IntroducingBroker:
    """Stop payouts and new attributions; commissions keep accruing for the statement."""
    if not reason.strip():
        raise ApplicationError("Give a reason for the suspension.", code="reason_required")
    with transaction.atomic():
        ib = _locked(ib)
        apply_transition(ib, "suspend", by=actor, description=reason.strip())
        ib.save()
        return ib


def ib_reinstate(*, ib: IntroducingBroker, actor, reason: str = "") -> IntroducingBroker:
    with transaction.atomic():
        ib = _locked(ib)
        apply_transition(ib, "reinstate", by=actor, description=reason.strip() or "reinstated")
        ib.save()
        return ib


def ib_set_parent(*, ib: IntroducingBroker, parent: IntroducingBroker | None, actor=None) -> IntroducingBroker:
    """Move an IB (with its whole downline) under another IB, or to the top. Refuses cycles: the new upline may
    not be the IB itself or anyone below it. The hierarchy moves are serialised on one lock, so two concurrent
    moves cannot together build a cycle that neither alone would."""
    with transaction.atomic():
        # Moves are rare: serialising all of them on one lock row keeps every cycle check true at commit.
        EngineCursor.objects.get_or_create(name="hierarchy")
        EngineCursor.objects.select_for_update().get(name="hierarchy")
        if parent is not None:
            if parent.pk == ib.pk:
                raise ApplicationError("An IB cannot be its own upline.", code="cycle")
            if ib.pk in ib_ancestor_ids(ib_id=parent.pk):
                raise ApplicationError(
                    f"{parent.referral_code} is in {ib.referral_code}'s downline: moving {ib.referral_code} under it "
                    "would make a cycle.",
                    code="cycle",
                )
            if parent.state not in (IntroducingBroker.State.APPROVED, IntroducingBroker.State.SUSPENDED):
                raise ApplicationError("The new upline must be an approved IB.", code="inactive_parent")
        IntroducingBroker.objects.filter(pk=ib.pk).update(parent=parent, updated_at=timezone.now())
        ib.parent = parent
        return ib


def ib_terms_update(
    *, ib: IntroducingBroker, actor, plan: CommissionPlan | None, payout_schedule: str, review_window_days: int,
    mask_client_emails: bool,
) -> IntroducingBroker:  # fmt: skip
    """Staff change an IB's commercial terms: its plan, payout schedule, review window and email masking. The
    state and the upline have their own use cases (transitions, `ib_set_parent`)."""
    if actor is not None and not actor.has_perm("ib.change_introducingbroker"):
        raise ApplicationError("You may not change IB terms.", code="permission")
    if payout_schedule not in IntroducingBroker.PayoutSchedule.values:
        raise ApplicationError("Choose a payout schedule.")
    if review_window_days < 0:
        raise ApplicationError("A review window cannot be negative.")
    with transaction.atomic():
        IntroducingBroker.objects.filter(pk=ib.pk).update(
            plan=plan, payout_schedule=payout_schedule, review_window_days=review_window_days,
            mask_client_emails=mask_client_emails, updated_at=timezone.now(),
        )  # fmt: skip
    ib.plan, ib.payout_schedule = plan, payout_schedule
    ib.review_window_days, ib.mask_client_emails = review_window_days, mask_client_emails
    return ib
