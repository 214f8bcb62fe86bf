"""Manual wallet adjustments: proposed with a reason by one person, posted only by a different one."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_fsm_log.models import StateLog

from core.errors import ApplicationError
from payments.ledger import InsufficientFunds, account_balance, client_wallet, ledger_is_balanced
from payments.models import LedgerTransaction, ManualAdjustment
from payments.services.adjustments import adjustment_approve, adjustment_propose, adjustment_reject
from tests.crm.factories import ClientFactory, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance():
    return make_staff("Finance")[0], make_staff("Finance")[0]


def test_a_goodwill_credit_needs_a_second_person(finance):
    first, second = finance
    client = ClientFactory()
    proposed = adjustment_propose(user=client, amount="25", currency="USD", reason="fee refunded", actor=first)

    with pytest.raises(ApplicationError, match="second, different"):
        adjustment_approve(adjustment=proposed, approver=first)
    assert not LedgerTransaction.objects.exists()
    posted = adjustment_approve(adjustment=proposed, approver=second)

    assert posted.state == ManualAdjustment.State.POSTED
    assert account_balance(client_wallet(user=client, currency="USD")) == Decimal("25.00")
    assert list(StateLog.objects.for_(posted).values_list("transition", "by_id")) == [("post", second.pk)]
    assert ledger_is_balanced()


def test_a_debit_beyond_the_wallet_is_refused_and_nothing_posts(finance):
    first, second = finance
    proposed = adjustment_propose(user=ClientFactory(), amount="-10", currency="USD", reason="charge", actor=first)

    with pytest.raises(InsufficientFunds):
        adjustment_approve(adjustment=proposed, approver=second)
    assert ManualAdjustment.objects.get().state == ManualAdjustment.State.PROPOSED
    assert not LedgerTransaction.objects.exists()


@pytest.mark.parametrize(("role", "message"), [("Support", "may not propose"), ("Dealing", "may not propose")])
def test_only_finance_proposes(role, message):
    staff, _ = make_staff(role)
    with pytest.raises(ApplicationError, match=message):
        adjustment_propose(user=ClientFactory(), amount="5", currency="USD", reason="x", actor=staff)


def test_a_reason_is_required_and_rejection_posts_nothing(finance):
    first, second = finance
    with pytest.raises(ApplicationError, match="needs a reason"):
        adjustment_propose(user=ClientFactory(), amount="5", currency="USD", reason=" ", actor=first)
    proposed = adjustment_propose(user=ClientFactory(), amount="5", currency="USD", reason="typo", actor=first)

    assert adjustment_reject(adjustment=proposed, actor=second, reason="duplicate").state == "rejected"
    assert not LedgerTransaction.objects.exists()


def test_the_admin_proposes_and_approves_through_the_services(client, finance):
    first, second = finance
    target = ClientFactory()
    client.force_login(first)
    client.post(
        "/admin/payments/manualadjustment/add/",
        {"user": target.pk, "amount": "40", "currency": "USD", "reason": "compensation"},
    )
    adjustment = ManualAdjustment.objects.get()
    assert adjustment.proposed_by == first

    client.post("/admin/payments/manualadjustment/", {"action": "approve", "_selected_action": [adjustment.pk]})
    assert ManualAdjustment.objects.get().state == "proposed"  # the proposer cannot approve
    client.force_login(second)
    client.post("/admin/payments/manualadjustment/", {"action": "approve", "_selected_action": [adjustment.pk]})

    assert ManualAdjustment.objects.get().state == "posted"
    assert account_balance(client_wallet(user=target, currency="USD")) == Decimal("40.00")
