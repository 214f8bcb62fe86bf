"""The commission engine: exact amounts for every plan type, the override cascade on a 10-level tree, hold-time
exclusion, volume tiers, idempotent re-runs and recovery after a crash, and the accrual in the ledger."""

# ruff: noqa: RUF001 - statements use the multiplication and minus signs their readers expect.
from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ib.models import Commission, CommissionRule, CommissionRun, EngineCursor, MonthlyVolume, SymbolGroup
from ib.selectors import commission_lines, explain, ib_totals, ib_tree
from ib.services import commissions_run, plan_rule_add
from ib.services import engine as engine_module
from ib.services.engine import commissions_recompute
from payments.ledger import account_balance, ledger_account, ledger_is_balanced
from payments.models import Deposit, LedgerAccount, LedgerTransaction
from tests.crm.factories import ClientFactory, make_staff
from tests.ib.factories import (
    attribute,
    client_with_account,
    deal,
    make_chain,
    make_ib,
    make_plan,
    rebate_plan,
    round_trip,
    trade_server,
    trading_account,
)

pytestmark = pytest.mark.django_db


def by_ib(**filters) -> dict[str, Decimal]:
    rows = Commission.objects.filter(**filters).select_related("ib")
    return {row.ib.referral_code: row.amount for row in rows}


def lines(*, deal=None, **filters) -> list:
    """Every statement line (deal, IB, level) of the stored rows matching `filters`, derived as the statement does;
    each row must add up to its lines."""
    out = []
    for row in Commission.objects.filter(**filters).order_by("id"):
        found = commission_lines(row=row)
        if row.batch_id:
            assert (sum(x.amount_minor for x in found), len(found)) == (row.amount_minor, row.deals)
        out += [x for x in found if deal is None or x.deal_id == deal.pk]
    return out


def line(**filters):
    (only,) = lines(**filters)
    return only


def payable(ib) -> Decimal:
    return account_balance(ledger_account(kind=LedgerAccount.Kind.IB_PAYABLE, currency="USD", user=ib.user))


def test_rebate_per_lot_is_exact_and_explains_itself():
    ib = make_ib(plan=rebate_plan("7.35"))
    account = client_with_account(ib)
    opened, closing = round_trip(account, lots="0.07", hold_seconds=754)

    run = commissions_run()

    row = line()
    assert (row.ib_id, row.level, row.kind, row.status) == (ib.pk, 0, "rebate_per_lot", "earned")
    assert row.amount == Decimal("0.51")  # 0.07 x 7.35 = 0.5145 -> 0.51
    assert (row.deal_id, row.open_deal_id, row.hold_seconds, row.lots, row.rate) == (
        closing.pk,
        opened.pk,
        754,
        Decimal("0.07"),
        Decimal("7.35"),
    )
    assert explain(row) == (
        f"Deal #{closing.pk} EURUSD (FX majors), held 12 min 34 s (opened by deal #{opened.pk}), your own client: "
        "0.07 lots × 7.35 USD/lot = 0.51 USD."
    )
    assert run.state == CommissionRun.State.DONE and run.rows_created == 1
    assert EngineCursor.objects.get(name="deals").last_deal_id == closing.pk
    assert payable(ib) == Decimal("0.51")
    fees = ledger_account(kind=LedgerAccount.Kind.FEES, currency="USD", key="ib_commission")
    assert account_balance(fees) == Decimal("-0.51")
    assert ledger_is_balanced()


@pytest.mark.parametrize(
    ("lots", "rate", "expected"),
    [
        ("0.01", "0.5", "0.00"),  # 0.005: half to even -> 0.00
        ("0.03", "0.5", "0.02"),  # 0.015: half to even -> 0.02
        ("0.05", "0.25", "0.01"),  # 0.0125
        ("100.00", "12.3456", "1234.56"),
        ("3.33", "3.33", "11.09"),  # 11.0889
    ],
)
def test_rebate_rounds_half_to_even_at_the_cent(lots, rate, expected):
    ib = make_ib(plan=rebate_plan(rate))
    round_trip(client_with_account(ib), lots=lots)
    commissions_run()
    assert line().amount == Decimal(expected)


