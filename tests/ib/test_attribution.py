"""Referral links, clicks, the first-touch cookie, signup attribution (the typed code wins), conflicts flagged for
staff, reassignment with a reason, and self-referral refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from core.errors import ApplicationError
from crm.models import User
from ib.models import AttributionConflict, AttributionEvent, ClientReferral, ReferralClick
from ib.services import (
    client_attribute_signup,
    client_attribute_staff,
    client_reassign,
    conflict_resolve,
    hash_ip,
    referral_link_create,
)
from tests.crm.factories import ClientFactory, make_staff
from tests.ib.factories import attribute, make_ib, rebate_plan

pytestmark = pytest.mark.django_db
PASSWORD = "Signup-pass-2026"


def signup(client, email: str, code: str = "") -> User:
    response = client.post(
        "/accounts/signup/",
        {"email": email, "password1": PASSWORD, "password2": PASSWORD, "referral_code": code},
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302, response.content[:500]
    return User.objects.get(email=email)


def test_link_click_is_recorded_without_the_ip_and_sets_the_first_touch_cookie(client):
    ib = make_ib(plan=rebate_plan("5"))
    link = referral_link_create(ib=ib, campaign="YouTube March")
    other = make_ib(plan=rebate_plan("5"))

    response = client.get(
        f"/r/{link.code}/?utm_source=youtube&utm_medium=video&utm_campaign=march",
        REMOTE_ADDR="198.51.100.7",
        HTTP_USER_AGENT="Firefox/140",
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/signup/"
    click = ReferralClick.objects.get()
    assert (click.link, click.utm_source, click.utm_medium, click.utm_campaign, click.user_agent) == (
        link,
        "youtube",
        "video",
        "march",
        "Firefox/140",
    )
    assert click.ip_hash == hash_ip("198.51.100.7") and "198.51.100.7" not in str(click.__dict__)
    cookie = response.cookies[settings.IB_REFERRAL_COOKIE]
    assert cookie["httponly"] and cookie["max-age"] == settings.IB_ATTRIBUTION_WINDOW_DAYS * 86400

    second = client.get(f"/r/{other.referral_code}/")
    assert settings.IB_REFERRAL_COOKIE not in second.cookies  # first touch: the live cookie stays
    assert ReferralClick.objects.count() == 2  # but the click still counts for the other IB's funnel

    user = signup(client, "first.touch@example.com")
    referral = ClientReferral.objects.get(client=user)
    assert (referral.ib, referral.source, referral.link, referral.click) == (ib, "cookie", link, click)


def test_unknown_or_inactive_link_says_so_and_records_nothing(client):
    suspended = make_ib(plan=rebate_plan("5"), state="suspended")
    for code in ("NO-SUCH-CODE", suspended.referral_code):
        response = client.get(f"/r/{code}/")
        assert response.status_code == 404
        assert "This referral link is not valid" in response.content.decode()
    assert not ReferralClick.objects.exists()
    assert settings.IB_REFERRAL_COOKIE not in client.cookies


def test_the_code_typed_at_signup_wins_over_the_cookie_and_the_claim_is_flagged(client):
    cookie_ib = make_ib(plan=rebate_plan("5"))
    code_ib = make_ib(plan=rebate_plan("5"), code="PARTNER-01")
    client.get(f"/r/{cookie_ib.referral_code}/")

    user = signup(client, "typed.code@example.com", code="partner-01")  # codes match case-insensitively

    referral = ClientReferral.objects.get(client=user)
    assert (referral.ib, referral.source) == (code_ib, "signup_code")
    conflict = AttributionConflict.objects.get()
    assert (conflict.client, conflict.current_ib, conflict.claimant_ib, conflict.state) == (
        user,
        code_ib,
        cookie_ib,
        "open",
    )
    assert AttributionEvent.objects.get(client=user).to_ib == code_ib


def test_an_unknown_typed_code_is_flagged_and_the_cookie_still_counts(client):
    cookie_ib = make_ib(plan=rebate_plan("5"))
    client.get(f"/r/{cookie_ib.referral_code}/")
    user = signup(client, "typo@example.com", code="PARTNR-01")
    assert ClientReferral.objects.get(client=user).ib == cookie_ib
    assert AttributionConflict.objects.get().reason == "Unknown referral code typed at signup: PARTNR-01"


def test_a_click_older_than_the_window_does_not_attribute():
    ib = make_ib(plan=rebate_plan("5"))
    click = ReferralClick.objects.create(link=ib.links.get(), ip_hash="x")
    ReferralClick.objects.filter(pk=click.pk).update(
        created_at=timezone.now() - timedelta(days=settings.IB_ATTRIBUTION_WINDOW_DAYS, minutes=1)
    )
    user = ClientFactory()
    assert client_attribute_signup(user=user, click_id=click.pk) is None
    fresh = ReferralClick.objects.create(link=ib.links.get(), ip_hash="x")
    ReferralClick.objects.filter(pk=fresh.pk).update(
        created_at=timezone.now() - timedelta(days=settings.IB_ATTRIBUTION_WINDOW_DAYS - 1)
    )
    assert client_attribute_signup(user=user, click_id=fresh.pk).ib == ib


def test_signup_without_any_referral_is_left_alone(client):
    user = signup(client, "walk.in@example.com")
    assert not ClientReferral.objects.filter(client=user).exists()
    assert not AttributionConflict.objects.exists()


def test_attribution_is_idempotent_one_ib_per_client():
    first, second = make_ib(plan=rebate_plan("5")), make_ib(plan=rebate_plan("5"))
    user = ClientFactory()
    assert client_attribute_signup(user=user, typed_code=first.referral_code).ib == first
    assert client_attribute_signup(user=user, typed_code=second.referral_code).ib == first
    assert ClientReferral.objects.filter(client=user).count() == 1


def test_staff_reassign_with_a_reason_is_logged():
    manager, _ = make_staff("IB Manager")
    old, new = make_ib(plan=rebate_plan("5")), make_ib(plan=rebate_plan("5"))
    client = ClientFactory()
    attribute(client, old)
    with pytest.raises(ApplicationError, match="reason"):
        client_reassign(client=client, ib=new, reason="", actor=manager)
    assert ClientReferral.objects.get(client=client).ib == old

    client_reassign(client=client, ib=new, reason="client asked, ticket #4411", actor=manager)

    referral = ClientReferral.objects.get(client=client)
    assert (referral.ib, referral.source, referral.reassigned_reason) == (new, "staff", "client asked, ticket #4411")
    event = AttributionEvent.objects.get(client=client)
    assert (event.from_ib, event.to_ib, event.actor, event.reason) == (old, new, manager, "client asked, ticket #4411")


def test_self_referral_is_refused():
    manager, _ = make_staff("IB Manager")
    ib = make_ib(plan=rebate_plan("5"))
    sub = make_ib(parent=ib, plan=rebate_plan("5"))
    with pytest.raises(ApplicationError, match="itself or to an IB in its own downline"):
        client_attribute_staff(client=ib.user, ib=ib, reason="test", actor=manager)
    with pytest.raises(ApplicationError, match="its own downline"):
        client_attribute_staff(client=ib.user, ib=sub, reason="test", actor=manager)
    # At signup too: a code that points at oneself attributes nothing.
    assert client_attribute_signup(user=ib.user, typed_code=sub.referral_code) is None
    assert not ClientReferral.objects.exists()


def test_inactive_ibs_get_no_clients():
    manager, _ = make_staff("IB Manager")
    applied = make_ib(state="applied", plan=rebate_plan("5"))
    with pytest.raises(ApplicationError, match="not an active IB"):
        client_attribute_staff(client=ClientFactory(), ib=applied, reason="x", actor=manager)
    assert client_attribute_signup(user=ClientFactory(), typed_code=applied.referral_code) is None


def test_conflict_resolved_for_the_claimant_reassigns_and_closes():
    manager, _ = make_staff("IB Manager")
    current, claimant = make_ib(plan=rebate_plan("5")), make_ib(plan=rebate_plan("5"))
    client = ClientFactory()
    attribute(client, current)
    conflict = AttributionConflict.objects.create(
        client=client, current_ib=current, claimant_ib=claimant, reason="cookie of another IB"
    )
    conflict_resolve(conflict=conflict, give_to_claimant=True, actor=manager, note="proof of first contact")
    conflict.refresh_from_db()
    assert (conflict.state, conflict.resolved_by) == ("reassigned", manager)
    assert ClientReferral.objects.get(client=client).ib == claimant
    assert AttributionEvent.objects.get(client=client).reason == "proof of first contact"
    with pytest.raises(ApplicationError, match="already resolved"):
        conflict_resolve(conflict=conflict, give_to_claimant=False, actor=manager)


def test_link_creation_refuses_duplicates_and_inactive_ibs():
    ib = make_ib(plan=rebate_plan("5"))
    referral_link_create(ib=ib, campaign="Spring")
    with pytest.raises(ApplicationError, match="already have a link"):
        referral_link_create(ib=ib, campaign="spring")
    with pytest.raises(ApplicationError, match="name"):
        referral_link_create(ib=ib, campaign="  ")
    with pytest.raises(ApplicationError, match="approved"):
        referral_link_create(ib=make_ib(state="applied"), campaign="x")
    assert ib.links.count() == 2  # the default link and Spring
