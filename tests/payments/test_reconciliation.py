"""Reconciliation mends a PSP confirmation our update missed, through the idempotent service, and reports the rest."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mt5bridge.models import Deal
from mt5bridge.services import balance_operation_send, deals_import
from payments.ledger import account_balance, client_wallet, ledger_is_balanced
from payments.models import Deposit, ReconciliationReport, SandboxPayment
from payments.services import deposit_create, deposits_settle_transfers
from payments.services.reconciliation import reconcile_mt5, reconcile_psp
from tests.crm.factories import ClientFactory, make_staff
from tests.kyc.factories import verify
from tests.payments.test_deposits import BASE, _deliver, _pay

pytestmark = pytest.mark.django_db


def test_a_payment_whose_webhook_was_lost_is_credited_once_by_reconciliation(client):
    user = ClientFactory()
    verify(user)
    lost = deposit_create(user=user, amount="120", currency="USD", base_url=BASE)
    _pay(lost.psp_reference)  # the PSP took the money; its webhook never reached us (crash, outage)
    declined = deposit_create(user=user, amount="30", currency="USD", base_url=BASE)
    _pay(declined.psp_reference, "decline")

    report = reconcile_psp(provider="sandbox")
    again = reconcile_psp(provider="sandbox")

    assert Deposit.objects.get(pk=lost.pk).state == Deposit.State.CREDITED
    assert Deposit.objects.get(pk=declined.pk).state == Deposit.State.FAILED
    assert (report.checked, report.mended, report.discrepancies) == (2, 2, 0)
    assert (again.mended, again.discrepancies) == (0, 0)
    assert account_balance(client_wallet(user=user, currency="USD")) == Decimal("120.00")
    # The late webhook, when it finally arrives, changes nothing.
    _deliver(client, SandboxPayment.objects.get(reference=lost.psp_reference))
    assert account_balance(client_wallet(user=user, currency="USD")) == Decimal("120.00")
    assert ledger_is_balanced()


def test_amount_differences_and_unconfirmed_credits_are_reported(client):
    user = ClientFactory()
    verify(user)
    deposit = deposit_create(user=user, amount="80", currency="USD", base_url=BASE)
    SandboxPayment.objects.filter(reference=deposit.psp_reference).update(amount=Decimal("79.00"))

    report = reconcile_psp(provider="sandbox")

    assert report.discrepancies == 1
    assert report.items[0]["what"] == "amount mismatch"
    assert Deposit.objects.get(pk=deposit.pk).state == Deposit.State.PENDING


def test_mt5_reconciliation_agrees_after_a_deposit_and_flags_a_missing_deal(client, live_server_mt5):
    from tests.mt5bridge.factories import open_account

    account = open_account(live_server_mt5)
    deposit = deposit_create(user=account.user, amount="60", currency="USD", trading_account=account, base_url=BASE)
    _deliver(client, _pay(deposit.psp_reference))
    balance_operation_send(operation_id=Deposit.objects.get(pk=deposit.pk).balance_operation_id)
    deposits_settle_transfers()
    deals_import(server=live_server_mt5)

    clean = reconcile_mt5(server=live_server_mt5)
    assert (clean.checked, clean.discrepancies) == (1, 0)

    Deal.objects.filter(login=account.login, action=2).delete()  # as if MT5 lost the deal
    flagged = reconcile_mt5(server=live_server_mt5)
    assert flagged.discrepancies == 1
    assert flagged.items[0]["reference"] == str(account.login)


def test_reports_export_as_csv_for_finance(client):
    user = ClientFactory()
    verify(user)
    deposit = deposit_create(user=user, amount="80", currency="USD", base_url=BASE)
    SandboxPayment.objects.filter(reference=deposit.psp_reference).update(amount=Decimal("79.00"))
    report = reconcile_psp(provider="sandbox")
    finance, _ = make_staff("Finance")
    client.force_login(finance)

    response = client.post(
        "/admin/payments/reconciliationreport/", {"action": "export_csv", "_selected_action": [report.pk]}
    )

    assert response["Content-Type"] == "text/csv"
    assert "amount mismatch" in response.content.decode()
    assert ReconciliationReport.objects.count() == 1
