from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from analytics.models import AccountDayEnd
from tests.analytics.factories import account, at, client, deal, deposit, trade_server, withdrawal

# The fixture month is built as of this moment (every March day is over, in Athens too).
NOW = at("2025-04-02 12:00")


@pytest.fixture
def month(db):
    """March 2025 with the edges that matter: the EET day boundary, the switch to EEST on the 30th, a demo server,
    a second currency, failed, pending, rejected and cancelled payments, balance deals, and first deposits."""
    live = trade_server("live-1")
    demo = trade_server("demo-1", "demo")
    alice, bob, carol = client("DE"), client("GR"), client("")
    a_usd = account(alice, live)
    a_eur = account(alice, live, currency="EUR")
    a_demo = account(alice, demo)
    b_usd = account(bob, live)

    deposit(alice, "1000.10", "2025-03-03 10:00")
    deposit(alice, "0.10", "2025-03-04 09:00")
    deposit(alice, "0.20", "2025-03-04 09:05")  # 0.1 + 0.2 must be 0.30, not 0.30000000000000004
    deposit(alice, "250.00", "2025-03-05 22:30", fee="7.55")  # 00:30 on the 6th in Athens
    deposit(alice, "500.00", "2025-03-06 08:00", state="failed", fee="14.80")  # a failed payment costs no fee
    deposit(alice, "75.00", "2025-03-06 09:00", state="pending")
    # 21:59 UTC on the 5th is 23:59 in Athens (the 5th); 23:30 UTC is 01:30 on the 6th.
    deal(a_usd, "2025-03-05 21:59", volume="0.50", profit="12.34", commission="-1.75", swap="-0.10", entry=1)
    deal(a_usd, "2025-03-05 23:30", volume="1.25", profit="-5.55", commission="-4.38", action=1, entry=1)
    deal(a_usd, "2025-03-05 23:31", volume="0", profit="250.00", action=2)  # a balance deal is not trading
    deal(a_demo, "2025-03-05 23:30", volume="9.99", profit="999.00")  # demo money is not counted
    deal(a_eur, "2025-03-06 10:00", volume="0.30", profit="7.01", commission="-1.05", swap="-0.33")

    deposit(bob, "2000.00", "2025-03-10 12:00", provider="wire")
    deal(b_usd, "2025-03-11 08:00", volume="2.00", profit="-300.01", commission="-7.00", swap="-1.11")
    withdrawal(bob, "1500.00", "2025-03-12 12:00")
    withdrawal(bob, "100.00", "2025-03-12 13:00", state="rejected")
    withdrawal(bob, "50.00", "2025-03-12 14:00", state="cancelled")
    # From 03:00 on 30 March Athens keeps UTC+3: 21:30 UTC is 23:30 on the 29th but 00:30 on the 31st.
    deal(b_usd, "2025-03-29 21:30", volume="0.01", profit="0.01")
    deal(b_usd, "2025-03-30 21:30", volume="0.02", profit="0.02")

    deposit(carol, "300.00", "2025-03-20 10:00", provider="stripe")
    deposit(carol, "200.00", "2025-03-21 10:00", provider="stripe", state="completed")

    AccountDayEnd.objects.create(
        day=date(2025, 3, 6), account=a_usd, balance=Decimal("1234.56"), equity=Decimal("1200.01"),
        snapshot_at=at("2025-03-06 21:55"),
    )  # fmt: skip
    return {"alice": alice, "bob": bob, "carol": carol, "live": live, "demo": demo, "a_usd": a_usd, "b_usd": b_usd}
