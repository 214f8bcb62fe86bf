"""The IB Manager's admin: approve through the service, reassign with a reason, refuse cycles and self-referral,
resolve conflicts, adjust commissions; other roles cannot."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ib.models import AttributionConflict, AttributionEvent, ClientReferral, Commission, IntroducingBroker
from tests.crm.factories import ClientFactory, make_staff
from tests.ib.factories import attribute, make_chain, make_ib, rebate_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(client):
    user, _ = make_staff("IB Manager")
    client.force_login(user)
    return user


def test_manager_approves_applications_with_the_action(client, manager):
    plan = rebate_plan("5")
    ready = make_ib(state="applied", plan=plan)
    planless = make_ib(state="applied")
    response = client.post(
        "/admin/ib/introducingbroker/", {"action": "approve", "_selected_action": [ready.pk, planless.pk]}, follow=True
    )
    assert IntroducingBroker.objects.get(pk=ready.pk).state == "approved"
    assert IntroducingBroker.objects.get(pk=planless.pk).state == "applied"
    assert "Choose a commission plan" in response.content.decode()


def test_admin_refuses_a_cycle(client, manager):
    top, _middle, bottom = make_chain([rebate_plan("7"), rebate_plan("6"), rebate_plan("5")])
    response = client.post(
        f"/admin/ib/introducingbroker/{top.pk}/change/",
        {
            "parent": bottom.pk,
            "plan": top.plan_id,
            "payout_schedule": "monthly",
            "review_window_days": 0,
        },
    )
    assert response.status_code == 200 and "cycle" in response.content.decode()
    assert IntroducingBroker.objects.get(pk=top.pk).parent_id is None


def test_reassign_needs_a_reason_and_is_logged(client, manager):
    old, new = make_ib(plan=rebate_plan("5")), make_ib(plan=rebate_plan("5"))
    target = ClientFactory()
    referral = attribute(target, old)
    url = f"/admin/ib/clientreferral/{referral.pk}/change/"
    response = client.post(url, {"ib": new.pk, "reason": ""})
    assert response.status_code == 200 and ClientReferral.objects.get(pk=referral.pk).ib == old
    response = client.post(url, {"ib": old.pk, "reason": "x"})
    assert "already belongs" in response.content.decode()
    client.post(url, {"ib": new.pk, "reason": "moved at the client's request"})
    assert ClientReferral.objects.get(pk=referral.pk).ib == new
    event = AttributionEvent.objects.get(client=target)
    assert (event.from_ib, event.to_ib, event.actor, event.reason) == (
        old,
        new,
        manager,
        "moved at the client's request",
    )


def test_staff_attribution_refuses_self_referral(client, manager):
    ib = make_ib(plan=rebate_plan("5"))
    response = client.post("/admin/ib/clientreferral/add/", {"client": ib.user_id, "ib": ib.pk, "reason": "x"})
    assert "cannot be attributed to itself" in response.content.decode()
    assert not ClientReferral.objects.exists()


def test_conflicts_resolved_by_action(client, manager):
    current, claimant = make_ib(plan=rebate_plan("5")), make_ib(plan=rebate_plan("5"))
    target = ClientFactory()
    attribute(target, current)
    conflict = AttributionConflict.objects.create(
        client=target, current_ib=current, claimant_ib=claimant, reason="cookie of another IB"
    )
    client.post("/admin/ib/attributionconflict/", {"action": "give_to_claimant", "_selected_action": [conflict.pk]})
    assert AttributionConflict.objects.get().state == "reassigned"
    assert ClientReferral.objects.get(client=target).ib == claimant


def test_adjustment_from_the_admin(client, manager):
    ib = make_ib(plan=rebate_plan("5"))
    response = client.post(
        "/admin/ib/commissionadjustment/add/", {"ib": ib.pk, "currency": "USD", "amount": "12.50", "note": ""}
    )
    assert response.status_code == 200 and not Commission.objects.exists()  # a reason is required
    client.post(
        "/admin/ib/commissionadjustment/add/",
        {"ib": ib.pk, "currency": "USD", "amount": "12.50", "note": "missed rebate, ticket #19"},
    )
    row = Commission.objects.get()
    assert (row.kind, row.amount, row.note, row.created_by) == (
        "adjustment",
        Decimal("12.50"),
        "missed rebate, ticket #19",
        manager,
    )


def test_other_roles_cannot_approve_or_adjust(client):
    support, _ = make_staff("Support")
    client.force_login(support)
    applied = make_ib(state="applied", plan=rebate_plan("5"))
    client.post("/admin/ib/introducingbroker/", {"action": "approve", "_selected_action": [applied.pk]})
    assert IntroducingBroker.objects.get(pk=applied.pk).state == "applied"
    assert client.get("/admin/ib/commissionadjustment/add/").status_code == 403
    assert client.get("/admin/ib/introducingbroker/").status_code == 200  # Support may look


def test_a_commission_row_shows_its_deal_lines_and_its_batch_audits_clean(client, manager):
    from ib.models import CommissionBatch
    from ib.services import commissions_run
    from tests.ib.factories import client_with_account, round_trip

    ib = make_ib(plan=rebate_plan("7.35"))
    account = client_with_account(ib)
    closings = [round_trip(account, lots="0.07")[1] for _ in range(3)]
    commissions_run()
    row = Commission.objects.get()
    page = client.get(f"/admin/ib/commission/{row.pk}/change/").content.decode()
    assert "3 deals in EURUSD (FX majors)" in page
    for closing in closings:
        assert f"Deal #{closing.pk} EURUSD" in page and "0.07 lots × 7.35 USD/lot = 0.51 USD" in page  # noqa: RUF001
    batch = CommissionBatch.objects.get()
    page = client.get(f"/admin/ib/commissionbatch/{batch.pk}/change/").content.decode()
    assert "3 then, 3 now" in page and "consistent" in page
    assert client.get("/admin/ib/commissionbatch/").status_code == 200


def test_an_adjustment_the_service_refuses_is_a_form_error_not_an_addition(client, manager):
    applied = make_ib(state="applied", plan=rebate_plan("5"))
    response = client.post(
        "/admin/ib/commissionadjustment/add/",
        {"ib": applied.pk, "currency": "USD", "amount": "10.00", "note": "goodwill"},
    )
    page = response.content.decode()
    assert response.status_code == 200 and "Only approved or suspended IBs" in page
    assert "was added successfully" not in page and not Commission.objects.exists()
