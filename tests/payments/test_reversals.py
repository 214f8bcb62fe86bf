"""Refunds made at the PSP, chargebacks and won disputes: reversed once through the ledger, taken back from MT5
where the money went, alerts and holds for Compliance."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.models import WebhookEvent
from core.webhooks import webhook_process
from kyc.models import AmlAlert, ComplianceHold
from mt5bridge.manager_api import BalanceKind
from mt5bridge.models import BalanceOperation
from mt5bridge.servers import manager_for
from mt5bridge.services import balance_operation_send
from payments.ledger import account_balance, client_wallet, ledger_is_balanced, mt5_float
from payments.models import Deposit, DepositReversal, SandboxPayment
from payments.psp.sandbox import event_body, signed_headers
from payments.services import deposit_create, deposit_reversals_settle, deposits_settle_transfers
from payments.services.reversals import client_receivable
from tests.crm.factories import ClientFactory
from tests.kyc.factories import verify

pytestmark = pytest.mark.django_db
BASE = "http://testserver"


def _deliver(client, body: bytes) -> None:
    response = client.post(
        "/webhooks/psp/sandbox/", data=body, content_type="application/json", headers=signed_headers(body)
    )
    assert response.status_code == 200, response.content
    for event in WebhookEvent.objects.filter(status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED]):
        webhook_process(event_id=event.pk)


def _paid_deposit(client, user, amount="200", account=None) -> Deposit:
    deposit = deposit_create(user=user, amount=amount, currency="USD", trading_account=account, base_url=BASE)
    payment = SandboxPayment.objects.get(reference=deposit.psp_reference)
    payment.status = SandboxPayment.Status.SUCCEEDED
    payment.save()
    _deliver(client, event_body(payment))
    return Deposit.objects.get(pk=deposit.pk)


def _news(deposit: Deposit, **news) -> bytes:
    return event_body(SandboxPayment.objects.get(reference=deposit.psp_reference), news)


@pytest.fixture
def verified():
    user = ClientFactory()
    verify(user, "identity")
    return user


def test_a_refund_made_at_the_psp_reverses_once_and_in_parts(client, verified):
    deposit = _paid_deposit(client, verified)
    wallet = client_wallet(user=verified, currency="USD")
    first = _news(deposit, status="refunded", refund_id="rfd_1", refund_amount="50.00")

    _deliver(client, first)
    _deliver(client, first)  # the PSP retried: same event id
    _deliver(client, _news(deposit, status="refunded", refund_id="rfd_1", refund_amount="50.00"))  # new id, same refund

    deposit = Deposit.objects.get(pk=deposit.pk)
    assert account_balance(wallet) == Decimal("150.00")
    assert deposit.state == Deposit.State.CREDITED and deposit.reversed_amount == Decimal("50.00")
    assert DepositReversal.objects.filter(deposit=deposit).count() == 1

    _deliver(client, _news(deposit, status="refunded", refund_id="rfd_2", refund_amount="150.00"))
    deposit = Deposit.objects.get(pk=deposit.pk)
    assert deposit.state == Deposit.State.REFUNDED
    assert account_balance(wallet) == 0
    alerts = AmlAlert.objects.filter(user=verified, rule="refund")
    assert alerts.count() == 2 and {a.severity for a in alerts} == {"medium"}
    assert ledger_is_balanced()


def test_a_refund_beyond_what_is_left_takes_only_what_is_left(client, verified):
    deposit = _paid_deposit(client, verified, amount="100")
    _deliver(client, _news(deposit, status="refunded", refund_id="rfd_a", refund_amount="80.00"))
    _deliver(client, _news(deposit, status="refunded", refund_id="rfd_b", refund_amount="80.00"))
    deposit = Deposit.objects.get(pk=deposit.pk)
    assert deposit.reversed_amount == Decimal("100.00")
    assert account_balance(client_wallet(user=verified, currency="USD")) == 0
    assert ledger_is_balanced()


def test_a_refund_of_money_the_client_already_spent_becomes_a_receivable(client, verified):
    deposit = _paid_deposit(client, verified, amount="100")
    # A second deposit arrives and the wallet is spent down to 30 by a withdrawal hold elsewhere: simulate by a
    # refund larger than the wallet after part of the money left for another reversal.
    other = _paid_deposit(client, verified, amount="50")
    _deliver(client, _news(other, status="refunded", refund_id="rfd_x", refund_amount="50.00"))
    from payments.services.withdrawals import withdrawal_request

    withdrawal_request(user=verified, amount=Decimal("70"), currency="USD", method="card_refund")
    _deliver(client, _news(deposit, status="refunded", refund_id="rfd_y", refund_amount="100.00"))

    reversal = DepositReversal.objects.get(psp_reference="rfd_y")
    assert (reversal.from_wallet, reversal.unrecovered) == (Decimal("30.00"), Decimal("70.00"))
    assert account_balance(client_wallet(user=verified, currency="USD")) == 0
    assert account_balance(client_receivable(user=verified, currency="USD")) == Decimal("-70.00")
    assert ledger_is_balanced()


def test_a_chargeback_takes_the_money_back_from_mt5_and_holds_withdrawals(client, live_server_mt5):
    from tests.mt5bridge.factories import open_account

    account = open_account(live_server_mt5)
    deposit = _paid_deposit(client, account.user, amount="300", account=account)
    balance_operation_send(operation_id=deposit.balance_operation_id)
    deposits_settle_transfers()
    deposit = Deposit.objects.get(pk=deposit.pk)
    assert deposit.state == Deposit.State.COMPLETED

    body = _news(deposit, status="charged_back", dispute_id="dp_1", amount="300.00")
    _deliver(client, body)
    _deliver(client, body)

    deposit = Deposit.objects.get(pk=deposit.pk)
    reversal = DepositReversal.objects.get(deposit=deposit)
    assert deposit.state == Deposit.State.CHARGED_BACK
    assert (reversal.kind, reversal.from_wallet, reversal.from_mt5) == ("chargeback", 0, Decimal("300.00"))
    assert reversal.state == DepositReversal.State.RECOVERING
    assert ComplianceHold.objects.filter(user=account.user, blocks_withdrawals=True).exists()
    assert AmlAlert.objects.get(user=account.user, rule="chargeback").severity == "high"

    balance_operation_send(operation_id=reversal.balance_operation_id)
    assert deposit_reversals_settle() == {"recovered": 1, "unrecovered": 0}
    assert deposit_reversals_settle() == {"recovered": 0, "unrecovered": 0}
    assert manager_for(live_server_mt5).account_get(account.login).balance == 0
    assert account_balance(client_receivable(user=account.user, currency="USD")) == 0
    assert account_balance(mt5_float(account=account)) == 0
    assert ledger_is_balanced()


def test_what_mt5_refuses_stays_owed_and_raises_an_alert(client, live_server_mt5):
    from tests.mt5bridge.factories import open_account

    account = open_account(live_server_mt5)
    deposit = _paid_deposit(client, account.user, amount="300", account=account)
    balance_operation_send(operation_id=deposit.balance_operation_id)
    deposits_settle_transfers()
    # The client lost most of it trading: MT5 holds 20.
    manager_for(live_server_mt5).dealer_balance(account.login, Decimal("-280"), BalanceKind.BALANCE, "trading loss")

    _deliver(client, _news(Deposit.objects.get(pk=deposit.pk), status="charged_back", dispute_id="dp_2"))
    reversal = DepositReversal.objects.get(deposit=deposit)
    balance_operation_send(operation_id=reversal.balance_operation_id)
    assert deposit_reversals_settle() == {"recovered": 0, "unrecovered": 1}

    reversal = DepositReversal.objects.get(pk=reversal.pk)
    assert reversal.unrecovered == Decimal("300.00")
    assert account_balance(client_receivable(user=account.user, currency="USD")) == Decimal("-300.00")
    assert AmlAlert.objects.filter(user=account.user, dedup_key=f"chargeback:{reversal.pk}:unrecovered").exists()
    assert ledger_is_balanced()


def test_a_chargeback_while_the_money_is_in_flight_to_mt5_waits_and_then_applies(client, live_server_mt5):
    from tests.mt5bridge.factories import open_account

    account = open_account(live_server_mt5)
    deposit = _paid_deposit(client, account.user, amount="120", account=account)
    assert deposit.balance_operation.state == BalanceOperation.State.PENDING

    _deliver(client, _news(deposit, status="charged_back", dispute_id="dp_3"))
    event = WebhookEvent.objects.filter(payload__data__dispute_id="dp_3").get()
    assert event.status == WebhookEvent.Status.FAILED and "in flight" in event.last_error
    assert not DepositReversal.objects.exists()

    balance_operation_send(operation_id=deposit.balance_operation_id)
    webhook_process(event_id=event.pk)  # what the sweeper does on its next round
    event = WebhookEvent.objects.get(pk=event.pk)
    assert event.status == WebhookEvent.Status.DONE
    assert DepositReversal.objects.get(deposit=deposit).from_mt5 == Decimal("120.00")
    assert ledger_is_balanced()


def test_a_won_dispute_puts_the_money_back_in_the_wallet_once(client, verified):
    deposit = _paid_deposit(client, verified, amount="90")
    _deliver(client, _news(deposit, status="charged_back", dispute_id="dp_9"))
    assert account_balance(client_wallet(user=verified, currency="USD")) == 0
    won = _news(deposit, status="dispute_won", dispute_id="dp_9")
    _deliver(client, won)
    _deliver(client, _news(deposit, status="dispute_won", dispute_id="dp_9"))

    deposit = Deposit.objects.get(pk=deposit.pk)
    assert deposit.state == Deposit.State.CREDITED and deposit.reversed_amount == 0
    assert account_balance(client_wallet(user=verified, currency="USD")) == Decimal("90.00")
    assert ledger_is_balanced()


def test_a_reversal_for_a_deposit_never_credited_changes_nothing(client, verified):
    deposit = deposit_create(user=verified, amount="60", currency="USD", base_url=BASE)
    _deliver(client, _news(deposit, status="refunded", refund_id="rfd_z", refund_amount="60.00"))
    assert not DepositReversal.objects.exists()
    event = WebhookEvent.objects.get(payload__data__refund_id="rfd_z")
    assert event.status == WebhookEvent.Status.IGNORED
    assert json.loads(json.dumps(event.payload))["data"]["status"] == "refunded"


def test_finance_can_simulate_a_sandbox_chargeback_from_the_admin(
    client, verified, monkeypatch, django_capture_on_commit_callbacks
):
    """The demo door: the admin action makes the sandbox PSP send its signed webhook (delivered here through the test
    client rather than over HTTP), exactly what a real PSP would send."""
    from payments.tasks import sandbox_deliver_webhook
    from tests.crm.factories import make_staff

    deposit = _paid_deposit(client, verified, amount="75")
    sent: list[tuple] = []
    monkeypatch.setattr(sandbox_deliver_webhook, "delay", lambda *args: sent.append(args))
    staff, _ = make_staff("Finance")
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/payments/deposit/", {"action": "sandbox_chargeback", "_selected_action": [deposit.pk]}, follow=True
        )
    assert response.status_code == 200
    assert "dispute dp_" in response.content.decode()
    ((reference, news),) = sent
    assert (reference, news["status"], news["amount"]) == (deposit.psp_reference, "charged_back", "75.00")

    _deliver(client, event_body(SandboxPayment.objects.get(reference=reference), news))
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.CHARGED_BACK
    assert account_balance(client_wallet(user=verified, currency="USD")) == 0
