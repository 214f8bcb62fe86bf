"""Releasing accrued commissions to IBs' wallets, and staff adjustments.

Accrual happens in the engine (IB payable <- commission expense). Release moves IB payable -> the IB's wallet, in
one transaction per IB: the rows released are stamped with the payout, so a rerun finds nothing left to release.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from core.errors import ApplicationError
from core.fsm import apply_transition
from core.money import currency_exponent, quantize
from ib.models import Commission, CommissionPayout, IntroducingBroker


def _cutoff(ib: IntroducingBroker, now: datetime) -> datetime:
    """Rows accrued before this moment are due: after the review window, and for monthly IBs only rows of
    months that have ended."""
    cutoff = now - timedelta(days=ib.review_window_days)
    if ib.payout_schedule == IntroducingBroker.PayoutSchedule.MONTHLY:
        month_start = now.astimezone(timezone.get_fixed_timezone(0)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        cutoff = min(cutoff, month_start)
    return cutoff


def ib_payout_release(*, ib: IntroducingBroker, now: datetime | None = None, actor=None) -> list[CommissionPayout]:
    """Release the IB's due commissions to its wallet, one payout per currency with a positive total. One
    transaction, the IB row locked. Suspended IBs are skipped (their commissions wait). Idempotent: released
    rows carry their payout, so running again releases only what accrued since."""
    from payments.ledger import Leg, client_wallet, ledger_account, ledger_post
    from payments.models import LedgerAccount

    now = now or timezone.now()
    released: list[CommissionPayout] = []
    with transaction.atomic(durable=True):
        ib = IntroducingBroker.objects.select_for_update().select_related("user").get(pk=ib.pk)
        if ib.state != IntroducingBroker.State.APPROVED:
            return released
        cutoff = _cutoff(ib, now)
        due = Commission.objects.filter(ib=ib, payout__isnull=True, created_at__lt=cutoff)
        for currency in sorted(set(due.values_list("currency", flat=True))):
            payout = CommissionPayout.objects.create(
                ib=ib, currency=currency, period_start=now.date(), period_end=now.date()
            )
            # Stamp first, then sum what was stamped: a row committed meanwhile is either in both or in neither.
            due.filter(currency=currency).update(payout=payout)
            figures = Commission.objects.filter(ib=ib, payout=payout).aggregate(
                total=Sum("amount_minor"), first=Min("created_at"), last=Max("created_at"), rows=Count("id")
            )
            total = Decimal(figures["total"] or 0).scaleb(-currency_exponent(currency))
            if total <= 0:
                # Nothing to pay (or adjustments took it below zero): leave the rows for a later payout.
                Commission.objects.filter(payout=payout).update(payout=None)
                payout.delete()
                continue
            key = f"ib-payout:{payout.pk}"
            ledger_post(
                idempotency_key=key,
                kind="ib_commission_payout",
                description=f"IB commissions released to {ib.referral_code}",
                legs=[
                    Leg(ledger_account(kind=LedgerAccount.Kind.IB_PAYABLE, currency=currency, user=ib.user), -total),
                    Leg(client_wallet(user=ib.user, currency=currency), total),
                ],
                created_by=actor,
            )
            payout.amount = quantize(total, currency)
            payout.rows = figures["rows"] or 0
            payout.period_start = figures["first"].date()
            payout.period_end = figures["last"].date()
            payout.ledger_key = key
            apply_transition(payout, "release", by=actor, description=f"{payout.rows} commission rows")
            payout.save()
            released.append(payout)
    return released


def payouts_release_due(*, now: datetime | None = None) -> int:
    """Release every approved IB's due commissions (each IB in its own transaction). Returns payouts made."""
    now = now or timezone.now()
    candidates = (
        Commission.objects.filter(payout__isnull=True, created_at__lt=now)
        .values_list("ib_id", flat=True)
        .distinct()
        .order_by("ib_id")
    )
    count = 0
    for ib in IntroducingBroker.objects.filter(pk__in=list(candidates), state=IntroducingBroker.State.APPROVED):
        count += len(ib_payout_release(ib=ib, now=now))
    return count


def commission_adjust_check(*, ib: IntroducingBroker, amount, currency: str, reason: str) -> Decimal:
    """What `commission_adjust` refuses, checked without writing (the admin's form asks it too): the amount in
    `currency`'s minor unit, or ApplicationError."""
    if not reason.strip():
        raise ApplicationError("Give a reason for the adjustment.", code="reason_required")
    try:
        value = Decimal(str(amount))
        rounded = quantize(value, currency)
    except (ValueError, ArithmeticError):
        raise ApplicationError(f"{amount} is not an amount in {currency}.", code="invalid_amount") from None
    if rounded != value:
        raise ApplicationError(f"{amount} has more decimals than {currency} allows.", code="invalid_amount")
    if rounded == 0:
        raise ApplicationError("An adjustment cannot be zero.", code="invalid_amount")
    if ib.state in (IntroducingBroker.State.APPLIED, IntroducingBroker.State.REJECTED):
        raise ApplicationError("Only approved or suspended IBs have commissions to adjust.", code="inactive")
    return rounded


def commission_adjust(*, ib: IntroducingBroker, amount, currency: str, reason: str, actor) -> Commission:
    """A staff correction of an IB's commissions (positive or negative), with a reason, accrued at once
    (IB payable against the commission expense) and released with the IB's next payout."""
    from payments.ledger import Leg, ledger_account, ledger_post
    from payments.models import LedgerAccount

    rounded = commission_adjust_check(ib=ib, amount=amount, currency=currency, reason=reason)
    with transaction.atomic():
        row = Commission.objects.create(
            ib=ib,
            level=0,
            kind=Commission.Kind.ADJUSTMENT,
            direct_ib=ib,
            deal_time=timezone.now(),
            amount_minor=int(rounded.scaleb(currency_exponent(currency))),
            currency=currency,
            note=reason.strip()[:255],
            created_by=actor,
        )
        ledger_post(
            idempotency_key=f"ib-adjustment:{row.pk}",
            kind="ib_commission_adjustment",
            description=f"IB commission adjustment for {ib.referral_code}: {reason.strip()}"[:255],
            legs=[
                Leg(ledger_account(kind=LedgerAccount.Kind.IB_PAYABLE, currency=currency, user=ib.user), rounded),
                Leg(ledger_account(kind=LedgerAccount.Kind.FEES, currency=currency, key="ib_commission"), -rounded),
            ],
            created_by=actor,
        )
        return row
