"""The IB pages: the access matrix (no cross-downline read through any URL or export), the dashboard's content
and query budget, the application page, link creation, QR codes and the CSV statement."""

# ruff: noqa: RUF001 - statements use the multiplication and minus signs their readers expect.
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.test import Client

from ib.models import IntroducingBroker, ReferralLink
from ib.services import commissions_run
from tests.crm.factories import ClientFactory
from tests.ib.factories import attribute, make_ib, rebate_plan, round_trip, trading_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def network():
    """M (master) above S (the IB under test) and X (S's sibling); SS below S. Each has one trading client."""
    master = make_ib(plan=rebate_plan("9"), code="MASTER")
    focus = make_ib(parent=master, plan=rebate_plan("7"), code="FOCUS", mask_client_emails=False)
    sub = make_ib(parent=focus, plan=rebate_plan("5"), code="SUBSUB")
    sibling = make_ib(parent=master, plan=rebate_plan("6"), code="SIBLING")
    clients, deals = {}, {}
    for ib in (master, focus, sub, sibling):
        client = ClientFactory(email=f"client.of.{ib.referral_code.lower()}@example.com")
        attribute(client, ib)
        clients[ib.referral_code] = client
        deals[ib.referral_code] = round_trip(trading_account(client), lots="1.00")[1]
    campaign = ReferralLink.objects.create(ib=focus, code="focus-spring", campaign="Spring")
    commissions_run()
    return {"M": master, "S": focus, "SS": sub, "X": sibling, "clients": clients, "deals": deals, "link": campaign}


