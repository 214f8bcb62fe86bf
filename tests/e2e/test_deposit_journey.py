"""A verified client opens a live account, deposits through the sandbox PSP's page, and sees the money on the
trading account. Webhook delivery, processing and the MT5 balance operation all run for real (tasks inline)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mt5bridge.servers import manager_for
from payments.models import Deposit
from tests.crm.factories import PASSWORD, ClientFactory
from tests.kyc.factories import verify

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_open_live_account_deposit_and_see_it_on_mt5(browser, live_server, live_server_mt5, celery_eager):
    base = live_server.url
    user = ClientFactory(email="trader@example.com", first_name="Tom", last_name="Trader")
    verify(user, "identity")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/")

    page.goto(f"{base}/portal/accounts/open/")
    page.check("input[name=kind][value=live]")
    page.select_option("select[name=account_type]", "standard")
    page.select_option("select[name=currency]", "USD")
    page.select_option("select[name=leverage]", "100")
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=Open")
    login = page.inner_text("h1").split()[1]

    page.goto(f"{base}/portal/deposit/")
    page.fill("input[name=amount]", "750")
    page.select_option("select[name=currency]", "USD")
    page.select_option("select[name=trading_account]", label=f"Live account {login} (USD)")
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=TEST PAYMENT PAGE")
    page.fill("input[name=cardholder]", "Tom Trader")
    page.check("input[name=outcome][value=success]")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#deposit-state")
    page.reload()
    assert page.inner_text("#deposit-state") == "Completed"

    page.goto(f"{base}/portal/accounts/")
    page.click(f"text={login}")
    page.click("text=Refresh now")
    assert "750.00" in page.inner_text(".tiles")
    assert manager_for(live_server_mt5).account_get(int(login)).balance == Decimal("750.00")
    assert Deposit.objects.get().state == Deposit.State.COMPLETED
