"""Manual wallet adjustments with four eyes: one person proposes with a reason, a different one approves, and only
then is the ledger posted (against the suspense account, where Finance clears it)."""

from __future__ import annotations

from django.db import transaction

from core.errors import ApplicationError
from core.fsm import apply_transition
from core.money import CurrencyError, quantize
from payments.ledger import Leg, client_wallet, ledger_account, ledger_post
from payments.models import LedgerAccount, ManualAdjustment


def adjustment_propose(*, user, amount, currency: str, reason: str, actor) -> ManualAdjustment:
    if not actor.has_perm("payments.add_manualadjustment"):
        raise ApplicationError("You may not propose wallet adjustments.", code="permission")
    if actor.pk == user.pk:
        raise ApplicationError("Nobody adjusts their own wallet.", code="permission")
    if not reason.strip():
        raise ApplicationError("A wallet adjustment needs a reason.")
    try:
        value = quantize(amount, currency)
    except (ValueError, TypeError, CurrencyError):
        raise ApplicationError("Enter an amount in a supported currency.") from None
    if value == 0:
        raise ApplicationError("Enter a non-zero amount.")
    return ManualAdjustment.objects.create(user=user, amount=value, currency=currency, reason=reason.strip(),
                                           proposed_by=actor)  # fmt: skip


def adjustment_approve(*, adjustment: ManualAdjustment, approver) -> ManualAdjustment:
    """Post the adjustment. Refused to the proposer, to anyone without the approval permission, and (for a debit)
    when the wallet does not hold the amount; in every refusal nothing is posted."""
    if not approver.has_perm("payments.approve_manualadjustment"):
        raise ApplicationError("You may not approve wallet adjustments.", code="permission")
    with transaction.atomic():
        locked = ManualAdjustment.objects.select_for_update(of=("self",)).select_related("user").get(pk=adjustment.pk)
        if locked.proposed_by_id == approver.pk or locked.user_id == approver.pk:
            raise ApplicationError("A second, different person must approve this adjustment.", code="permission")
        suspense = ledger_account(kind=LedgerAccount.Kind.SUSPENSE, currency=locked.currency, key="adjustments")
        wallet = client_wallet(user=locked.user, currency=locked.currency)
        ledger_post(
            idempotency_key=f"adjustment:{locked.pk}",
            kind="adjustment",
            description=f"Adjustment #{locked.pk}: {locked.reason[:200]}",
            legs=[Leg(suspense, -locked.amount), Leg(wallet, locked.amount)],
            created_by=approver,
        )
        locked.decided_by = approver
        apply_transition(locked, "post", by=approver, description=f"approved; proposed by {locked.proposed_by_id}")
        locked.save()
    return locked


def adjustment_reject(*, adjustment: ManualAdjustment, actor, reason: str) -> ManualAdjustment:
    if not actor.has_perm("payments.approve_manualadjustment"):
        raise ApplicationError("You may not decide wallet adjustments.", code="permission")
    with transaction.atomic():
        locked = ManualAdjustment.objects.select_for_update().get(pk=adjustment.pk)
        locked.decided_by = actor
        apply_transition(locked, "reject", by=actor, description=reason or "rejected")
        locked.save()
    return locked
