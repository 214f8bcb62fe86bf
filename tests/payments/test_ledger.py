"""The ledger's invariants, by example and by property."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.ledger import (
    InsufficientFunds,
    LedgerError,
    Leg,
    account_balance,
    client_wallet,
    ledger_account,
    ledger_accounts_of,
    ledger_is_balanced,
    ledger_post,
)
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction
from tests.crm.factories import ClientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def clearing():
    return ledger_account(kind=LedgerAccount.Kind.PSP_CLEARING, currency="USD", key="sandbox")


def _deposit(wallet, clearing, amount, key):
    return ledger_post(
        idempotency_key=key,
        kind="deposit",
        description="card deposit",
        legs=[Leg(clearing, -Decimal(amount)), Leg(wallet, Decimal(amount))],
    )


def test_a_posting_moves_money_and_balances(clearing):
    wallet = client_wallet(user=ClientFactory(), currency="USD")

    _deposit(wallet, clearing, "100.25", "dep:1")

    assert account_balance(wallet) == Decimal("100.25")
    assert account_balance(clearing) == Decimal("-100.25")
    assert ledger_is_balanced()


def test_the_same_key_posts_once_and_a_different_request_under_it_is_refused(clearing):
    wallet = client_wallet(user=ClientFactory(), currency="USD")

    first = _deposit(wallet, clearing, "50", "dep:2")
    again = _deposit(wallet, clearing, "50", "dep:2")

    assert again.pk == first.pk
    assert account_balance(wallet) == Decimal("50")
    with pytest.raises(LedgerError, match="already used"):
        _deposit(wallet, clearing, "51", "dep:2")


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ([("USD", "10"), ("USD", "-9.99")], "do not balance"),
        ([("USD", "10")], "at least two"),
        ([("USD", "0"), ("USD", "0")], "cannot be zero"),
        ([("USD", "10.001"), ("USD", "-10.001")], "more precision"),
        ([("USD", "10"), ("EUR", "-10")], "do not balance"),
    ],
)
def test_malformed_postings_write_nothing(legs, message):
    accounts = {c: ledger_account(kind=LedgerAccount.Kind.SUSPENSE, currency=c) for c in ("USD", "EUR")}

    with pytest.raises(LedgerError, match=message):
        ledger_post(
            idempotency_key="bad",
            kind="adjustment",
            description="x",
            legs=[Leg(accounts[c], Decimal(a)) for c, a in legs],
        )
    assert not LedgerTransaction.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_wallet_never_goes_negative(clearing):
    wallet = client_wallet(user=ClientFactory(), currency="USD")
    _deposit(wallet, clearing, "30", "dep:3")

    with pytest.raises(InsufficientFunds):
        ledger_post(
            idempotency_key="wd:1",
            kind="withdrawal",
            description="too much",
            legs=[Leg(wallet, Decimal("-30.01")), Leg(clearing, Decimal("30.01"))],
        )
    assert account_balance(wallet) == Decimal("30")
    assert not LedgerTransaction.objects.filter(idempotency_key="wd:1").exists()


def test_ledger_accounts_are_unique_per_owner_and_purpose():
    user = ClientFactory()

    assert client_wallet(user=user, currency="USD").pk == client_wallet(user=user, currency="USD").pk
    assert client_wallet(user=user, currency="EUR").pk != client_wallet(user=user, currency="USD").pk
    house = ledger_account(kind=LedgerAccount.Kind.FEES, currency="USD")
    assert ledger_account(kind=LedgerAccount.Kind.FEES, currency="USD").pk == house.pk


def test_accounts_of_many_users_are_the_same_accounts_one_by_one_would_be(django_assert_max_num_queries):
    users = [ClientFactory() for _ in range(5)]
    payable = LedgerAccount.Kind.IB_PAYABLE
    first = ledger_account(kind=payable, currency="USD", user=users[0])

    with django_assert_max_num_queries(3):  # those that exist, the missing ones created together, read back
        found = ledger_accounts_of(kind=payable, currency="USD", users=users)

    assert found[users[0].pk].pk == first.pk
    assert {u.pk: found[u.pk].pk for u in users} == {
        u.pk: ledger_account(kind=payable, currency="USD", user=u).pk for u in users
    }
    with django_assert_max_num_queries(1):  # all exist now
        assert ledger_accounts_of(kind=payable, currency="USD", users=users) == found
    assert LedgerAccount.objects.filter(kind=payable).count() == 5


operations = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdraw", "transfer"]),
        st.integers(0, 2),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations)
def test_property_any_sequence_keeps_the_ledger_balanced_and_wallets_non_negative(ops):
    with transaction.atomic():
        users = [ClientFactory() for _ in range(3)]
        wallets = [client_wallet(user=u, currency="USD") for u in users]
        clearing = ledger_account(kind=LedgerAccount.Kind.PSP_CLEARING, currency="USD", key="prop")
        expected = [Decimal(0)] * 3
        for n, (op, who, amount) in enumerate(ops):
            other = (who + 1) % 3
            legs = {
                "deposit": [Leg(clearing, -amount), Leg(wallets[who], amount)],
                "withdraw": [Leg(wallets[who], -amount), Leg(clearing, amount)],
                "transfer": [Leg(wallets[who], -amount), Leg(wallets[other], amount)],
            }[op]
            try:
                ledger_post(idempotency_key=f"prop:{n}", kind=op, description=op, legs=legs)
            except InsufficientFunds:
                assert expected[who] < amount  # refused only when the money was not there
                continue
            if op == "deposit":
                expected[who] += amount
            else:
                expected[who] -= amount
                if op == "transfer":
                    expected[other] += amount
        assert [account_balance(w) for w in wallets] == expected
        assert all(balance >= 0 for balance in expected)
        assert ledger_is_balanced()
        transaction.set_rollback(True)


def test_postgresql_refuses_unbalanced_or_edited_rows_itself(clearing):
    if connection.vendor != "postgresql":
        pytest.skip("the database-level guards exist on PostgreSQL only (SQLite relies on payments.ledger)")
    wallet = client_wallet(user=ClientFactory(), currency="USD")
    posted = _deposit(wallet, clearing, "10", "dep:pg")

    with pytest.raises(InternalError, match="never changed"), transaction.atomic():
        LedgerEntry.objects.filter(transaction=posted).update(amount=Decimal("11"))
    with pytest.raises((IntegrityError, InternalError), match="does not balance"), transaction.atomic():
        stray = LedgerTransaction.objects.create(idempotency_key="stray", kind="x", description="x")
        LedgerEntry.objects.create(transaction=stray, account=wallet, amount=Decimal("5"), currency="USD")
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert account_balance(wallet) == Decimal("10")


def test_the_wallet_page_shows_the_clients_own_balance_only(client, clearing, django_assert_max_num_queries):
    mine, theirs = ClientFactory(), ClientFactory()
    _deposit(client_wallet(user=mine, currency="USD"), clearing, "125.50", "dep:mine")
    _deposit(client_wallet(user=theirs, currency="USD"), clearing, "999.99", "dep:theirs")
    client.force_login(mine)

    with django_assert_max_num_queries(8):
        page = client.get("/portal/wallet/").content.decode()

    assert "125.50" in page
    assert "999.99" not in page


def test_balances_are_exact_even_where_the_database_keeps_floats(clearing):
    wallet = client_wallet(user=ClientFactory(), currency="USD")
    for n in range(121):
        _deposit(wallet, clearing, "0.01", f"cent:{n}")
    for n in range(3):
        _deposit(wallet, clearing, "0.10", f"dime:{n}")

    assert account_balance(wallet) == Decimal("1.51")
    assert ledger_is_balanced()
