"""Withdrawals from the wallet: hold, approve (automatically or four eyes), pay out (return to source first),
or give the money back when rejected or cancelled.

Money only moves through the ledger: wallet -> withdrawal hold when requested; hold -> wallet when rejected or
cancelled; hold -> PSP or bank clearing when paid out. A withdrawal never leaves funds both held and released:
each of those postings has a fixed idempotency key and they are reachable only from exclusive states.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from core.db import DecimalSum
from core.errors import ApplicationError
from core.fsm import apply_transition
from core.money import CurrencyError, quantize
from kyc.gate import Action, client_may
from kyc.services import client_compliance
from payments.ledger import Leg, client_wallet, ledger_account, ledger_post
from payments.models import Deposit, LedgerAccount, Withdrawal
from payments.psp import provider_for

IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
OPEN_WITHDRAWALS = [Withdrawal.State.REQUESTED, Withdrawal.State.FUNDS_HELD, Withdrawal.State.APPROVED,
                    Withdrawal.State.SENT, Withdrawal.State.COMPLETED]  # fmt: skip


def _hold(user, currency: str) -> LedgerAccount:
    return ledger_account(kind=LedgerAccount.Kind.WITHDRAWAL_HOLD, currency=currency, user=user)


NOT_REFUNDABLE = ("wire", "crypto")


def refundable_deposits(*, user, currency: str) -> list[tuple[Deposit, Decimal]]:
    """Card deposits that can still take money back, oldest first, with how much each can take (less what the PSP
    already refunded or charged back). Wires and crypto cannot be refunded to source, nor can a converted deposit
    take back wallet money in another currency."""
    deposits = Deposit.objects.filter(
        user=user, currency=currency, wallet_currency="", state__in=[Deposit.State.CREDITED, Deposit.State.COMPLETED]
    ).exclude(provider__in=NOT_REFUNDABLE).annotate(
        refunding=DecimalSum("refunds__amount", filter=Q(refunds__state__in=OPEN_WITHDRAWALS))
    ).order_by("created_at")  # fmt: skip
    rooms = [(d, d.amount - d.reversed_amount - (d.refunding or Decimal(0))) for d in deposits]
    return [(d, room) for d, room in rooms if room > 0]


def withdrawal_request(
    *, user, amount, currency: str, method: str, destination: str = "", requested_by=None
) -> Withdrawal:
    """Hold the money and record the request; approve it at once when the level allows automatic approval.

    Return to source: while card deposits can take money back, a withdrawal goes back to the card. Two requests
    that together exceed the wallet cannot both pass: the wallet is locked and checked inside the posting.
    """
    try:
        value = quantize(amount, currency)
    except (ValueError, TypeError, CurrencyError):
        raise ApplicationError("Enter an amount.") from None
    if value < settings.PAYMENTS_MIN_DEPOSIT:
        raise ApplicationError(f"The smallest withdrawal is {settings.PAYMENTS_MIN_DEPOSIT} {currency}.")
    decision = client_may(user=user, action=Action.WITHDRAW, amount=value)
    if not decision.allowed:
        raise ApplicationError(decision.reason, code="gate")
    refundable = refundable_deposits(user=user, currency=currency)
    source = None
    if method == Withdrawal.Method.CARD_REFUND:
        source = next((d for d, room in refundable if room >= value), None)
        if source is None:
            raise ApplicationError("No card deposit can take this amount back; choose a bank transfer.")
        destination = f"card used for deposit #{source.pk}"
    elif method == Withdrawal.Method.BANK_WIRE:
        if refundable:
            raise ApplicationError("Withdrawals go back to the card you deposited with first. Choose the card.")
        destination = re.sub(r"\s+", "", destination).upper()
        if not IBAN.match(destination):
            raise ApplicationError("Enter a valid IBAN for the bank transfer.")
    else:
        raise ApplicationError("Choose how you want to receive the money.")
    auto_limit = client_compliance(user=user).level.auto_approve_withdrawal_up_to
    with transaction.atomic():
        withdrawal = Withdrawal.objects.create(
            user=user, amount=value, currency=currency, method=method, destination=destination, source_deposit=source
        )
        ledger_post(
            idempotency_key=f"withdrawal:{withdrawal.pk}:hold",
            kind="withdrawal_hold",
            description=f"Withdrawal #{withdrawal.pk} requested",
            legs=[Leg(client_wallet(user=user, currency=currency), -value), Leg(_hold(user, currency), value)],
            created_by=requested_by or user,
        )
        apply_transition(withdrawal, "hold", by=requested_by or user, description="funds held")
        if value <= auto_limit:
            apply_transition(withdrawal, "approve", description=f"automatic: up to {auto_limit} {currency}")
            _schedule_payout(withdrawal.pk)
        withdrawal.save()
    return withdrawal


def _schedule_payout(withdrawal_id: int) -> None:
    from payments.tasks import withdrawal_pay_out

    transaction.on_commit(lambda: withdrawal_pay_out.delay(withdrawal_id))


def withdrawal_approve(*, withdrawal: Withdrawal, approver) -> Withdrawal:
    """Four eyes: the first Finance approval is recorded, a second by a different user approves. Nobody approves
    their own withdrawal."""
    if not approver.has_perm("payments.approve_withdrawal"):
        raise ApplicationError("You may not approve withdrawals.", code="permission")
    if approver.pk == withdrawal.user_id:
        raise ApplicationError("Nobody approves their own withdrawal.", code="permission")
    with transaction.atomic():
        locked = Withdrawal.objects.select_for_update().get(pk=withdrawal.pk)
        if locked.state != Withdrawal.State.FUNDS_HELD:
            raise ApplicationError(f"This withdrawal is {locked.get_state_display().lower()}; it cannot be approved.")
        if locked.first_approver_id is None:
            locked.first_approver = approver
        elif locked.first_approver_id == approver.pk:
            raise ApplicationError("A second, different Finance user must approve this withdrawal.")
        else:
            locked.second_approver = approver
            apply_transition(locked, "approve", by=approver, description="second approval")
            _schedule_payout(locked.pk)
        locked.save()
    return locked


def _release(locked: Withdrawal, transition: str, *, by, reason: str) -> Withdrawal:
    ledger_post(
        idempotency_key=f"withdrawal:{locked.pk}:release",
        kind="withdrawal_release",
        description=f"Withdrawal #{locked.pk} {transition}ed: money back to the wallet",
        legs=[Leg(_hold(locked.user, locked.currency), -locked.amount),
              Leg(client_wallet(user=locked.user, currency=locked.currency), locked.amount)],
        created_by=by,
    )  # fmt: skip
    locked.reason = reason[:255]
    apply_transition(locked, transition, by=by, description=reason)
    locked.save()
    return locked


def withdrawal_reject(*, withdrawal: Withdrawal, actor, reason: str) -> Withdrawal:
    if not (actor.has_perm("payments.approve_withdrawal") or actor.has_perm("kyc.add_compliancehold")):
        raise ApplicationError("You may not reject withdrawals.", code="permission")
    if not reason.strip():
        raise ApplicationError("Say why the withdrawal is rejected.")
    with transaction.atomic():
        locked = Withdrawal.objects.select_for_update(of=("self",)).select_related("user").get(pk=withdrawal.pk)
        if locked.state not in (Withdrawal.State.FUNDS_HELD, Withdrawal.State.APPROVED):
            raise ApplicationError(f"This withdrawal is {locked.get_state_display().lower()}; it cannot be rejected.")
        return _release(locked, "reject", by=actor, reason=reason)


def withdrawal_cancel(*, withdrawal: Withdrawal, user) -> Withdrawal:
    with transaction.atomic():
        locked = Withdrawal.objects.select_for_update(of=("self",)).select_related("user").get(pk=withdrawal.pk)
        if locked.user_id != user.pk:
            raise ApplicationError("This withdrawal is not yours.", code="not_found")
        if locked.state != Withdrawal.State.FUNDS_HELD:
            raise ApplicationError("Only a withdrawal awaiting approval can be cancelled.")
        return _release(locked, "cancel", by=user, reason="cancelled by the client")


def withdrawal_pay_out(*, withdrawal_id: int) -> Withdrawal:
    """Pay an approved withdrawal out: refund the card through its PSP (idempotent refund key), or record the wire
    for Finance. The PSP call happens outside any transaction; the ledger posting and state follow in one."""
    withdrawal = Withdrawal.objects.select_related("source_deposit", "user").get(pk=withdrawal_id)
    if withdrawal.state != Withdrawal.State.APPROVED:
        return withdrawal
    if withdrawal.method == Withdrawal.Method.CARD_REFUND:
        deposit = withdrawal.source_deposit
        reference = provider_for(deposit.provider).refund(
            reference=deposit.psp_reference, amount=withdrawal.amount, idempotency_key=f"withdrawal:{withdrawal.pk}"
        )
        clearing_key, done = deposit.provider, True
    else:
        reference, clearing_key, done = f"WIRE-{withdrawal.pk:08d}", "bank_wire", False
    with transaction.atomic():
        locked = Withdrawal.objects.select_for_update(of=("self",)).select_related("user").get(pk=withdrawal.pk)
        if locked.state != Withdrawal.State.APPROVED:
            return locked
        clearing = ledger_account(kind=LedgerAccount.Kind.PSP_CLEARING, currency=locked.currency, key=clearing_key)
        ledger_post(
            idempotency_key=f"withdrawal:{locked.pk}:payout",
            kind="withdrawal_payout",
            description=f"Withdrawal #{locked.pk} paid out ({reference})",
            legs=[Leg(_hold(locked.user, locked.currency), -locked.amount), Leg(clearing, locked.amount)],
        )
        locked.payout_reference = reference
        apply_transition(locked, "send", description=reference)
        if done:  # the sandbox PSP refunds synchronously; a wire waits for Finance to confirm it left the bank
            apply_transition(locked, "complete", description="refund confirmed by the PSP")
        locked.save()
    return locked


def withdrawal_confirm_sent(*, withdrawal: Withdrawal, actor) -> Withdrawal:
    """Finance confirms that a wire left the bank."""
    if not actor.has_perm("payments.approve_withdrawal"):
        raise ApplicationError("You may not confirm payouts.", code="permission")
    with transaction.atomic():
        locked = Withdrawal.objects.select_for_update().get(pk=withdrawal.pk)
        apply_transition(locked, "complete", by=actor, description="wire confirmed")
        locked.save()
    return locked
