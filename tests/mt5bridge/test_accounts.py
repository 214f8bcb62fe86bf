"""Opening and managing trading accounts through the services and the portal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from core.errors import ApplicationError
from mt5bridge.manager_api import mt5_password_generate
from mt5bridge.models import BalanceOperation, TradingAccount
from mt5bridge.servers import manager_for
from mt5bridge.services import (
    balance_operation_send,
    trading_account_change_leverage,
    trading_account_open,
    trading_account_provision,
    trading_account_reset_password,
    trading_account_reveal_password,
)
from tests.crm.factories import ClientFactory
from tests.kyc.factories import verify
from tests.mt5bridge.factories import open_account


def VerifiedClient(level: str = "identity"):
    user = ClientFactory()
    verify(user, level)
    return user


pytestmark = pytest.mark.django_db


def test_open_records_a_request_and_provisions_after_commit(live_server_mt5, django_capture_on_commit_callbacks):
    user = VerifiedClient()

    with django_capture_on_commit_callbacks() as callbacks:
        account = trading_account_open(user=user, kind="live", account_type="standard", currency="USD", leverage=100)

    assert account.state == TradingAccount.State.REQUESTED
    assert account.login == live_server_mt5.next_login
    assert len(callbacks) == 1
    provisioned = trading_account_provision(account_id=account.pk)
    assert provisioned.state == TradingAccount.State.PROVISIONED
    record = manager_for(live_server_mt5).user_get(account.login)
    assert (record.group, record.email, record.leverage) == ("real\\standard-usd", user.email, 100)


def test_provisioning_twice_creates_one_user(live_server_mt5):
    user = VerifiedClient()
    account = trading_account_open(user=user, kind="live", account_type="standard", currency="USD", leverage=100)
    # The first "user add" reached MT5 but its reply was lost: the account is still "requested" here.
    manager_for(live_server_mt5).user_add(
        login=account.login,
        group="real\\standard-usd",
        name="x",
        email=user.email,
        leverage=100,
        main_password=mt5_password_generate(),
        investor_password=mt5_password_generate(),
    )

    assert trading_account_provision(account_id=account.pk).state == TradingAccount.State.PROVISIONED
    assert trading_account_provision(account_id=account.pk).state == TradingAccount.State.PROVISIONED


def test_login_taken_by_someone_else_fails_the_account_with_the_reason(live_server_mt5):
    account = trading_account_open(
        user=VerifiedClient(), kind="live", account_type="standard", currency="USD", leverage=100
    )
    manager_for(live_server_mt5).user_add(
        login=account.login,
        group="real\\standard-usd",
        name="x",
        email="stranger@example.com",
        leverage=100,
        main_password=mt5_password_generate(),
        investor_password=mt5_password_generate(),
    )

    failed = trading_account_provision(account_id=account.pk)

    assert failed.state == TradingAccount.State.FAILED
    assert "already belongs to another user" in failed.failure_reason


def test_demo_accounts_receive_virtual_funds_exactly_once(demo_server):
    account = open_account(demo_server, leverage=500)

    operation = BalanceOperation.objects.get(account=account)
    assert (operation.idempotency_key, operation.amount) == (f"demo-initial:{account.pk}", Decimal("10000.00"))
    balance_operation_send(operation_id=operation.pk)
    assert manager_for(demo_server).account_get(account.login).balance == Decimal("10000.00")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"leverage": 500}, "not offered"),
        ({"currency": "GBP"}, "do not offer"),
        ({"account_type": "vip"}, "do not offer"),
        ({"kind": "paper"}, "live or a demo"),
    ],
)
def test_open_refuses_what_the_groups_do_not_offer(live_server_mt5, fields, message):
    request = {"kind": "live", "account_type": "standard", "currency": "USD", "leverage": 100, **fields}

    with pytest.raises(ApplicationError, match=message):
        trading_account_open(user=VerifiedClient(), **request)
    assert not TradingAccount.objects.exists()


def test_the_kyc_gate_guards_live_accounts_but_not_demo(live_server_mt5, demo_server):
    user = ClientFactory()  # email verified only

    with pytest.raises(ApplicationError, match="Verify your identity to open a live account"):
        trading_account_open(user=user, kind="live", account_type="standard", currency="USD", leverage=100)
    assert not TradingAccount.objects.filter(server=live_server_mt5).exists()
    assert trading_account_open(user=user, kind="demo", account_type="standard", currency="USD", leverage=100)

    verify(user)
    assert trading_account_open(user=user, kind="live", account_type="standard", currency="USD", leverage=100)


def test_the_appropriateness_cap_limits_live_leverage(live_server_mt5):
    from kyc.services import questionnaire_submit

    user = VerifiedClient()
    low = {
        "experience": "never",
        "margin_call": "nothing",
        "leverage_loss": "1",
        "education": "no",
        "loss_capacity": "no",
    }
    assert questionnaire_submit(user=user, answers=low).leverage_cap == 30

    with pytest.raises(ApplicationError, match="limits your leverage to 1:30"):
        trading_account_open(user=user, kind="live", account_type="standard", currency="USD", leverage=100)
    account = trading_account_open(user=user, kind="live", account_type="standard", currency="USD", leverage=30)
    assert account.leverage == 30


def test_password_is_revealed_once_and_works_on_mt5(live_server_mt5):
    account = open_account(live_server_mt5)

    password = trading_account_reveal_password(account=account, user=account.user)

    assert manager_for(live_server_mt5).password_check(account.login, password) is True
    assert manager_for(live_server_mt5).password_check(account.login, password + "x") is False
    with pytest.raises(ApplicationError, match="already shown"):
        trading_account_reveal_password(account=account, user=account.user)
    assert TradingAccount.objects.get(pk=account.pk).pending_password == ""


def test_reset_password_and_change_leverage(live_server_mt5):
    account = open_account(live_server_mt5)

    first = trading_account_reveal_password(account=account, user=account.user)
    new = trading_account_reset_password(account=account, user=account.user)
    assert manager_for(live_server_mt5).password_check(account.login, new) is True
    assert manager_for(live_server_mt5).password_check(account.login, first) is False
    assert trading_account_change_leverage(account=account, user=account.user, leverage=200).leverage == 200
    assert manager_for(live_server_mt5).user_get(account.login).leverage == 200
    with pytest.raises(ApplicationError, match="not offered"):
        trading_account_change_leverage(account=account, user=account.user, leverage=400)
    with pytest.raises(ApplicationError, match="not yours"):
        trading_account_change_leverage(account=account, user=ClientFactory(), leverage=50)


def test_portal_pages_show_only_the_clients_own_accounts(client, live_server_mt5, django_assert_max_num_queries):
    mine = open_account(live_server_mt5)
    for _ in range(3):
        open_account(live_server_mt5, user=mine.user)
    theirs = open_account(live_server_mt5)
    client.force_login(mine.user)

    with django_assert_max_num_queries(8):
        page = client.get(reverse("portal:account_list")).content.decode()
    assert str(mine.login) in page
    assert str(theirs.login) not in page
    assert client.get(reverse("portal:account_detail", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("portal:account_password", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("portal:account_leverage", args=[theirs.pk]), {"leverage": 50}).status_code == 404


def test_portal_open_account_form(client, live_server_mt5, django_capture_on_commit_callbacks):
    user = VerifiedClient()
    client.force_login(user)

    bad = client.post(
        reverse("portal:account_open"), {"kind": "live", "account_type": "standard", "currency": "EUR", "leverage": 500}
    )
    assert bad.status_code == 200
    assert "not offered" in bad.content.decode() or "valid choice" in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        good = client.post(
            reverse("portal:account_open"),
            {"kind": "live", "account_type": "standard", "currency": "USD", "leverage": 100},
        )
    account = TradingAccount.objects.get(user=user)
    assert good["Location"] == reverse("portal:account_detail", args=[account.pk])


def test_password_page_is_shown_once_and_never_cached(client, live_server_mt5):
    account = open_account(live_server_mt5)
    client.force_login(account.user)

    first = client.post(reverse("portal:account_password", args=[account.pk]), {"action": "reveal"})
    second = client.post(reverse("portal:account_password", args=[account.pk]), {"action": "reveal"})

    assert first.status_code == 200
    assert "no-store" in first["Cache-Control"]
    assert 'id="trading-password"' in first.content.decode()
    assert second.status_code == 302


def test_mt5_down_leaves_the_leverage_unchanged_with_a_clear_message(client, live_server_mt5):
    from tests.mt5bridge.conftest import free_port

    account = open_account(live_server_mt5)
    live_server_mt5.url = f"http://127.0.0.1:{free_port()}"
    live_server_mt5.save()
    client.force_login(account.user)

    response = client.post(reverse("portal:account_leverage", args=[account.pk]), {"leverage": 50}, follow=True)

    assert "not answering" in response.content.decode()
    assert TradingAccount.objects.get(pk=account.pk).leverage == 100


def test_the_portal_door_applies_the_kyc_gate(client, live_server_mt5):
    user = ClientFactory()
    client.force_login(user)

    response = client.post(
        reverse("portal:account_open"), {"kind": "live", "account_type": "standard", "currency": "USD", "leverage": 100}
    )

    assert response.status_code == 200
    assert "Verify your identity to open a live account" in response.content.decode()
    assert not TradingAccount.objects.exists()
