"""Deposits through the sandbox PSP: checkout, signed webhooks (once, whatever arrives twice or forged), the ledger,
and the transfer to MT5."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from core.errors import ApplicationError
from core.models import WebhookEvent, WebhookRejection
from core.webhooks import webhook_process
from kyc.models import AmlAlert
from mt5bridge.models import BalanceOperation
from mt5bridge.servers import manager_for
from mt5bridge.services import balance_operation_send
from payments.ledger import account_balance, client_wallet, ledger_is_balanced
from payments.models import Deposit, LedgerAccount, SandboxPayment
from payments.psp.sandbox import event_body, signed_headers
from payments.services import deposit_create, deposits_settle_transfers
from payments.tasks import deposit_aml_check
from tests.crm.factories import ClientFactory
from tests.kyc.factories import verify

pytestmark = pytest.mark.django_db
BASE = "http://testserver"


@pytest.fixture
def verified():
    user = ClientFactory()
    verify(user, "identity")
    return user


def _pay(reference: str, outcome: str = "success", payer: str = "Jane Example") -> SandboxPayment:
    """What the sandbox PSP's page does when the client picks an outcome (without the HTTP delivery)."""
    payment = SandboxPayment.objects.get(reference=reference)
    payment.status = {"success": "succeeded", "decline": "declined"}[outcome]
    payment.payer_name = payer
    payment.save()
    return payment


def _deliver(client, payment: SandboxPayment, body: bytes | None = None, headers: dict | None = None):
    body = body or event_body(payment)
    response = client.post(
        "/webhooks/psp/sandbox/", data=body, content_type="application/json", headers=headers or signed_headers(body)
    )
    for event in WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED):
        webhook_process(event_id=event.pk)
    return response


def test_a_paid_deposit_is_credited_once_whatever_arrives_twice(client, verified):
    deposit = deposit_create(user=verified, amount="250", currency="USD", base_url=BASE)
    assert deposit.state == Deposit.State.PENDING
    assert deposit.checkout_url == f"{BASE}/psp/sandbox/pay/{deposit.psp_reference}/"
    payment = _pay(deposit.psp_reference)
    body = event_body(payment)

    first = _deliver(client, payment, body)
    replay = _deliver(client, payment, body)
    second_event = _deliver(client, payment)  # same outcome, a new event id

    assert first.status_code == replay.status_code == second_event.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.CREDITED
    assert account_balance(client_wallet(user=verified, currency="USD")) == Decimal("250.00")
    assert WebhookEvent.objects.count() == 2
    assert WebhookEvent.objects.filter(outcome="ignored: deposit already credited").count() == 1
    assert ledger_is_balanced()


def test_forged_and_malformed_webhooks_change_nothing(client, verified):
    deposit = deposit_create(user=verified, amount="100", currency="USD", base_url=BASE)
    payment = _pay(deposit.psp_reference)
    body = event_body(payment)

    forged = _deliver(client, payment, body, headers=signed_headers(body, secret="guessed"))
    tampered = _deliver(client, payment, body.replace(b"100.00", b"900.00"), headers=signed_headers(body))
    malformed_body = b'{"id": "x"}'
    malformed = _deliver(client, payment, malformed_body, headers=signed_headers(malformed_body))

    assert (forged.status_code, tampered.status_code, malformed.status_code) == (400, 400, 400)
    assert not WebhookEvent.objects.exists()
    assert WebhookRejection.objects.count() == 3
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.PENDING
    assert not LedgerAccount.objects.filter(kind="client_wallet").exists()


def test_a_decline_fails_the_deposit_and_moves_no_money(client, verified):
    deposit = deposit_create(user=verified, amount="100", currency="USD", base_url=BASE)

    _deliver(client, _pay(deposit.psp_reference, "decline"))

    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.FAILED
    assert account_balance(client_wallet(user=verified, currency="USD")) == 0


def test_an_amount_mismatch_is_held_for_finance_not_credited(client, verified):
    deposit = deposit_create(user=verified, amount="100", currency="USD", base_url=BASE)
    payment = _pay(deposit.psp_reference)
    payload = json.loads(event_body(payment))
    payload["data"]["amount"] = "99.00"
    body = json.dumps(payload).encode()

    _deliver(client, payment, body)

    deposit = Deposit.objects.get(pk=deposit.pk)
    assert deposit.state == Deposit.State.PENDING
    assert "99.00" in deposit.failure_reason
    assert account_balance(client_wallet(user=verified, currency="USD")) == 0


