"""An IB shares its link; a client signs up through it, trades on the mock trade server; the deals are imported,
the engine runs, and the IB sees the client, the volume and the commission with its explanation."""

# ruff: noqa: RUF001 - statements use the multiplication and minus signs their readers expect.
from __future__ import annotations

import os
import re

import pytest
from django.core import mail

from ib.models import ClientReferral, Commission
from ib.selectors import commission_lines
from mt5bridge.models import Deal
from mt5bridge.services import balance_operation_create, balance_operation_send
from mt5bridge.tasks import deals_import
from tests.crm.factories import PASSWORD, ClientFactory
from tests.ib.factories import make_ib, rebate_plan
from tests.kyc.factories import verify
from tests.mt5bridge.factories import open_account

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CLIENT_EMAIL = "referred.trader@example.com"
CLIENT_PASSWORD = "Referred-pass-2026"


def _sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/")


def test_ib_link_signup_trade_and_statement(browser, live_server, live_server_mt5, mt5_mock, celery_eager, tmp_path):
    base = live_server.url
    ib_user = ClientFactory(email="partner@example.com", first_name="Paula")
    ib = make_ib(user=ib_user, plan=rebate_plan("8"), code="PAULA-01", mask_client_emails=False)

    # The IB signs in and copies its link from the dashboard.
    ib_page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    ib_page.set_default_timeout(20_000)
    _sign_in(ib_page, base, ib_user.email, PASSWORD)
    ib_page.click("nav >> text=Partners")
    ib_page.wait_for_url(f"{base}/ib/")
    link = ib_page.input_value("#links input[readonly]")
    assert link == f"{base}/r/PAULA-01/"
    ib_page.click("#links .button-copy")

    # A visitor follows it and signs up (no code typed: the first-touch cookie attributes).
    visitor = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    visitor.set_default_timeout(20_000)
    visitor.goto(link + "?utm_source=newsletter")
    visitor.wait_for_url(f"{base}/accounts/signup/")
    visitor.fill("input[name=email]", CLIENT_EMAIL)
    visitor.fill("input[name=password1]", CLIENT_PASSWORD)
    visitor.fill("input[name=password2]", CLIENT_PASSWORD)
    visitor.click("main form button[type=submit]")
    visitor.wait_for_url(f"{base}/accounts/confirm-email/")
    confirm = re.search(r"(http://\S+/accounts/confirm-email/\S+/)", mail.outbox[-1].body).group(1)
    visitor.goto(confirm)
    visitor.click("main form button[type=submit]")
    visitor.wait_for_url(f"{base}/accounts/login/")
    _sign_in(visitor, base, CLIENT_EMAIL, CLIENT_PASSWORD)
    referral = ClientReferral.objects.get(client__email=CLIENT_EMAIL)
    assert (referral.ib_id, referral.source, referral.click.utm_source) == (ib.pk, "cookie", "newsletter")

    # The client is verified, opens a live account, funds it and trades 1.25 lots on the trade server.
    client = referral.client
    verify(client, "identity")
    account = open_account(live_server_mt5, user=client)
    # The session's mock server keeps other tests' deals: import that backlog first, so the figures below are this
    # trade's alone (and a slow backlog cannot hide a failure).
    backlog = deals_import()
    assert not any(str(v).startswith("failed") for v in backlog.values()), backlog
    started = Deal.objects.order_by("-id").values_list("id", flat=True).first() or 0
    funding = balance_operation_create(account=account, amount="5000", idempotency_key=f"fund:{account.pk}")
    balance_operation_send(operation_id=funding.pk)
    opened = mt5_mock.control(
        "POST", "positions/open", {"login": account.login, "symbol": "EURUSD", "action": 0, "volume": 12500}
    )
    mt5_mock.control("POST", "positions/close", {"position": int(opened["position"])})

    # The bridge imports the deals; its signal runs the engine after the import commits.
    imported = deals_import()
    assert imported.get(live_server_mt5.name, 0) > 0, imported
    (row,) = commission_lines(row=Commission.objects.get(batch__hi__gt=started))
    assert row.deal_id > started and str(row.amount) == "10.00"

    # The IB sees the client, the volume and the commission, and the statement explains it.
    ib_page.goto(f"{base}/ib/")
    clients = ib_page.inner_text("#ib-clients")
    assert CLIENT_EMAIL in clients and "1.25" in clients and "10.00 USD" in clients
    assert "10.00" in ib_page.inner_text("#tile-earned-USD")
    ib_page.screenshot(
        path=os.environ.get("IB_SCREENSHOT_DIR", str(tmp_path)) + "/ib-journey-dashboard.png", full_page=True
    )
    ib_page.click(f"#ib-clients >> text={CLIENT_EMAIL}")
    ib_page.wait_for_url(re.compile(r".*/ib/statement/\?client=\d+"))
    explanation = ib_page.inner_text(".statement .explanation")
    assert f"Deal #{row.deal_id} EURUSD (FX majors)" in explanation
    assert f"opened by deal #{row.open_deal_id}" in explanation
    assert "1.25 lots × 8.00 USD/lot = 10.00 USD." in explanation