def test_spread_share_uses_the_groups_markup():
    # Metals carry a 10.00 USD markup per lot (seeded data); 0.33 lots x 10.00 x 35 % = 1.155 -> 1.16.
    ib = make_ib(plan=make_plan(rules={"metals": ("spread_share", "0.35")}))
    round_trip(client_with_account(ib), symbol="XAUUSD", lots="0.33")
    commissions_run()
    row = line()
    assert (row.kind, row.base, row.rate, row.amount) == (
        "spread_share",
        Decimal("10.0000"),
        Decimal("0.3500"),
        Decimal("1.16"),
    )
    assert "0.33 lots × 10.00 markup/lot × 0.35 share = 1.16 USD" in explain(row)


def test_commission_share_of_the_round_turn():
    # 3.50 charged on each side of a 1-lot position: 7.00 x 30 % = 2.10.
    ib = make_ib(plan=make_plan(rules={"fx_majors": ("commission_share", "0.30")}))
    round_trip(client_with_account(ib), lots="1.00", commission="-3.50")
    commissions_run()
    row = line()
    assert (row.base, row.amount) == (Decimal("7.00"), Decimal("2.10"))


def test_commission_share_of_a_partial_close_takes_its_part_of_the_opening_side():
    ib = make_ib(plan=make_plan(rules={"fx_majors": ("commission_share", "0.5")}))
    account = client_with_account(ib)
    deal(account, entry=0, lots="2.00", position=77, commission="-7.00", time=timezone.now() - timedelta(hours=1))
    deal(account, entry=1, action=1, lots="0.50", position=77, commission="-1.75")
    commissions_run()
    row = line()
    assert (row.base, row.amount) == (Decimal("3.50"), Decimal("1.75"))  # (1.75 + 7.00 x 0.5/2) x 50 %


def test_commission_share_needs_the_account_in_the_plans_currency():
    ib = make_ib(plan=make_plan(rules={"fx_majors": ("commission_share", "0.30")}))
    round_trip(client_with_account(ib, currency="EUR"), commission="-3.50")
    commissions_run()
    row = line()
    assert (row.status, row.amount) == ("currency", Decimal("0"))
    assert "not the plan's" in explain(row)
    assert payable(ib) == 0


def test_difference_model_master_seven_sub_five():
    master, sub = make_chain([rebate_plan("7"), rebate_plan("5")])
    round_trip(client_with_account(sub), lots="2.00")
    commissions_run()
    assert by_ib() == {sub.referral_code: Decimal("10.00"), master.referral_code: Decimal("4.00")}
    override = line(ib=master)
    assert (override.level, override.direct_ib_id, override.rule_rate, override.best_below, override.rate) == (
        1,
        sub.pk,
        Decimal("7"),
        Decimal("5"),
        Decimal("2"),
    )
    assert f"level 1 (client of {sub.referral_code})" in explain(override)
    assert "7.00 − 5.00 (best rate below) = 2.00" in explain(override)


def test_difference_model_cascade_on_a_ten_level_tree():
    rates = ["12", "9", "9.5", "7", "8", "5", "5", "3", "2.5", "1"]  # top first
    chain = make_chain([rebate_plan(rate) for rate in rates])
    _, closing = round_trip(client_with_account(chain[-1]), lots="2.37")

    commissions_run()

    got = {row.level: row.amount for row in lines(deal=closing)}
    # Each level earns its rate minus the best rate below it (nothing when it is not above): per lot
    # 1, 1.5, 0.5, 2, -, 3, -, 1.5, -, 2.5 -> x 2.37, rounded half to even.
    assert got == {
        0: Decimal("2.37"),
        1: Decimal("3.56"),
        2: Decimal("1.18"),
        3: Decimal("4.74"),
        5: Decimal("7.11"),
        7: Decimal("3.56"),
        9: Decimal("5.92"),
    }
    assert sum(got.values()) == Decimal("28.44")  # ~ 12/lot for the top rate x 2.37 lots, give or take rounding
    assert {row.ib_id for row in Commission.objects.all()} == {chain[9 - lvl].pk for lvl in got}