@pytest.mark.parametrize(
    ("amount", "message"),
    [("5", "between 10"), ("100001", "between 10"), ("2500", "up to 2000")],
)
def test_limits_and_the_kyc_level_are_checked_before_anything_is_recorded(verified, amount, message):
    with pytest.raises(ApplicationError, match=message):
        deposit_create(user=verified, amount=amount, currency="USD", base_url=BASE)
    assert not Deposit.objects.exists()


def test_an_unverified_client_cannot_deposit(client):
    user = ClientFactory()
    client.force_login(user)

    response = client.post(reverse("portal:deposit"), {"method": "card", "amount": "100", "currency": "USD"})

    assert "Verify your identity before you deposit" in response.content.decode()
    assert not Deposit.objects.exists()


def test_a_deposit_to_a_trading_account_reaches_mt5_exactly_once(client, live_server_mt5):
    from tests.mt5bridge.factories import open_account

    account = open_account(live_server_mt5)
    deposit = deposit_create(user=account.user, amount="300", currency="USD", trading_account=account, base_url=BASE)

    _deliver(client, _pay(deposit.psp_reference))
    deposit = Deposit.objects.get(pk=deposit.pk)
    assert deposit.state == Deposit.State.CREDITED
    operation = BalanceOperation.objects.get(idempotency_key=f"deposit:{deposit.pk}:mt5")
    balance_operation_send(operation_id=operation.pk)
    assert deposits_settle_transfers() == {"completed": 1, "returned": 0}

    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.COMPLETED
    assert manager_for(live_server_mt5).account_get(account.login).balance == Decimal("300.00")
    assert account_balance(client_wallet(user=account.user, currency="USD")) == 0
    mt5_float = LedgerAccount.objects.get(kind="mt5_float", key=live_server_mt5.name)
    assert account_balance(mt5_float) == Decimal("300.00")
    assert ledger_is_balanced()


def test_the_webhook_task_takes_the_deposit_to_mt5_itself_once_its_transaction_commits(
    client, live_server_mt5, django_capture_on_commit_callbacks, monkeypatch
):
    from core.tasks import webhook_process as webhook_task
    from mt5bridge import tasks as mt5_tasks
    from tests.mt5bridge.factories import open_account

    account = open_account(live_server_mt5)
    deposit = deposit_create(user=account.user, amount="300", currency="USD", trading_account=account, base_url=BASE)
    body = event_body(_pay(deposit.psp_reference))
    client.post("/webhooks/psp/sandbox/", data=body, content_type="application/json", headers=signed_headers(body))
    send_tasks = []
    monkeypatch.setattr(mt5_tasks.balance_operation_send, "apply_async", lambda *a, **k: send_tasks.append(a))

    with django_capture_on_commit_callbacks(execute=True):
        webhook_task(WebhookEvent.objects.get().pk)  # the task's body, as the worker runs it

    operation = BalanceOperation.objects.get(idempotency_key=f"deposit:{deposit.pk}:mt5")
    assert (operation.state, operation.attempts) == (BalanceOperation.State.CONFIRMED, 1)
    assert send_tasks == []  # no second task on the money's way
    assert manager_for(live_server_mt5).account_get(account.login).balance == Decimal("300.00")
    assert deposits_settle_transfers() == {"completed": 1, "returned": 0}
    assert ledger_is_balanced()


def test_a_refused_mt5_transfer_returns_the_money_to_the_wallet(client, live_server_mt5, mt5_mock):
    from tests.mt5bridge.factories import open_account

    account = open_account(live_server_mt5)
    deposit = deposit_create(user=account.user, amount="40", currency="USD", trading_account=account, base_url=BASE)
    _deliver(client, _pay(deposit.psp_reference))
    operation = BalanceOperation.objects.get(idempotency_key=f"deposit:{deposit.pk}:mt5")
    mt5_mock.faults(retcode_ratio=1.0, retcode="10019 No money", paths=["/api/trade/balance"])
    balance_operation_send(operation_id=operation.pk)
    mt5_mock.clear_faults()

    assert deposits_settle_transfers() == {"completed": 0, "returned": 1}
    assert deposits_settle_transfers() == {"completed": 0, "returned": 0}
    assert account_balance(client_wallet(user=account.user, currency="USD")) == Decimal("40.00")
    assert "in your wallet" in Deposit.objects.get(pk=deposit.pk).failure_reason
    assert ledger_is_balanced()


