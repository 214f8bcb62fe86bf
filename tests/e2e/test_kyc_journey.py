"""A client completes onboarding and uploads a document; a compliance officer approves in the admin (with TOTP);
the client sees that they are verified."""

from __future__ import annotations

import re

import pytest

from kyc.models import KycCase
from tests.crm.factories import PASSWORD, ClientFactory, make_staff, totp_code
from tests.kyc.factories import jpeg_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _documents(settings, tmp_path):
    settings.KYC_DOCUMENT_ROOT = tmp_path / "kyc"


def _sign_in(page, base, email, password=PASSWORD):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit]")


def test_onboarding_review_and_verified(browser, live_server, tmp_path):
    base = live_server.url
    client_user = ClientFactory(email="kyc.client@example.com")
    officer, secret = make_staff("Compliance", email="officer@example.com")
    passport = tmp_path / "passport.jpg"
    passport.write_bytes(jpeg_bytes())

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    _sign_in(page, base, client_user.email)
    page.wait_for_url(f"{base}/portal/")
    page.click("nav >> text=Verification")
    page.wait_for_url(f"{base}/portal/verification/")

    page.click("text=Personal details")
    page.fill("input[name=legal_name]", "Kim Client")
    page.fill("input[name=date_of_birth]", "1988-02-03")
    page.fill("input[name=country]", "DE")
    page.fill("input[name=address_line]", "Hauptstrasse 1")
    page.fill("input[name=city]", "Berlin")
    page.fill("input[name=postcode]", "10115")
    page.fill("input[name=phone]", "+49 30 123456")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/verification/")

    page.click("text=Appropriateness questionnaire")
    for key, value in {
        "experience": "monthly",
        "margin_call": "stop_out",
        "leverage_loss": "100",
        "education": "course",
        "loss_capacity": "some",
    }.items():
        page.check(f"input[name={key}][value='{value}']")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/verification/")

    page.click("text=Risk disclosure")
    page.check("input[name=accept]")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/verification/")

    page.click("text=Documents")
    page.select_option("select[name=doc_type]", "passport")
    page.set_input_files("input[name=file]", str(passport))
    page.fill("input[name=expires_on]", "2032-06-30")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/verification/documents/")
    assert "passport.jpg" in page.content()

    page.goto(f"{base}/portal/verification/")
    page.click("text=Submit for review")
    page.wait_for_url(f"{base}/portal/verification/")
    assert "Under review" in page.content()
    case = KycCase.objects.get(user=client_user)

    # The officer signs in with a second factor and approves from the review page.
    staff = browser.new_page(viewport={"width": 1280, "height": 900})
    staff.set_default_timeout(15_000)
    staff.goto(f"{base}/admin/")
    staff.fill("input[name=login]", officer.email)
    staff.fill("input[name=password]", PASSWORD)
    staff.click("main form button[type=submit]")
    staff.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/.*"))
    staff.fill("input[name=code]", totp_code(secret))
    staff.click("main form button[type=submit]")
    staff.goto(f"{base}/admin/kyc/kyccase/?state__exact=submitted")
    staff.click("text=Review")
    staff.wait_for_url(f"{base}/admin/kyc/kyccase/{case.pk}/review/")
    assert staff.locator(".doc-grid img").count() == 1
    staff.check("input[name=decision][value=approve]")
    staff.click("input[type=submit]")
    staff.wait_for_url(f"{base}/admin/kyc/kyccase/")
    staff.screenshot(path=str(tmp_path / "admin.png"))

    page.goto(f"{base}/portal/verification/")
    assert page.inner_text("#kyc-level") == "Identity verified"
    assert "Verified: Identity verified" in page.content()
