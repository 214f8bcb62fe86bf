"""A client's first day: sign up, verify by email, sign in, turn on TOTP, sign out, sign in with a code."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from crm.models import ClientProfile, User
from tests.crm.factories import totp_code

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

EMAIL = "journey@example.com"
PASSWORD = "Journey-pass-2026"


def _sign_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")


def test_signup_verify_enrol_totp_and_sign_in_with_a_code(page, live_server):
    base = live_server.url

    # Sign up with a referral code.
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=referral_code]", "PARTNER-01")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/accounts/confirm-email/")
    assert "Verify Your Email Address" in page.content()

    # Read the verification email and follow its link.
    assert len(mail.outbox) == 1
    link = re.search(r"(http://\S+/accounts/confirm-email/\S+/)", mail.outbox[0].body).group(1)
    page.goto(link)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/accounts/login/")

    # Sign in: the portal opens.
    _sign_in(page, base)
    page.wait_for_url(f"{base}/portal/")
    assert page.locator("text=Two-factor authentication").count() == 1
    assert ClientProfile.objects.get(user__email=EMAIL).referral_code == "PARTNER-01"

    # Turn on TOTP with the secret the page shows, as an authenticator app would.
    # allauth asks for the password again before any change to the second factor.
    page.goto(f"{base}/accounts/2fa/totp/activate/")
    page.wait_for_url(re.compile(r".*/accounts/reauthenticate/.*"))
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/accounts/2fa/totp/activate/")
    secret = page.input_value("#authenticator_secret")
    page.fill("input[name=code]", totp_code(secret))
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/accounts/2fa/.*"))
    assert User.objects.get(email=EMAIL).authenticator_set.filter(type="totp").exists()

    # Sign out.
    page.goto(f"{base}/portal/")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{base}/")
    assert page.locator("text=Open an account").count() >= 1

    # Sign in again: the password alone is not enough, the code is asked for.
    _sign_in(page, base)
    page.wait_for_url(f"{base}/accounts/2fa/authenticate/")
    page.fill("input[name=code]", totp_code(secret, step_offset=1))  # a fresh code: each works only once
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/")
    assert 'badge-ok">On' in page.content()