def test_a_large_deposit_raises_an_aml_alert_once(client):
    user = ClientFactory()
    verify(user, "full")
    deposit = deposit_create(user=user, amount="15000", currency="USD", base_url=BASE)
    _deliver(client, _pay(deposit.psp_reference, payer=f"{user.first_name} {user.last_name}"))

    assert deposit_aml_check(deposit.pk) == 1
    assert deposit_aml_check(deposit.pk) == 0
    alert = AmlAlert.objects.get()
    assert (alert.rule, alert.user_id) == ("large_deposit", user.pk)


def test_a_card_paid_by_someone_else_raises_a_payer_alert(client):
    user = ClientFactory(first_name="Kim", last_name="Client")
    verify(user, "identity")
    deposit = deposit_create(user=user, amount="100", currency="USD", base_url=BASE)
    _deliver(client, _pay(deposit.psp_reference, payer="Someone Else"))

    deposit_aml_check(deposit.pk)

    assert list(AmlAlert.objects.values_list("rule", flat=True)) == ["payer_name_mismatch"]


def test_sandbox_pages_mark_themselves_and_redirect_back(client, verified):
    deposit = deposit_create(user=verified, amount="100", currency="USD", base_url=BASE)
    page = client.get(f"/psp/sandbox/pay/{deposit.psp_reference}/")
    assert "TEST PAYMENT PAGE" in page.content.decode()

    response = client.post(f"/psp/sandbox/pay/{deposit.psp_reference}/", {"outcome": "3ds"})
    assert response["Location"] == f"/psp/sandbox/pay/{deposit.psp_reference}/3ds/"
    back = client.post(f"/psp/sandbox/pay/{deposit.psp_reference}/3ds/", {"result": "authenticate"})
    assert back["Location"] == f"{BASE}/portal/deposits/{deposit.pk}/"
    assert SandboxPayment.objects.get().status == SandboxPayment.Status.SUCCEEDED


def test_another_clients_deposit_is_not_found(client, verified):
    deposit = deposit_create(user=verified, amount="100", currency="USD", base_url=BASE)
    client.force_login(ClientFactory())

    assert client.get(reverse("portal:deposit_detail", args=[deposit.pk])).status_code == 404


def test_a_bank_wire_is_credited_when_finance_confirms_it(client, verified):
    from payments.services.deposits import deposit_confirm_wire
    from tests.crm.factories import make_staff

    client.force_login(verified)
    response = client.post(reverse("portal:deposit"), {"method": "wire", "amount": "500", "currency": "USD"})
    deposit = Deposit.objects.get()
    assert response["Location"].endswith(reverse("portal:deposit_detail", args=[deposit.pk]))
    page = client.get(reverse("portal:deposit_detail", args=[deposit.pk])).content.decode()
    assert deposit.psp_reference in page
    assert "GB33BUKB20201555555555" in page

    support, _ = make_staff("Support")
    with pytest.raises(ApplicationError, match="may not confirm"):
        deposit_confirm_wire(deposit=deposit, actor=support)
    finance, _ = make_staff("Finance")
    client.force_login(finance)
    client.post("/admin/payments/deposit/", {"action": "confirm_wire", "_selected_action": [deposit.pk]})
    client.post("/admin/payments/deposit/", {"action": "confirm_wire", "_selected_action": [deposit.pk]})

    assert Deposit.objects.get().state == Deposit.State.CREDITED
    assert account_balance(client_wallet(user=verified, currency="USD")) == Decimal("500.00")
    assert ledger_is_balanced()


def test_a_confirmed_wire_is_screened_by_the_aml_rules_once(verified, monkeypatch, django_capture_on_commit_callbacks):
    from payments.services.deposits import deposit_confirm_wire
    from tests.crm.factories import make_staff

    screened: list = []
    monkeypatch.setattr(deposit_aml_check, "apply_async", lambda args, **options: screened.append(args))
    deposit = deposit_create(user=verified, amount="500", currency="USD", provider="wire", base_url=BASE)
    finance, _ = make_staff("Finance")
    with django_capture_on_commit_callbacks(execute=True):
        assert deposit_confirm_wire(deposit=deposit, actor=finance) == "credited"
        assert deposit_confirm_wire(deposit=deposit, actor=finance).startswith("ignored")
    assert screened == [(deposit.pk,)]
