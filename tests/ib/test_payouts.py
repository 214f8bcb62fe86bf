"""Releasing accrued commissions to IB wallets through the ledger: daily or monthly, after a review window, once;
suspended IBs wait; staff adjustments with a reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_fsm_log.models import StateLog

from core.errors import ApplicationError
from ib.models import Commission, CommissionPayout
from ib.services import (
    commission_adjust,
    commissions_run,
    ib_payout_release,
    ib_reinstate,
    ib_suspend,
    payouts_release_due,
)
from payments.ledger import account_balance, client_wallet, ledger_account, ledger_is_balanced
from payments.models import LedgerAccount, LedgerTransaction
from tests.crm.factories import make_staff
from tests.ib.factories import client_with_account, make_chain, make_ib, rebate_plan, round_trip

pytestmark = pytest.mark.django_db
UTC = timezone.get_fixed_timezone(0)


def wallet(ib) -> Decimal:
    return account_balance(client_wallet(user=ib.user, currency="USD"))


def payable(ib) -> Decimal:
    return account_balance(ledger_account(kind=LedgerAccount.Kind.IB_PAYABLE, currency="USD", user=ib.user))


def earn(ib, lots: str = "1.00") -> None:
    round_trip(client_with_account(ib), lots=lots)
    commissions_run()


def test_daily_release_moves_payable_to_the_wallet_once():
    master, sub = make_chain([rebate_plan("7"), rebate_plan("5")])
    for ib in (master, sub):
        ib.payout_schedule = "daily"
        ib.save(update_fields=["payout_schedule"])
    earn(sub, "3.00")
    later = timezone.now() + timedelta(seconds=1)

    assert payouts_release_due(now=later) == 2
    assert payouts_release_due(now=later) == 0

    assert (wallet(sub), payable(sub), wallet(master), payable(master)) == (Decimal("15.00"), 0, Decimal("6.00"), 0)
    payout = CommissionPayout.objects.get(ib=sub)
    assert (payout.amount, payout.rows, payout.state, payout.ledger_key) == (
        Decimal("15.00"),
        1,
        "released",
        f"ib-payout:{payout.pk}",
    )
    assert LedgerTransaction.objects.filter(idempotency_key=payout.ledger_key).count() == 1
    assert not Commission.objects.filter(payout__isnull=True).exists()
    assert StateLog.objects.for_(payout).get().transition == "release"
    assert ledger_is_balanced()


def test_review_window_holds_commissions_back():
    ib = make_ib(plan=rebate_plan("5"), payout_schedule="daily", review_window_days=3)
    earn(ib)
    assert ib_payout_release(ib=ib, now=timezone.now() + timedelta(days=2)) == []
    assert wallet(ib) == 0
    [payout] = ib_payout_release(ib=ib, now=timezone.now() + timedelta(days=3, seconds=1))
    assert (payout.amount, wallet(ib)) == (Decimal("5.00"), Decimal("5.00"))


def test_monthly_ibs_are_paid_for_months_that_ended():
    ib = make_ib(plan=rebate_plan("5"), payout_schedule="monthly")
    earn(ib)
    now = timezone.now().astimezone(UTC)
    assert ib_payout_release(ib=ib, now=now + timedelta(minutes=5)) == []  # this month is not over
    next_month = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, 0, 5, tzinfo=UTC)
    [payout] = ib_payout_release(ib=ib, now=next_month)
    assert (payout.amount, payout.period_start, wallet(ib)) == (Decimal("5.00"), now.date(), Decimal("5.00"))


def test_suspended_ibs_accrue_but_are_not_paid_until_reinstated():
    manager, _ = make_staff("IB Manager")
    ib = make_ib(plan=rebate_plan("5"), payout_schedule="daily")
    ib_suspend(ib=ib, actor=manager, reason="review of traffic sources")
    earn(ib)  # accrues while suspended
    later = timezone.now() + timedelta(seconds=1)
    assert payouts_release_due(now=later) == 0
    assert (payable(ib), wallet(ib)) == (Decimal("5.00"), 0)
    ib_reinstate(ib=ib, actor=manager)
    assert payouts_release_due(now=later) == 1
    assert (payable(ib), wallet(ib)) == (0, Decimal("5.00"))


def test_adjustments_need_a_reason_and_are_paid_with_the_next_payout():
    finance, _ = make_staff("IB Manager")
    ib = make_ib(plan=rebate_plan("5"), payout_schedule="daily")
    earn(ib)
    for amount, reason, message in (
        ("10", " ", "reason"),
        ("0", "x", "zero"),
        ("1.005", "x", "decimals"),
        ("abc", "x", "not an amount"),
    ):
        with pytest.raises(ApplicationError, match=message):
            commission_adjust(ib=ib, amount=amount, currency="USD", reason=reason, actor=finance)
    assert not Commission.objects.filter(kind="adjustment").exists()

    row = commission_adjust(ib=ib, amount="-1.50", currency="USD", reason="scalping refund #88", actor=finance)
    assert (row.amount, row.note, row.created_by) == (Decimal("-1.50"), "scalping refund #88", finance)
    assert payable(ib) == Decimal("3.50")
    [payout] = ib_payout_release(ib=ib, now=timezone.now() + timedelta(seconds=1))
    assert (payout.amount, payout.rows, wallet(ib)) == (Decimal("3.50"), 2, Decimal("3.50"))
    assert ledger_is_balanced()


def test_a_negative_balance_is_not_paid_and_waits():
    manager, _ = make_staff("IB Manager")
    ib = make_ib(plan=rebate_plan("5"), payout_schedule="daily")
    earn(ib)
    commission_adjust(ib=ib, amount="-8.00", currency="USD", reason="clawback", actor=manager)
    assert ib_payout_release(ib=ib, now=timezone.now() + timedelta(seconds=1)) == []
    assert not CommissionPayout.objects.exists()
    assert Commission.objects.filter(payout__isnull=True).count() == 2
    assert (payable(ib), wallet(ib)) == (Decimal("-3.00"), 0)


def test_management_commands(capsys):
    from django.core.management import call_command

    ib = make_ib(plan=rebate_plan("5"), payout_schedule="daily")
    round_trip(client_with_account(ib))
    call_command("ib_commissions")
    assert "1 commission lines" in capsys.readouterr().out
    call_command("ib_commissions", "--recompute", "0", "1000")
    assert "0 missing commission lines computed." in capsys.readouterr().out
    Commission.objects.filter(ib=ib).update(created_at=timezone.now() - timedelta(minutes=1))
    call_command("ib_payouts")
    assert "1 payouts released." in capsys.readouterr().out
    assert wallet(ib) == Decimal("5.00")