def test_level_rates_cascade_on_a_ten_level_tree():
    plan = make_plan(
        model="level_rates",
        rules={
            ("fx_majors", 0): ("rebate_per_lot", "7"),
            ("fx_majors", 1): ("rebate_per_lot", "2"),
            ("fx_majors", 2): ("rebate_per_lot", "1"),
            **{("fx_majors", lvl): ("rebate_per_lot", "0.25") for lvl in range(3, 9)},
        },
    )
    chain = make_chain([plan] * 10)
    _, deep = round_trip(client_with_account(chain[-1]), lots="1.00")
    _, middle = round_trip(client_with_account(chain[4]), lots="1.00")

    commissions_run()

    deep_rows = {row.level: row.amount for row in lines(deal=deep)}
    # Levels 0-8 have a rate; level 9 (the top) has none in the plan, so it earns nothing.
    assert deep_rows == {
        0: Decimal("7.00"),
        1: Decimal("2.00"),
        2: Decimal("1.00"),
        **{lvl: Decimal("0.25") for lvl in range(3, 9)},
    }
    middle_rows = {(row.ib_id, row.level) for row in lines(deal=middle)}
    assert middle_rows == {(chain[4 - lvl].pk, lvl) for lvl in range(5)}


def test_uplines_on_another_plan_model_mix():
    # A level-rates master above a difference-model sub: the master earns its level-1 override rate.
    master_plan = make_plan(
        model="level_rates",
        rules={("fx_majors", 0): ("rebate_per_lot", "6"), ("fx_majors", 1): ("rebate_per_lot", "1.5")},
    )
    master, sub = make_chain([master_plan, rebate_plan("5")])
    round_trip(client_with_account(sub), lots="1.00")
    commissions_run()
    assert by_ib() == {sub.referral_code: Decimal("5.00"), master.referral_code: Decimal("1.50")}


def test_short_hold_earns_nothing_and_says_why():
    ib = make_ib(plan=rebate_plan("5", min_hold=60))
    account = client_with_account(ib)
    _, quick = round_trip(account, hold_seconds=59)
    _, held = round_trip(account, hold_seconds=60)
    orphan = deal(account, entry=1, action=1, position=999_999)  # its opening deal was never imported

    commissions_run()

    rows = {row.deal_id: row for row in lines()}
    assert (rows[quick.pk].status, rows[quick.pk].amount, rows[quick.pk].hold_seconds) == ("short_hold", 0, 59)
    assert "below the plan's minimum hold of 60 s, so 0 USD" in explain(rows[quick.pk])
    assert (rows[held.pk].status, rows[held.pk].amount) == ("earned", Decimal("5.00"))
    assert (rows[orphan.pk].status, rows[orphan.pk].hold_seconds) == ("earned", None)
    assert "hold time unknown" in explain(rows[orphan.pk])
    assert payable(ib) == Decimal("10.00")


