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
