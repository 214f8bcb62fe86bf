from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import override_settings

from brokerage import demo
from crm.models import ClientProfile, User
from tests.crm.factories import ClientFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/accounts/signup/", "/admin/login/", "/api/docs/"])
def test_public_pages_answer(client, url):
    assert client.get(url).status_code == 200


def test_pages_carry_the_security_headers(client):
    response = client.get("/accounts/login/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


@override_settings(DEBUG=False, ROOT_URLCONF="tests.brokerage.crash_urls")
def test_a_crash_shows_the_500_page_not_a_stack_trace(client):
    client.raise_request_exception = False

    response = client.get("/crash/")

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
    assert "secret internals" not in response.content.decode()


def test_api_me_requires_a_session(client):
    assert client.get("/api/v1/me/").status_code == 403


def test_api_me_returns_the_signed_in_client(client):
    user = ClientFactory(profile__referral_code="PARTNER-02")
    client.force_login(user)

    body = client.get("/api/v1/me/").json()

    assert body == {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "referral_code": "PARTNER-02",
        "mfa_enabled": False,
        "is_staff": False,
    }


def test_api_schema_is_served(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/v1/me/" in response.content


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo", verbosity=0)
    first = sorted(User.objects.values_list("email", "is_staff"))
    call_command("seed_demo", verbosity=0)

    assert sorted(User.objects.values_list("email", "is_staff")) == first
    assert User.objects.count() == len(demo.STAFF) + len(demo.CLIENTS) + 2  # the two demo IBs
    assert ClientProfile.objects.get(user__email="bob@demo.example").referral_code == "PARTNER-01"
    staff = User.objects.get(email="finance@demo.example")
    assert list(staff.groups.values_list("name", flat=True)) == ["Finance"]
    assert staff.check_password(demo.DEMO_PASSWORD)


def test_demo_staff_can_reach_the_admin_with_the_printed_code(client, capsys):
    call_command("seed_demo", verbosity=0)
    capsys.readouterr()
    call_command("demo_totp")
    code = capsys.readouterr().out.split()[0]

    client.post("/accounts/login/", {"login": "compliance@demo.example", "password": demo.DEMO_PASSWORD})
    client.post("/accounts/2fa/authenticate/", {"code": code})

    assert client.get("/admin/").status_code == 200