def test_short_hold_explained_once_at_the_ibs_own_level_uplines_get_no_zero_rows():
    # Top asks 30 s, middle 60 s, the client's own IB 60 s. A 45 s hold: the own IB's row explains the zero, the
    # middle upline (60 s too) gets no row at all, the top upline (30 s) still earns its difference.
    top, middle, own = make_chain(
        [rebate_plan("9", min_hold=30), rebate_plan("7", min_hold=60), rebate_plan("5", min_hold=60)]
    )
    account = client_with_account(own)
    _, quick = round_trip(account, lots="1.00", hold_seconds=45)
    _, held = round_trip(account, lots="1.00", hold_seconds=600)

    run = commissions_run()

    rows = {(row.deal_id, row.ib_id): row for row in lines()}
    assert set(rows) == {
        (quick.pk, own.pk),
        (quick.pk, top.pk),
        (held.pk, own.pk),
        (held.pk, middle.pk),
        (held.pk, top.pk),
    }
    assert run.rows_created == 5
    mine = rows[quick.pk, own.pk]
    assert (mine.level, mine.status, mine.amount, mine.hold_seconds) == (0, "short_hold", Decimal("0"), 45)
    assert f"Deal #{quick.pk} EURUSD" in explain(mine) and "minimum hold of 60 s, so 0 USD" in explain(mine)
    topped = rows[quick.pk, top.pk]
    assert (topped.level, topped.status, topped.amount) == (2, "earned", Decimal("2.00"))  # 9 - best below 7
    assert (payable(own), payable(middle), payable(top)) == (Decimal("5.00"), Decimal("2.00"), Decimal("4.00"))
    assert ledger_is_balanced()
    # Commissionable lots mean the same at every level: the short hold counts for nobody whose minimum it missed.
    lots = {ib.pk: ib_totals(ib=ib)[0].lots for ib in (own, middle, top)}
    assert lots == {own.pk: Decimal("1.00"), middle.pk: Decimal("1.00"), top.pk: Decimal("2.00")}
    assert ib_tree(ib=top).children[0].children[0].lots == Decimal("2.00")  # through own, two levels down

    EngineCursor.objects.filter(name="deals").update(last_deal_id=0)
    assert commissions_run().rows_created == 0  # still idempotent: the missing zero rows are not "missing"
    assert commissions_recompute(from_deal_id=0, to_deal_id=10**9) == 0


def test_accrual_equals_the_rows_it_posts_for_every_batch():
    # On PostgreSQL the batch sums what it inserted in the same statement; on SQLite it reads the rows back.
    master, sub = make_chain([rebate_plan("7.35"), rebate_plan("5.10")])
    account = client_with_account(sub)
    for lots in ("0.07", "1.33", "2.50", "0.01", "3.99"):
        round_trip(account, lots=lots, hold_seconds=120)
    commissions_run(batch_size=3)
    for ib in (master, sub):
        rows = sum((row.amount for row in lines(ib=ib)), Decimal(0))
        assert rows > 0 and payable(ib) == rows
    assert ledger_is_balanced()


def test_only_closing_trade_deals_of_attributed_clients_with_a_mapped_symbol_earn():
    ib = make_ib(plan=rebate_plan("5"))
    account = client_with_account(ib)
    deal(account, entry=0)  # an open position earns nothing yet
    deal(account, entry=0, action=2, symbol="")  # a balance deal
    round_trip(account, symbol="XAUUSD")  # metals: no rule in this plan
    round_trip(account, symbol="FOOBAR")  # not in any symbol group
    round_trip(trading_account(ClientFactory()))  # a client nobody introduced
    _, counted = round_trip(account)
    commissions_run()
    assert [row.deal_id for row in lines()] == [counted.pk]


def test_rerun_and_recompute_are_harmless():
    master, sub = make_chain([rebate_plan("7"), rebate_plan("5")])
    account = client_with_account(sub)
    for _ in range(3):
        round_trip(account, lots="1.00")
    commissions_run()
    rows, transactions = Commission.objects.count(), LedgerTransaction.objects.count()

    commissions_run()  # nothing new after the cursor
    EngineCursor.objects.filter(name="deals").update(last_deal_id=0)
    again = commissions_run()  # the whole history again, as after a lost cursor
    assert commissions_recompute(from_deal_id=0, to_deal_id=10**9) == 0

    assert again.rows_created == 0
    assert (Commission.objects.count(), LedgerTransaction.objects.count()) == (rows, transactions)
    assert (payable(sub), payable(master)) == (Decimal("15.00"), Decimal("6.00"))