def as_user(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def urls(net) -> dict[str, str]:
    focus_client = net["clients"]["FOCUS"].pk
    return {
        "dashboard": "/ib/",
        "statement": "/ib/statement/",
        "statement_client": f"/ib/statement/?client={focus_client}",
        "csv": "/ib/statement.csv",
        "csv_client": f"/ib/statement.csv?client={focus_client}",
        "payouts": "/ib/payouts/",
        "qr": f"/ib/links/{net['link'].pk}/qr.svg",
        "sub_ib": f"/ib/sub-ibs/{net['SS'].pk}/",
    }


def body(response) -> str:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_access_matrix(network):
    net = network
    pages = urls(net)
    focus_email = net["clients"]["FOCUS"].email
    focus_deal = f"#{net['deals']['FOCUS'].pk}"
    plain = ClientFactory()
    expectations = {
        # viewer: {url name: expected status}; 200 pages are then checked for what they may show.
        "S": dict.fromkeys(pages, 200),
        "SS": {**dict.fromkeys(pages, 200), "qr": 404, "sub_ib": 404},
        "X": {**dict.fromkeys(pages, 200), "qr": 404, "sub_ib": 404},
        "M": {**dict.fromkeys(pages, 200), "qr": 404},
        "client": dict.fromkeys(pages, 302),
        "anonymous": dict.fromkeys(pages, 302),
    }
    users = {
        "S": net["S"].user,
        "SS": net["SS"].user,
        "X": net["X"].user,
        "M": net["M"].user,
        "client": plain,
        "anonymous": None,
    }
    for viewer, expected in expectations.items():
        browser = as_user(users[viewer])
        for name, url in pages.items():
            response = browser.get(url)
            assert response.status_code == expected[name], (viewer, name, response.status_code)
            if response.status_code == 302:
                target = "/accounts/login/" if viewer == "anonymous" else "/ib/apply/"
                assert response["Location"].startswith(target), (viewer, name)
                continue
            if name == "qr":
                continue
            text = body(response)
            # Only S itself sees its client's address in clear; nobody else sees it at all.
            assert (focus_email in text) == (viewer == "S" and name != "payouts" and name != "sub_ib"), (viewer, name)
            if viewer in ("SS", "X"):
                assert focus_deal not in text, (viewer, name)  # neither S's deals nor its client's
                assert "client.of.focus" not in text, (viewer, name)
    # Another IB's sub-IB page and an unknown one are not found either.
    assert as_user(net["S"].user).get(f"/ib/sub-ibs/{net['X'].pk}/").status_code == 404
    assert as_user(net["S"].user).get(f"/ib/sub-ibs/{net['M'].pk}/").status_code == 404
    assert as_user(net["S"].user).get("/ib/sub-ibs/999999/").status_code == 404
    assert as_user(net["SS"].user).get(f"/ib/sub-ibs/{net['S'].pk}/").status_code == 404


def test_upline_sees_overrides_with_masked_clients(network):
    net = network
    text = body(as_user(net["M"].user).get("/ib/statement/"))
    assert f"#{net['deals']['FOCUS'].pk}" in text  # M earned 2/lot on it, as an override
    assert "cl***@e***.com" in text and "client.of.focus" not in text
    assert "level 1 (client of FOCUS)" in text and "9.00 − 7.00 (best rate below) = 2.00" in text


def test_masked_emails_for_the_ibs_own_clients_when_configured(network):
    net = network
    IntroducingBroker.objects.filter(pk=net["S"].pk).update(mask_client_emails=True)
    text = body(as_user(net["S"].user).get("/ib/"))
    assert "client.of.focus" not in text and "cl***@e***.com" in text


def test_dashboard_shows_links_funnel_clients_tree_and_charts(network, django_assert_max_num_queries):
    net = network
    browser = as_user(net["S"].user)
    with django_assert_max_num_queries(30):
        response = browser.get("/ib/")
    text = body(response)
    assert response.status_code == 200
    assert "http://testserver/r/FOCUS/" in text and "http://testserver/r/focus-spring/" in text
    assert 'data-copy-target="link-' in text and f"/ib/links/{net['link'].pk}/qr.svg" in text
    assert "Link clicks" in text and "First deposit" in text
    assert net["clients"]["FOCUS"].email in text
    assert f"/ib/sub-ibs/{net['SS'].pk}/" in text  # the tree links the sub-IB
    assert f"/ib/sub-ibs/{net['X'].pk}/" not in text and "SIBLING" not in text
    assert 'id="ib-series"' in text and "vendor/chartjs/chart.umd.min.js" in text and "js/ib.js" in text
    assert "style=" not in text and "<style" not in text  # the CSP allows no inline styles


def test_statement_list_query_count_does_not_grow_with_rows(network, django_assert_max_num_queries):
    net = network
    account = trading_account(net["clients"]["FOCUS"])
    for _ in range(40):
        round_trip(account)
    commissions_run()
    browser = as_user(net["S"].user)
    with django_assert_max_num_queries(12):
        response = browser.get("/ib/statement/")
    assert response.status_code == 200 and body(response).count("lots ×") >= 40


def test_csv_statement_explains_every_row(network):
    net = network
    response = as_user(net["S"].user).get("/ib/statement.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert {(row["deal"], row["level"], row["amount"]) for row in rows} == {
        (str(net["deals"]["FOCUS"].pk), "0", "7.00"),
        (str(net["deals"]["SUBSUB"].pk), "1", "2.00"),
    }
    assert all(row["explanation"].endswith("USD.") for row in rows)
    assert Decimal(sum(Decimal(row["amount"]) for row in rows)) == Decimal("9.00")


def test_qr_code_is_an_svg_of_the_link(network):
    response = as_user(network["S"].user).get(f"/ib/links/{network['link'].pk}/qr.svg")
    assert response["Content-Type"] == "image/svg+xml" and b"<svg" in response.content


def test_link_creation_from_the_dashboard(network):
    browser = as_user(network["S"].user)
    response = browser.post("/ib/links/", {"campaign": "Telegram"}, follow=True)
    assert "Link for “Telegram” created." in body(response)
    assert network["S"].links.filter(campaign="Telegram").exists()
    response = browser.post("/ib/links/", {"campaign": "telegram"}, follow=True)
    assert "already have a link" in body(response)
    assert network["S"].links.filter(campaign__iexact="telegram").count() == 1
    assert as_user(network["SS"].user).get("/ib/links/").status_code == 405


def test_apply_page_flow():
    referrer = make_ib(plan=rebate_plan("7"), code="REFERRER")
    user = ClientFactory(first_name="Ada")
    attribute(user, referrer)
    browser = as_user(user)
    assert browser.get("/ib/").status_code == 302
    page = body(browser.get("/ib/apply/"))
    assert 'value="REFERRER"' in page  # the introducing IB is proposed as upline
    response = browser.post("/ib/apply/", {"introduced_by": "NOBODY", "note": "blog", "accept": "on"})
    assert "No active IB has the referral code “NOBODY”" in body(response)
    assert not IntroducingBroker.objects.filter(user=user).exists()
    response = browser.post("/ib/apply/", {"introduced_by": "REFERRER", "note": "FX blog", "accept": "on"}, follow=True)
    assert "being reviewed" in body(response)
    assert IntroducingBroker.objects.get(user=user).parent == referrer
    assert browser.get("/ib/").status_code == 302  # still applied: no dashboard yet


def test_suspended_ib_sees_its_dashboard_read_only(network):
    IntroducingBroker.objects.filter(pk=network["S"].pk).update(state="suspended")
    text = body(as_user(network["S"].user).get("/ib/"))
    assert "suspended" in text and "Create link" not in text


def test_statement_and_csv_show_cpa_and_adjustment_rows_beside_deal_lines(network):
    from datetime import timedelta

    from django.utils import timezone

    from ib.services import commission_adjust, plan_rule_add
    from payments.models import Deposit
    from tests.crm.factories import make_staff

    focus, client = network["S"], network["clients"]["FOCUS"]
    plan_rule_add(plan=focus.plan, kind="cpa", rate="100", cpa_min_deposit=Decimal("100"), cpa_min_lots=Decimal("1"))
    deposit = Deposit.objects.create(
        user=client, provider="sandbox", amount=Decimal("500"), currency="USD", state="credited"
    )
    Deposit.objects.filter(pk=deposit.pk).update(created_at=timezone.now() - timedelta(days=1))
    commissions_run()
    commission_adjust(
        ib=focus, amount="-2.50", currency="USD", reason="clawback, ticket #7", actor=make_staff("IB Manager")[0]
    )

    page = as_user(focus.user).get("/ib/statement/").content.decode()
    assert "CPA for a qualified first deposit" in page and client.email in page
    assert "Adjustment by staff: clawback, ticket #7" in page
    assert f"Deal #{network['deals']['FOCUS'].pk} EURUSD" in page
    rows = list(
        csv.reader(io.StringIO(b"".join(as_user(focus.user).get("/ib/statement.csv").streaming_content).decode()))
    )
    kinds = sorted(row[1] for row in rows[1:])
    assert kinds == ["adjustment", "cpa", "rebate_per_lot", "rebate_per_lot"]  # own client, and SUBSUB's one level down
