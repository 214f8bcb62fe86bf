"""The engine runs after each deal import (mt5bridge's signal, after commit), on deals the bridge really
imported from the mock trade server; importing the same deals again earns nothing more."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ib.models import Commission, CommissionRun
from ib.selectors import commission_lines
from mt5bridge.models import Deal, TradeServer
from mt5bridge.services import balance_operation_create, balance_operation_send
from mt5bridge.signals import deals_imported
from mt5bridge.tasks import deals_import
from tests.crm.factories import ClientFactory
from tests.ib.factories import attribute, make_ib, rebate_plan
from tests.mt5bridge.factories import open_account

pytestmark = pytest.mark.django_db


def test_import_signal_enqueues_a_run_after_commit(django_capture_on_commit_callbacks, celery_eager):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deals_imported.send(sender=TradeServer, server_id=42, count=3)
    assert len(callbacks) == 1 and not CommissionRun.objects.exists()  # nothing before the commit
    callbacks[0]()
    assert CommissionRun.objects.get().trigger == "import:42"


def test_imported_deals_earn_once(mt5_mock, live_server_mt5, django_capture_on_commit_callbacks, celery_eager):
    ib = make_ib(plan=rebate_plan("8"))
    client = ClientFactory()
    attribute(client, ib)
    account = open_account(live_server_mt5, user=client)
    operation = balance_operation_create(account=account, amount="5000", idempotency_key=f"fund:{account.pk}")
    balance_operation_send(operation_id=operation.pk)
    opened = mt5_mock.control(
        "POST", "positions/open", {"login": account.login, "symbol": "EURUSD", "action": 0, "volume": 15000}
    )
    mt5_mock.control("POST", "positions/close", {"position": int(opened["position"])})

    with django_capture_on_commit_callbacks(execute=True):
        deals_import()

    (row,) = commission_lines(row=Commission.objects.get())
    closing = Deal.objects.get(pk=row.deal_id)
    assert (closing.login, closing.entry, row.lots, row.amount) == (account.login, 1, Decimal("1.50"), Decimal("12.00"))
    assert row.open_deal_id == Deal.objects.get(position_id=closing.position_id, entry=0).pk

    TradeServer.objects.filter(pk=live_server_mt5.pk).update(deal_cursor_ticket=0)  # read everything again
    with django_capture_on_commit_callbacks(execute=True):
        deals_import()
    assert Commission.objects.count() == 1
    assert len(commission_lines(row=Commission.objects.get())) == 1
