"""IB daily: each IB's funnel, its own clients' money and lots, and what it earned, on the broker's trading day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from analytics.models import IbDaily
from analytics.services import analytics_backfill
from ib.models import ReferralClick, ReferralLink
from ib.services.engine import commissions_run
from kyc.models import KycCase, VerificationLevel
from tests.analytics.factories import at, deposit, withdrawal
from tests.ib.factories import attribute, make_chain, rebate_plan, round_trip, trading_account

pytestmark = pytest.mark.django_db
DAY = date(2025, 3, 10)  # Athens; the UTC window is 9 March 22:00 -> 10 March 22:00
D = Decimal


@pytest.fixture
def network(settings):
    settings.PAYMENTS_FX_TO_USD = {"USD": "1", "EUR": "1.08"}
    master, sub = make_chain([rebate_plan("7"), rebate_plan("5")])
    link = ReferralLink.objects.get(ib=sub)
    for when in ("2025-03-09 21:59", "2025-03-09 22:00", "2025-03-10 12:00"):  # the first is the 9th in Athens
        ReferralClick.objects.filter(pk=ReferralClick.objects.create(link=link, ip_hash="x").pk).update(
            created_at=at(when)
        )
    account = trading_account(_client(sub, "2025-03-10 08:00"), currency="USD")
    return master, sub, account


def _client(ib, when: str):
    from tests.crm.factories import ClientFactory

    user = ClientFactory()
    referral = attribute(user, ib)
    type(referral).objects.filter(pk=referral.pk).update(attributed_at=at(when))
    return user


def test_ib_daily_counts_the_funnel_money_lots_and_commission_exactly(network):
    master, sub, account = network
    client = account.user
    KycCase.objects.create(
        user=client, target_level=VerificationLevel.objects.get(code="identity"), state="approved",
        decided_at=at("2025-03-10 09:00"),
    )  # fmt: skip
    deposit(client, "100.00", "2025-03-10 09:30", currency="EUR")  # the first deposit: 108.00 USD
    deposit(client, "50.00", "2025-03-10 10:00")
    withdrawal(client, "20.00", "2025-03-10 11:00")
    round_trip(account, lots="2.00", hold_seconds=600, closed_at=at("2025-03-10 21:30"))  # 23:30 in Athens
    round_trip(account, lots="1.00", hold_seconds=600, closed_at=at("2025-03-10 22:30"))  # the 11th in Athens
    commissions_run()

    analytics_backfill(first=DAY, last=date(2025, 3, 11), now=at("2025-03-12 12:00"))

    row = IbDaily.objects.get(day=DAY, ib_id=sub.pk)
    assert (row.clicks, row.signups, row.verified, row.ftd_count) == (2, 1, 1, 1)
    assert (row.ftd_amount_usd, row.net_deposit_usd) == (D("108.00"), D("138.00"))  # 108 + 50 - 20
    assert (row.lots, row.commission_usd) == (D("4.00"), D("10.00"))  # both fills of the 2-lot trade; 5/lot
    upline = IbDaily.objects.get(day=DAY, ib_id=master.pk)
    assert (upline.clicks, upline.signups, upline.lots, upline.commission_usd) == (0, 0, D("0.00"), D("4.00"))
    next_day = IbDaily.objects.get(day=date(2025, 3, 11), ib_id=sub.pk)
    assert (next_day.lots, next_day.commission_usd, next_day.signups) == (D("2.00"), D("5.00"), 0)


def test_ib_daily_rebuilds_identically(network):
    commissions_run()
    analytics_backfill(first=DAY, last=DAY, now=at("2025-03-12 12:00"))
    first = list(IbDaily.objects.values_list("day", "ib_id", "clicks", "signups", "lots", "commission_usd"))
    analytics_backfill(first=DAY, last=DAY, now=at("2025-03-12 12:00"))
    assert list(IbDaily.objects.values_list("day", "ib_id", "clicks", "signups", "lots", "commission_usd")) == first
    assert first


def test_the_ib_page_ranks_ibs_by_commission(client, network, django_assert_max_num_queries):
    from crm import roles
    from tests.crm.factories import make_staff

    master, sub, account = network
    round_trip(account, lots="3.00", hold_seconds=600, closed_at=at("2025-03-10 12:00"))
    commissions_run()
    analytics_backfill(first=DAY, last=DAY, now=at("2025-03-12 12:00"))
    staff, _ = make_staff(roles.FINANCE)
    client.force_login(staff)
    with django_assert_max_num_queries(20):
        response = client.get("/staff/analytics/ibs/?first=2025-03-10&last=2025-03-10")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.index(sub.user.email) < page.index(master.user.email)  # 15.00 before 6.00
    assert "15.00" in page and "6.00" in page
