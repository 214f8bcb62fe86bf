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


def _staff_sign_in(browser, base, user, secret):
    import re

    from tests.crm.factories import totp_code

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base}/admin/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/.*"))
    page.fill("input[name=code]", totp_code(secret))
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/.*"))
    return page


def test_withdrawal_approved_by_two_finance_users_completes(browser, live_server, celery_eager, client):
    from payments.models import Withdrawal
    from payments.services import deposit_create
    from tests.crm.factories import make_staff
    from tests.payments.test_deposits import _deliver, _pay

    base = live_server.url
    user = ClientFactory(email="saver@example.com", first_name="Sam", last_name="Saver")
    verify(user, "identity")  # identity level: every withdrawal needs four eyes
    deposit = deposit_create(user=user, amount="1200", currency="USD", base_url=base)
    _deliver(client, _pay(deposit.psp_reference, payer="Sam Saver"))
    first, first_secret = make_staff("Finance", email="fin1@example.com")
    second, second_secret = make_staff("Finance", email="fin2@example.com")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/")
    page.goto(f"{base}/portal/withdraw/")
    page.fill("input[name=amount]", "400")
    page.check("input[name=method][value=card_refund]")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/history/")
    assert "Awaiting approval" in page.content()
    withdrawal = Withdrawal.objects.get()

    for staff, secret in ((first, first_secret), (second, second_secret)):
        admin = _staff_sign_in(browser, base, staff, secret)
        admin.goto(f"{base}/admin/payments/withdrawal/?state__exact=funds_held")
        admin.check(f"input[name=_selected_action][value='{withdrawal.pk}']")
        admin.select_option("select[name=action]", "approve")
        admin.click("button[name=index]")
        admin.wait_for_selector("ul.messagelist")

    page.goto(f"{base}/portal/history/")
    row = page.locator("tr", has_text=f"Withdrawal #{withdrawal.pk}")
    assert "Completed" in row.inner_text()
    assert Withdrawal.objects.get().second_approver_id == second.pk
