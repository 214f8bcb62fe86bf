"""AML hits become alerts once, are worked as cases, and an escalation holds withdrawals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_fsm_log.models import StateLog

from core.errors import ApplicationError
from kyc.aml import ClientFacts, FactWindow, MoneyMovement
from kyc.gate import Action, client_may
from kyc.models import AmlAlert
from kyc.services.aml import (
    aml_alert_add_note,
    aml_alert_close,
    aml_alert_escalate,
    aml_alert_investigate,
    aml_evaluate,
)
from tests.crm.factories import make_staff
from tests.kyc.factories import verify

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _window(user, amount="15000", reference="dep-1"):
    deposit = MoneyMovement(
        kind="deposit",
        client_id=user.pk,
        amount=Decimal(amount),
        currency="USD",
        at=NOW - timedelta(minutes=5),
        method="card",
        instrument_fingerprint="card-1",
        settled=True,
        reference=reference,
        payer_name="Jane Example",
    )
    client = ClientFacts(
        client_id=user.pk,
        legal_name="Jane Example",
        country="GB",
        risk_level="low",
        created_at=NOW - timedelta(days=100),
    )
    return FactWindow(client=client, movements=(), now=NOW, event=deposit)


def test_a_hit_becomes_one_alert_however_often_it_is_seen(client_user):
    first = aml_evaluate(window=_window(client_user))
    again = aml_evaluate(window=_window(client_user))

    assert [a.rule for a in first] == ["large_deposit"]
    assert again == []
    alert = AmlAlert.objects.get()
    assert "15,000.00 USD" in alert.summary
    assert alert.state == AmlAlert.State.OPEN


def test_a_near_miss_raises_nothing(client_user):
    assert aml_evaluate(window=_window(client_user, amount="9999.99")) == []
    assert not AmlAlert.objects.exists()


def test_an_alert_is_worked_with_notes_and_an_escalation_holds_withdrawals(client_user, officer):
    verify(client_user)
    alert = aml_evaluate(window=_window(client_user))[0]
    assert client_may(user=client_user, action=Action.WITHDRAW).allowed

    aml_alert_investigate(alert=alert, actor=officer, reason="looking at the source of funds")
    aml_alert_add_note(alert=alert, author=officer, text="Client sent a payslip; amount not explained.")
    escalated = aml_alert_escalate(alert=alert, actor=officer, reason="unexplained source of funds")

    assert escalated.state == AmlAlert.State.ESCALATED
    assert escalated.hold.blocks_withdrawals
    decision = client_may(user=client_user, action=Action.WITHDRAW)
    assert not decision.allowed
    assert "compliance team" in decision.reason
    assert client_may(user=client_user, action=Action.DEPOSIT).allowed  # the hold blocks withdrawals only
    assert list(StateLog.objects.for_(escalated).values_list("transition", "by_id")) == [
        ("investigate", officer.pk),
        ("escalate", officer.pk),
    ]


def test_alert_work_needs_a_reason_the_permission_and_a_legal_state(client_user, officer):
    alert = aml_evaluate(window=_window(client_user))[0]
    support, _ = make_staff("Support")

    with pytest.raises(ApplicationError, match="reason"):
        aml_alert_close(alert=alert, actor=officer, reason=" ")
    with pytest.raises(ApplicationError, match="may not"):
        aml_alert_close(alert=alert, actor=support, reason="fine")
    closed = aml_alert_close(alert=alert, actor=officer, reason="salary, documented")
    with pytest.raises(ApplicationError, match="not allowed"):
        aml_alert_escalate(alert=closed, actor=officer, reason="too late")
