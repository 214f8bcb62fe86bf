"""Transfers between the wallet and a live MT5 account: both sides move exactly once, or neither does."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ApplicationError
from mt5bridge.models import BalanceOperation
from mt5bridge.servers import manager_for
from mt5bridge.services import balance_operation_send
from payments.ledger import Leg, account_balance, client_wallet, ledger_account, ledger_is_balanced, ledger_post
from payments.models import Transfer
from payments.services import transfer_create, transfers_settle
from tests.mt5bridge.factories import open_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded_account(live_server_mt5):
    account = open_account(live_server_mt5)
    clearing = ledger_account(kind="psp_clearing", currency="USD", key="sandbox")
    ledger_post(
        idempotency_key="seed",
        kind="deposit",
        description="seed",
        legs=[Leg(clearing, Decimal("-500")), Leg(client_wallet(user=account.user, currency="USD"), Decimal("500"))],
    )
    return account


def _wallet(account) -> Decimal:
    return account_balance(client_wallet(user=account.user, currency="USD"))


def _send(transfer):
    balance_operation_send(operation_id=transfer.balance_operation_id)
    return transfers_settle()


def test_wallet_to_account_and_back(funded_account):
    to_account = transfer_create(
        user=funded_account.user, trading_account=funded_account, amount="300", direction="to_account"
    )
    assert _wallet(funded_account) == Decimal("200.00")  # taken at once, so it cannot be spent twice
    assert _send(to_account) == {"completed": 1, "failed": 0}
    assert manager_for(funded_account.server).account_get(funded_account.login).balance == Decimal("300.00")

    back = transfer_create(
        user=funded_account.user, trading_account=funded_account, amount="120", direction="to_wallet"
    )
    assert _wallet(funded_account) == Decimal("200.00")  # credited only when MT5 confirms the debit
    assert _send(back) == {"completed": 1, "failed": 0}
    assert _wallet(funded_account) == Decimal("320.00")
    assert manager_for(funded_account.server).account_get(funded_account.login).balance == Decimal("180.00")
    assert ledger_is_balanced()


def test_more_than_the_free_margin_or_the_wallet_is_refused(funded_account):
    with pytest.raises(ApplicationError, match="at most 0"):
        transfer_create(user=funded_account.user, trading_account=funded_account, amount="1", direction="to_wallet")
    with pytest.raises(ApplicationError, match="Not enough funds"):
        transfer_create(
            user=funded_account.user, trading_account=funded_account, amount="500.01", direction="to_account"
        )
    assert not Transfer.objects.exists()
    assert not BalanceOperation.objects.filter(idempotency_key__startswith="transfer:").exists()


def test_mt5_refusal_reverses_a_transfer_to_the_account(funded_account, mt5_mock):
    transfer = transfer_create(
        user=funded_account.user, trading_account=funded_account, amount="100", direction="to_account"
    )
    mt5_mock.faults(retcode_ratio=1.0, retcode="3 Invalid parameters", paths=["/api/trade/balance"])
    try:
        assert _send(transfer) == {"completed": 0, "failed": 1}
    finally:
        mt5_mock.clear_faults()

    assert _wallet(funded_account) == Decimal("500.00")
    assert transfers_settle() == {"completed": 0, "failed": 0}
    assert ledger_is_balanced()


def test_only_the_owner_and_only_live_accounts(funded_account):
    from tests.crm.factories import ClientFactory

    with pytest.raises(ApplicationError, match="not yours"):
        transfer_create(user=ClientFactory(), trading_account=funded_account, amount="1", direction="to_account")


def _settle_all():
    """Drive every pending balance operation and the settle job until nothing moves (what the workers do)."""
    for _ in range(6):
        for op in BalanceOperation.objects.filter(state="pending"):
            balance_operation_send(operation_id=op.pk)
        transfers_settle()


def test_between_accounts_moves_the_money_once(funded_account):
    other = open_account(funded_account.server, user=funded_account.user)
    _send(
        transfer_create(user=funded_account.user, trading_account=funded_account, amount="300", direction="to_account")
    )

    moved = transfer_create(
        user=funded_account.user,
        trading_account=funded_account,
        target_account=other,
        amount="120",
        direction="between",
    )
    _settle_all()

    assert Transfer.objects.get(pk=moved.pk).state == Transfer.State.COMPLETED
    manager = manager_for(funded_account.server)
    assert manager.account_get(funded_account.login).balance == Decimal("180.00")
    assert manager.account_get(other.login).balance == Decimal("120.00")
    assert ledger_is_balanced()


def test_a_refusing_target_is_compensated_never_half_done(funded_account, mt5_mock):
    other = open_account(funded_account.server, user=funded_account.user)
    _send(
        transfer_create(user=funded_account.user, trading_account=funded_account, amount="300", direction="to_account")
    )
    moved = transfer_create(
        user=funded_account.user,
        trading_account=funded_account,
        target_account=other,
        amount="100",
        direction="between",
    )
    balance_operation_send(operation_id=moved.balance_operation_id)
    transfers_settle()  # source debited; the credit of the target is created
    second = Transfer.objects.get(pk=moved.pk).second_operation
    mt5_mock.faults(retcode_ratio=1.0, retcode="3 Invalid parameters", paths=["/api/trade/balance"])
    balance_operation_send(operation_id=second.pk)
    mt5_mock.clear_faults()
    _settle_all()

    transfer = Transfer.objects.get(pk=moved.pk)
    assert transfer.state == Transfer.State.FAILED
    assert "returned to the source" in transfer.failure_reason
    manager = manager_for(funded_account.server)
    assert manager.account_get(funded_account.login).balance == Decimal("300.00")
    assert manager.account_get(other.login).balance == Decimal("0.00")


def test_portal_transfer_form(client, funded_account):
    client.force_login(funded_account.user)

    response = client.post(
        "/portal/transfer/", {"direction": "to_account", "trading_account": funded_account.pk, "amount": "50"}
    )

    assert response.status_code == 302
    assert Transfer.objects.get().amount == Decimal("50.00")
    assert _wallet(funded_account) == Decimal("450.00")