def test_a_crash_mid_run_loses_nothing_and_pays_nothing_twice(monkeypatch):
    ib = make_ib(plan=rebate_plan("5"))
    account = client_with_account(ib)
    closings = [round_trip(account)[1] for _ in range(4)]  # deal ids: open, close, open, close, ...
    real = engine_module._post_accruals
    calls = {"n": 0}

    def crash_on_second_batch(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker lost")
        return real(**kwargs)

    monkeypatch.setattr(engine_module, "_post_accruals", crash_on_second_batch)
    first_id = closings[0].pk - 1
    EngineCursor.objects.create(name="deals", last_deal_id=first_id - 1)
    with pytest.raises(RuntimeError):
        commissions_run(batch_size=4)
    failed = CommissionRun.objects.get()
    assert failed.state == CommissionRun.State.FAILED and "worker lost" in failed.error
    assert len(lines()) == 2  # the first batch (two positions) committed, the second rolled back
    assert payable(ib) == Decimal("10.00")

    monkeypatch.setattr(engine_module, "_post_accruals", real)
    commissions_run(batch_size=4)
    assert sorted(row.deal_id for row in lines()) == [d.pk for d in closings]
    assert payable(ib) == Decimal("20.00")
    assert ledger_is_balanced()


def test_volume_tier_from_last_months_downline_volume():
    plan = make_plan()
    for threshold, rate in (("0", "5"), ("10", "6"), ("50", "8")):
        plan_rule_add(
            plan=plan,
            kind="rebate_per_lot",
            rate=rate,
            level=0,
            min_monthly_lots=Decimal(threshold),
            symbol_group=SymbolGroup.objects.get(code="fx_majors"),
        )
    master, sub = make_chain([plan, rebate_plan("4")])
    account = client_with_account(sub)
    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    round_trip(account, lots="12.00", closed_at=month_start - timedelta(days=3))  # last month: 12 lots
    _, this_month = round_trip(account, lots="1.00")

    commissions_run()

    last_month = (month_start - timedelta(days=3)).strftime("%Y-%m")
    assert MonthlyVolume.objects.get(ib=master, month=last_month).centilots == 1200
    # Last month's own deal used the tier of the month before (no volume): 5 - 4 = 1 per lot on 12 lots.
    assert Commission.objects.get(ib=master, lots=Decimal("12.00")).amount == Decimal("12.00")
    # This month: 12 lots last month reach the 10-lot tier: 6 - 4 = 2.
    row = line(ib=master, deal=this_month)
    assert (row.rule_rate, row.amount) == (Decimal("6"), Decimal("2.00"))
    assert CommissionRule.objects.get(pk=row.rule_id).min_monthly_lots == Decimal("10")


def _deposit(user, amount: str, *, days_ago: int = 0, state: str = "credited") -> Deposit:
    item = Deposit.objects.create(user=user, provider="sandbox", amount=Decimal(amount), currency="USD", state=state)
    Deposit.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return item


def test_cpa_on_a_qualified_first_deposit_once():
    master_plan, sub_plan = rebate_plan("7"), rebate_plan("5")
    for plan, amount in ((master_plan, "300"), (sub_plan, "250")):
        plan_rule_add(
            plan=plan,
            kind="cpa",
            rate=amount,
            cpa_min_deposit=Decimal("200"),
            cpa_min_lots=Decimal("1.00"),
            cpa_within_days=30,
        )
    master, sub = make_chain([master_plan, sub_plan])
    qualified, small, idle = (client_with_account(sub) for _ in range(3))
    _deposit(qualified.user, "500", days_ago=10)
    _deposit(qualified.user, "50", days_ago=2)  # not the first
    round_trip(qualified, lots="0.60")
    round_trip(qualified, lots="0.40")
    _deposit(small.user, "150", days_ago=5)  # below the minimum deposit
    round_trip(small, lots="5.00")
    _deposit(idle.user, "900", days_ago=3)
    round_trip(idle, lots="0.99")  # below the minimum volume

    commissions_run()
    commissions_run()

    cpa = Commission.objects.filter(kind="cpa")
    assert {(row.ib_id, row.level, row.client_id, row.amount) for row in cpa} == {
        (sub.pk, 0, qualified.user_id, Decimal("250.00")),
        (master.pk, 1, qualified.user_id, Decimal("50.00")),  # difference model: 300 - 250
    }
    row = cpa.get(ib=sub)
    assert (row.lots, row.base) == (Decimal("1.00"), Decimal("500.0000"))
    assert payable(sub) == Decimal("250.00") + Decimal("6.99") * 5  # CPA + rebates on all 6.99 lots traded
    assert ledger_is_balanced()


def test_cpa_volume_must_come_within_the_window():
    plan = rebate_plan("5")
    plan_rule_add(
        plan=plan, kind="cpa", rate="100", cpa_min_deposit=Decimal("100"), cpa_min_lots=Decimal("1"), cpa_within_days=7
    )
    ib = make_ib(plan=plan)
    account = client_with_account(ib)
    _deposit(account.user, "100", days_ago=20)
    round_trip(account, lots="2.00")  # traded today: 20 days after the deposit, outside the 7-day window
    commissions_run()
    assert not Commission.objects.filter(kind="cpa").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lots=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2),
    master=st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=4),
    sub=st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=4),
)
def test_amounts_match_decimal_arithmetic_exactly(lots, master, sub):
    Commission.objects.all().delete()
    top, below = make_chain([rebate_plan(str(master)), rebate_plan(str(sub))])
    round_trip(client_with_account(below), lots=str(lots))
    commissions_run()

    def cents(value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)

    expected = {}
    if sub > 0:
        expected[below.pk] = cents(lots * sub)
    if master > sub:
        expected[top.pk] = cents(lots * (master - sub))
    got = {row.ib_id: row.amount for row in lines(ib__in=[top.pk, below.pk])}
    assert got == expected


