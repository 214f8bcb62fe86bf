"""Demo data for the IB program, called by the project's demo seeding. Idempotent."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from ib.models import ClientReferral, CommissionPlan, CommissionRule, IntroducingBroker, ReferralLink, SymbolGroup


@transaction.atomic
def seed_ib_demo(
    *,
    master_email: str = "ib.master@example.com",
    sub_email: str = "ib.sub@example.com",
    client_email: str = "alice@example.com",
    master_code: str = "MASTER-DEMO",
) -> IntroducingBroker:
    """An approved master IB with an approved sub-IB, a difference-model plan for each, a campaign link, and
    `client_email` (if that user exists) attributed to the sub-IB. Users are created if missing (unusable
    passwords for the IBs unless they exist already)."""
    from allauth.account.models import EmailAddress

    from crm.models import User
    from crm.services import client_register

    def user(email: str, first: str) -> User:
        found = User.objects.filter(email=email).first()
        if found is None:
            found = User.objects.create_user(email=email, password="Demo-password-2026", first_name=first)  # noqa: S106
            EmailAddress.objects.get_or_create(user=found, email=email, defaults={"verified": True, "primary": True})
        client_register(user=found)
        return found

    master_plan = _plan("Demo master (7/lot)", Decimal("7"))
    sub_plan = _plan("Demo sub (5/lot)", Decimal("5"))
    master = _ib(user(master_email, "Morgan"), master_code, None, master_plan)
    sub = _ib(user(sub_email, "Sasha"), "SUB-DEMO", master, sub_plan)
    ReferralLink.objects.get_or_create(ib=sub, code="sub-demo-spring", defaults={"campaign": "Spring webinar"})
    client = User.objects.filter(email=client_email).first()
    if client is not None and not ClientReferral.objects.filter(client=client).exists():
        from django.utils import timezone

        ClientReferral.objects.create(
            client=client,
            ib=sub,
            source=ClientReferral.Source.STAFF,
            attributed_at=timezone.now(),
            reassigned_reason="demo data",
        )
    return master


def _plan(name: str, rebate: Decimal) -> CommissionPlan:
    plan, created = CommissionPlan.objects.get_or_create(
        name=name, defaults={"override_model": CommissionPlan.OverrideModel.DIFFERENCE, "min_hold_seconds": 60}
    )
    if created:
        for group in SymbolGroup.objects.all():
            rate = rebate if group.code != "crypto" else rebate / 2
            CommissionRule.objects.create(plan=plan, symbol_group=group, kind="rebate_per_lot", rate=rate)
        CommissionRule.objects.create(
            plan=plan,
            kind="cpa",
            rate=rebate * 25,
            cpa_min_deposit=Decimal("200"),
            cpa_min_lots=Decimal("1"),
            cpa_within_days=30,
        )
    return plan


def _ib(owner, code: str, parent, plan) -> IntroducingBroker:
    ib = IntroducingBroker.objects.filter(user=owner).first()
    if ib is None:
        ib = IntroducingBroker.objects.create(
            user=owner,
            referral_code=code,
            parent=parent,
            plan=plan,
            state=IntroducingBroker.State.APPROVED,
            payout_schedule=IntroducingBroker.PayoutSchedule.DAILY,
        )
    ReferralLink.objects.get_or_create(ib=ib, code=code, defaults={"campaign": "default"})
    return ib
