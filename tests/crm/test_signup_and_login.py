"""Client accounts through HTTP: signup with a referral code, mandatory verification, login, throttling."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from crm.models import ClientProfile, User
from tests.crm.factories import PASSWORD, ClientFactory

pytestmark = pytest.mark.django_db


def _signup(client, email="new.client@example.com", referral_code="", password=PASSWORD):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": password, "password2": password, "referral_code": referral_code},
    )


def test_signup_creates_client_with_referral_code_and_sends_verification(client):
    response = _signup(client, email="New.Client@Example.com", referral_code="PARTNER-01")

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get()
    assert user.email == "new.client@example.com"
    assert ClientProfile.objects.get(user=user).referral_code == "PARTNER-01"
    assert EmailAddress.objects.get(user=user).verified is False
    assert len(mail.outbox) == 1
    assert "confirm-email" in mail.outbox[0].body


def test_signup_rejects_malformed_referral_code_and_saves_nothing(client):
    response = _signup(client, referral_code="bad code!")

    assert response.status_code == 200
    assert "referral code has 3 to 32" in response.content.decode()
    assert User.objects.count() == 0
    assert ClientProfile.objects.count() == 0
    assert mail.outbox == []


def test_signup_rejects_weak_password(client):
    response = _signup(client, password="short")

    assert response.status_code == 200
    assert User.objects.count() == 0


def test_portal_stays_closed_until_email_is_verified(client):
    _signup(client)
    client.logout()

    response = client.post(reverse("account_login"), {"login": "new.client@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("portal:dashboard")).status_code == 302


def test_verification_link_then_login_opens_the_portal(client):
    _signup(client)
    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[0].body).group(1)

    assert client.post(link).status_code == 302
    assert EmailAddress.objects.get().verified is True

    response = client.post(reverse("account_login"), {"login": "new.client@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("portal:dashboard")).status_code == 200


def test_login_rotates_the_session_key(client):
    user = ClientFactory()
    client.get(reverse("account_login"))
    client.session.save()
    before = client.session.session_key

    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})

    assert client.session.session_key != before
    assert str(client.session["_auth_user_id"]) == str(user.pk)


def test_failed_logins_are_throttled_per_account(client):
    user = ClientFactory()
    for _ in range(5):
        client.post(reverse("account_login"), {"login": user.email, "password": "wrong-password"})

    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})

    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()


def test_password_reset_mails_a_link_and_answers_alike_for_unknown_addresses(client):
    user = ClientFactory()

    known = client.post(reverse("account_reset_password"), {"email": user.email})
    unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    reset_mail = next(m for m in mail.outbox if m.to == [user.email])
    assert "/accounts/password/reset/key/" in reset_mail.body


def test_logout_needs_post(client):
    user = ClientFactory()
    client.force_login(user)

    client.get(reverse("account_logout"))
    assert "_auth_user_id" in client.session

    client.post(reverse("account_logout"))
    assert "_auth_user_id" not in client.session


def test_dashboard_shows_the_clients_own_details(client):
    user = ClientFactory(profile__referral_code="PARTNER-07")
    client.force_login(user)

    page = client.get(reverse("portal:dashboard")).content.decode()

    assert user.email in page
    assert "PARTNER-07" in page