def test_demo_accounts_earn_nothing():
    ib = make_ib(plan=rebate_plan("5"))
    client = ClientFactory()
    attribute(client, ib)
    demo = trade_server("demo-ib")
    type(demo).objects.filter(pk=demo.pk).update(kind="demo")
    round_trip(trading_account(client, server=demo))
    commissions_run()
    assert not Commission.objects.exists()


def test_a_reassigned_clients_deals_stay_with_the_ib_they_were_imported_under():
    # Deals imported before the reassignment earn for the old IB even when the engine computes them afterwards;
    # deals imported after it earn for the new one. Run before or after, the answer is the same.
    from ib.services import client_reassign

    old, new = make_ib(plan=rebate_plan("5")), make_ib(plan=rebate_plan("3"))
    account = client_with_account(old)
    _, before = round_trip(account, lots="1.00")
    client_reassign(client=account.user, ib=new, reason="client asked", actor=make_staff("IB Manager")[0])
    _, after = round_trip(account, lots="1.00")

    commissions_run()

    assert {(row.deal_id, row.ib_id, row.amount) for row in lines()} == {
        (before.pk, old.pk, Decimal("5.00")),
        (after.pk, new.pk, Decimal("3.00")),
    }
    assert (payable(old), payable(new)) == (Decimal("5.00"), Decimal("3.00"))


def test_rows_sum_their_lines_across_days_symbols_statuses_and_batches():
    # Many deals over several broker days, two symbols, short and long holds, small batches: every stored row is
    # exactly the sum of the lines the statement derives for it, and the statement shows each line once.
    from ib.selectors import ib_statement

    master, sub = make_chain([rebate_plan("7", min_hold=60), rebate_plan("5", min_hold=60)])
    account = client_with_account(sub)
    now = timezone.now()
    for n in range(12):
        round_trip(
            account,
            symbol=("EURUSD", "GBPUSD")[n % 2],
            lots=f"0.{n + 1:02d}",
            hold_seconds=(30, 600)[n % 3 > 0],
            closed_at=now - timedelta(hours=9 * n),
        )
    commissions_run(batch_size=5)

    derived = lines()  # asserts per row: lines sum to the row, one line per deal counted
    assert len({(row.deal_id, row.ib_id) for row in derived}) == len(derived)
    statement = ib_statement(ib=sub)
    assert statement.count() == 12 and len(statement[0:50]) == 12
    assert sum((row.amount for row in statement[0:50]), Decimal(0)) == payable(sub)
    assert [row.deal_time for row in statement[0:50]] == sorted((r.deal_time for r in statement[0:50]), reverse=True)
    assert sum((row.amount for row in lines(ib=master)), Decimal(0)) == payable(master)


