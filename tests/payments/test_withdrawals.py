"""Withdrawals: holds, four eyes, return to source, release on reject or cancel, and no double spending."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django_fsm_log.models import StateLog

from core.errors import ApplicationError
from kyc.services import compliance_hold_place
from payments.ledger import account_balance, client_wallet, ledger_is_balanced
from payments.models import Deposit, LedgerAccount, SandboxPayment, Withdrawal
from payments.services import (
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_confirm_sent,
    withdrawal_pay_out,
    withdrawal_reject,
    withdrawal_request,
)
from tests.crm.factories import ClientFactory, make_staff
from tests.kyc.factories import verify
from tests.payments.test_deposits import BASE, _deliver, _pay

pytestmark = pytest.mark.django_db


def _funded(client, amount="1000", level="full"):
    from payments.services import deposit_create

    user = ClientFactory()
    verify(user, level)
    deposit = deposit_create(user=user, amount=amount, currency="USD", base_url=BASE)
    _deliver(client, _pay(deposit.psp_reference, payer=f"{user.first_name} {user.last_name}"))
    return user, Deposit.objects.get(pk=deposit.pk)


def _wallet(user) -> Decimal:
    return account_balance(client_wallet(user=user, currency="USD"))


@pytest.fixture
def finance():
    return make_staff("Finance")[0], make_staff("Finance")[0]


def test_small_withdrawals_are_approved_automatically_and_refunded_to_the_card(client):
    user, deposit = _funded(client)

    withdrawal = withdrawal_request(user=user, amount="200", currency="USD", method="card_refund")
    assert withdrawal.state == Withdrawal.State.APPROVED  # full verification: automatic up to 1,000
    paid = withdrawal_pay_out(withdrawal_id=withdrawal.pk)

    assert paid.state == Withdrawal.State.COMPLETED
    assert SandboxPayment.objects.get(reference=deposit.psp_reference).refunded == Decimal("200.00")
    assert _wallet(user) == Decimal("800.00")
    assert withdrawal_pay_out(withdrawal_id=withdrawal.pk).state == Withdrawal.State.COMPLETED  # runs once
    assert SandboxPayment.objects.get(reference=deposit.psp_reference).refunded == Decimal("200.00")
    assert ledger_is_balanced()


def test_larger_withdrawals_need_two_different_finance_users(client, finance):
    first, second = finance
    user, _ = _funded(client, amount="5000")
    withdrawal = withdrawal_request(user=user, amount="1500", currency="USD", method="card_refund")
    assert withdrawal.state == Withdrawal.State.FUNDS_HELD

    assert withdrawal_approve(withdrawal=withdrawal, approver=first).state == Withdrawal.State.FUNDS_HELD
    with pytest.raises(ApplicationError, match="second, different"):
        withdrawal_approve(withdrawal=withdrawal, approver=first)
    approved = withdrawal_approve(withdrawal=withdrawal, approver=second)

    assert approved.state == Withdrawal.State.APPROVED
    assert list(StateLog.objects.for_(approved).values_list("transition", "by_id")) == [
        ("hold", user.pk),
        ("approve", second.pk),
    ]


def test_nobody_else_may_approve(client):
    user, _ = _funded(client, amount="5000")
    withdrawal = withdrawal_request(user=user, amount="1500", currency="USD", method="card_refund")
    support, _ = make_staff("Support")

    with pytest.raises(ApplicationError, match="may not approve"):
        withdrawal_approve(withdrawal=withdrawal, approver=support)
    with pytest.raises(ApplicationError, match="may not approve"):
        withdrawal_approve(withdrawal=withdrawal, approver=user)
    assert Withdrawal.objects.get().first_approver is None


def test_reject_and_cancel_give_the_money_back_once(client, finance):
    user, _ = _funded(client, amount="5000")
    rejected = withdrawal_request(user=user, amount="1500", currency="USD", method="card_refund")
    cancelled = withdrawal_request(user=user, amount="1200", currency="USD", method="card_refund")
    assert _wallet(user) == Decimal("2300.00")

    withdrawal_reject(withdrawal=rejected, actor=finance[0], reason="source of funds unclear")
    withdrawal_cancel(withdrawal=cancelled, user=user)

    assert _wallet(user) == Decimal("5000.00")
    with pytest.raises(ApplicationError, match="cannot be rejected"):
        withdrawal_reject(withdrawal=rejected, actor=finance[0], reason="again")
    with pytest.raises(ApplicationError, match="not yours"):
        withdrawal_cancel(withdrawal=cancelled, user=ClientFactory())
    assert _wallet(user) == Decimal("5000.00")
    hold = LedgerAccount.objects.get(kind="withdrawal_hold", user=user)
    assert account_balance(hold) == 0
    assert ledger_is_balanced()


def test_more_than_the_wallet_holds_is_refused_and_nothing_is_recorded(client):
    user, _ = _funded(client, amount="100")

    with pytest.raises(ApplicationError, match="No card deposit can take"):
        withdrawal_request(user=user, amount="100.01", currency="USD", method="card_refund")
    assert not Withdrawal.objects.exists()


def test_return_to_source_comes_before_a_wire(client, finance):
    user, _ = _funded(client, amount="300")

    with pytest.raises(ApplicationError, match="back to the card"):
        withdrawal_request(
            user=user, amount="50", currency="USD", method="bank_wire", destination="DE44500105175407324931"
        )
    withdrawal_pay_out(
        withdrawal_id=withdrawal_request(user=user, amount="300", currency="USD", method="card_refund").pk
    )
    from payments.ledger import Leg, ledger_account, ledger_post

    # Later money that did not come from a card (e.g. trading profit moved to the wallet) leaves by wire.
    ledger_post(
        idempotency_key="profit:1",
        kind="transfer_from_mt5",
        description="profit",
        legs=[
            Leg(ledger_account(kind="mt5_float", currency="USD", key="x"), Decimal("-80")),
            Leg(client_wallet(user=user, currency="USD"), Decimal("80")),
        ],
    )
    with pytest.raises(ApplicationError, match="valid IBAN"):
        withdrawal_request(user=user, amount="50", currency="USD", method="bank_wire", destination="nope")
    wire = withdrawal_request(
        user=user, amount="50", currency="USD", method="bank_wire", destination="de44 5001 0517 5407 3249 31"
    )
    sent = withdrawal_pay_out(withdrawal_id=wire.pk)
    assert (sent.state, sent.payout_reference) == (Withdrawal.State.SENT, f"WIRE-{wire.pk:08d}")
    assert withdrawal_confirm_sent(withdrawal=sent, actor=finance[0]).state == Withdrawal.State.COMPLETED


def test_the_gate_and_compliance_holds_stop_withdrawals(client):
    user, _ = _funded(client, amount="500")
    officer, _ = make_staff("Compliance")
    compliance_hold_place(user=user, reason="AML review", placed_by=officer)

    with pytest.raises(ApplicationError, match="compliance team"):
        withdrawal_request(user=user, amount="50", currency="USD", method="card_refund")
    assert not Withdrawal.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_withdrawals_exceeding_the_balance_exactly_one_succeeds(client):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so there is no race to lose")
    user, _ = _funded(client, amount="1000")
    results: list[str] = []
    barrier = threading.Barrier(2)

    def attempt():
        from django.db import connections

        try:
            barrier.wait()
            withdrawal_request(user=user, amount="700", currency="USD", method="card_refund")
            results.append("ok")
        except ApplicationError as exc:
            results.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == ["insufficient_funds", "ok"] or sorted(results) == ["invalid", "ok"]
    assert Withdrawal.objects.count() == 1
    assert _wallet(user) == Decimal("300.00")
    assert ledger_is_balanced()


def test_portal_withdrawal_and_the_admin_queue(client, finance):
    user, _ = _funded(client, amount="3000")
    client.force_login(user)

    refused = client.post(
        "/portal/withdraw/",
        {"amount": "50", "currency": "USD", "method": "bank_wire", "destination": "DE44500105175407324931"},
    )
    assert "back to the card" in refused.content.decode()
    client.post("/portal/withdraw/", {"amount": "1500", "currency": "USD", "method": "card_refund"})
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.state == Withdrawal.State.FUNDS_HELD
    history = client.get("/portal/history/?state=funds_held").content.decode()
    assert f"Withdrawal #{withdrawal.pk}" in history

    for approver in finance:
        client.force_login(approver)
        client.post("/admin/payments/withdrawal/", {"action": "approve", "_selected_action": [withdrawal.pk]})
    assert Withdrawal.objects.get().state == Withdrawal.State.APPROVED

    client.force_login(ClientFactory())
    assert client.post(f"/portal/withdrawals/{withdrawal.pk}/cancel/").status_code == 404


def test_the_client_cancels_from_the_history_page(client):
    user, _ = _funded(client, amount="3000")
    withdrawal = withdrawal_request(user=user, amount="1500", currency="USD", method="card_refund")
    client.force_login(user)

    client.post(f"/portal/withdrawals/{withdrawal.pk}/cancel/")

    assert Withdrawal.objects.get().state == Withdrawal.State.CANCELLED
    assert _wallet(user) == Decimal("3000.00")


def test_the_nightly_aml_run_sees_deposit_then_withdrawal_without_trading(client):
    from kyc.models import AmlAlert
    from payments.tasks import aml_nightly

    user, _ = _funded(client, amount="1000")
    withdrawal_pay_out(
        withdrawal_id=withdrawal_request(user=user, amount="900", currency="USD", method="card_refund").pk
    )

    assert aml_nightly() == 1
    assert list(AmlAlert.objects.values_list("rule", flat=True)) == ["deposit_then_withdrawal"]
    # That high-severity alert made the client high risk, which the high-risk rule reports on the next run, once.
    assert aml_nightly() == 1
    assert aml_nightly() == 0
    assert set(AmlAlert.objects.values_list("rule", flat=True)) == {"deposit_then_withdrawal", "high_risk_country"}