def test_identical_deals_are_each_rounded_not_their_sum():
    # Three 0.01-lot deals at 0.5/lot: 0.005 each, half to even -> 0.00 each, so the row is 0.00 (not 0.015 -> 0.02).
    # Three 0.03-lot deals: 0.015 each -> 0.02 each = 0.06 (not 0.045 -> 0.04).
    ib = make_ib(plan=rebate_plan("0.5"))
    account = client_with_account(ib)
    for lots in ("0.01", "0.01", "0.01", "0.03", "0.03", "0.03"):
        round_trip(account, lots=lots)
    commissions_run()
    assert [(x.lots, x.amount) for x in lines()].count((Decimal("0.01"), Decimal("0"))) == 3
    assert Commission.objects.get().amount == Decimal("0.06") == payable(ib)


def test_postgresql_refuses_overlapping_batches():
    from django.db import IntegrityError, connection, transaction

    from ib.models import CommissionBatch

    if connection.vendor != "postgresql":
        pytest.skip("an exclusion constraint: PostgreSQL only (SQLite relies on the engine's range check)")
    CommissionBatch.objects.create(lo=100, hi=200)
    CommissionBatch.objects.create(lo=200, hi=300)  # adjacent: (100, 200] and (200, 300] share no deal
    with pytest.raises(IntegrityError), transaction.atomic():
        CommissionBatch.objects.create(lo=150, hi=250)


def test_the_engine_never_passes_a_deal_id_whose_import_has_not_committed():
    # An import holds the deals lock shared while its transaction is open (its ids may commit after higher ones);
    # the engine takes it exclusively before reading the highest id, so it waits rather than skip those ids.
    import psycopg2
    from django.db import OperationalError, connection, transaction

    from mt5bridge.services.sync import DEALS_INSERT_LOCK

    if connection.vendor != "postgresql":
        pytest.skip("advisory locks: PostgreSQL only (SQLite has one writer at a time)")
    settings_dict = connection.settings_dict
    other = psycopg2.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
    )
    try:
        other.cursor().execute("SELECT pg_advisory_lock_shared(%s)", [DEALS_INSERT_LOCK])  # an import in flight
        with pytest.raises(OperationalError), transaction.atomic():
            connection.cursor().execute("SET LOCAL lock_timeout = '200ms'")
            engine_module._committed_top_deal_id()
        other.cursor().execute("SELECT pg_advisory_unlock_shared(%s)", [DEALS_INSERT_LOCK])  # it committed
        from mt5bridge.models import Deal

        top = Deal.objects.order_by("-id").values_list("id", flat=True).first() or 0
        assert engine_module._committed_top_deal_id() == top
    finally:
        other.close()


def test_the_csv_stream_is_the_statement_in_the_same_order():
    from ib.selectors import ib_statement

    ib = make_ib(plan=rebate_plan("5"))
    account = client_with_account(ib)
    same_time = timezone.now() - timedelta(hours=1)
    for lots in ("0.10", "0.20", "0.30"):
        round_trip(account, lots=lots, closed_at=same_time)  # equal times: the deal id breaks the tie
    round_trip(account, lots="0.40")
    commissions_run()
    statement = ib_statement(ib=ib)
    paged = [(row.deal_id, row.amount) for row in statement[0 : statement.count()]]
    streamed = [(row.deal_id, row.amount) for row in statement.iterator(chunk_size=2)]
    assert streamed == paged and len(paged) == 4
    assert [deal_id for deal_id, _ in paged] == sorted((deal_id for deal_id, _ in paged), reverse=True)
