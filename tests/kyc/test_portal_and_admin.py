"""Onboarding through the portal and review through the admin, over HTTP."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from kyc.models import ClientCompliance, KycCase, KycDocument
from kyc.services import kyc_case_submit
from tests.crm.factories import ClientFactory, make_staff
from tests.kyc.conftest import GOOD_ANSWERS, onboard
from tests.kyc.factories import jpeg_bytes

pytestmark = pytest.mark.django_db


def test_onboarding_pages_walk_the_client_to_submission(client, client_user, settings):
    client.force_login(client_user)
    assert client.get(reverse("portal:verification")).status_code == 200

    bad = client.post(
        reverse("portal:verification_details"),
        {"legal_name": "Jane", "country": "Great Britain", "date_of_birth": "2015-01-01"},
    )
    assert "two-letter country code" in bad.content.decode()
    assert "at least 18" in bad.content.decode()
    details = {
        "legal_name": "Jane Example",
        "date_of_birth": "1990-05-17",
        "country": "gb",
        "address_line": "1 High St",
        "city": "London",
        "postcode": "N1",
        "phone": "+44 20 7946 0000",
    }
    assert client.post(reverse("portal:verification_details"), details).status_code == 302
    assert client.post(reverse("portal:verification_questionnaire"), GOOD_ANSWERS).status_code == 302
    refused = client.post(
        reverse("portal:verification_disclosure"), {"version": settings.KYC_DISCLOSURE_VERSION}, follow=True
    )
    assert "Please confirm" in refused.content.decode()
    client.post(
        reverse("portal:verification_disclosure"), {"version": settings.KYC_DISCLOSURE_VERSION, "accept": "yes"}
    )
    hostile = client.post(
        reverse("portal:verification_documents"),
        {"doc_type": "passport", "file": SimpleUploadedFile("p.jpg", b"GIF89a" + b"\0" * 500)},
    )
    assert "We accept JPEG, PNG or PDF" in hostile.content.decode()
    assert not KycDocument.objects.exists()
    upload = SimpleUploadedFile("passport.jpg", jpeg_bytes(), content_type="image/jpeg")
    client.post(reverse("portal:verification_documents"), {"doc_type": "passport", "file": upload})

    response = client.post(reverse("portal:verification_submit"), follow=True)

    assert "We are reviewing your documents" in response.content.decode()
    assert KycCase.objects.get(user=client_user).state == KycCase.State.SUBMITTED
    compliance = ClientCompliance.objects.get(user=client_user)
    assert (compliance.questionnaire_score, compliance.leverage_cap, compliance.screening_status) == (11, 500, "clear")


def test_screening_match_and_high_risk_country_raise_the_risk(client, client_user):
    client.force_login(client_user)
    details = {
        "legal_name": "Ivan Sanctionov",
        "date_of_birth": "1970-01-01",
        "country": "IR",
        "address_line": "x",
        "city": "y",
        "phone": "1",
    }
    client.post(reverse("portal:verification_details"), details)

    compliance = ClientCompliance.objects.get(user=client_user)
    assert compliance.risk_level == "high"
    assert compliance.screening_status == "match"
    assert len(compliance.risk_reasons) == 2


def test_officer_reviews_with_previews_and_decides(client, client_user, celery_eager):
    case = kyc_case_submit(case=onboard(client_user), user=client_user)
    officer, _ = make_staff("Compliance")
    client.force_login(officer)

    queue = client.get(reverse("admin:kyc_kyccase_changelist") + "?state__exact=submitted")
    assert client_user.email in queue.content.decode()
    page = client.get(reverse("admin:kyc_case_review", args=[case.pk]))
    assert page.status_code == 200
    document = case.documents.get()
    file_response = client.get(reverse("admin:kyc_document_file", args=[document.pk]))
    assert file_response["Content-Type"] == "image/jpeg"
    assert "no-store" in file_response["Cache-Control"]
    assert b"".join(file_response.streaming_content) == document.file.open("rb").read()

    missing = client.post(reverse("admin:kyc_case_review", args=[case.pk]), {"decision": "reject"})
    assert "Give the internal reason" in missing.content.decode()
    client.post(reverse("admin:kyc_case_review", args=[case.pk]), {"decision": "approve"})
    assert KycCase.objects.get(pk=case.pk).state == KycCase.State.APPROVED


@pytest.mark.parametrize("role", ["Support", "Finance", "Dealing"])
def test_other_roles_cannot_open_documents_or_decide(client, client_user, role):
    case = kyc_case_submit(case=onboard(client_user), user=client_user)
    staff, _ = make_staff(role)
    client.force_login(staff)

    assert client.get(reverse("admin:kyc_document_file", args=[case.documents.get().pk])).status_code == 403
    assert client.post(reverse("admin:kyc_case_review", args=[case.pk]), {"decision": "approve"}).status_code == 403
    assert KycCase.objects.get(pk=case.pk).state == KycCase.State.SUBMITTED


def test_documents_have_no_public_url(client, client_user):
    case = onboard(client_user)
    document = case.documents.get()

    assert client.get("/media/" + document.file.name).status_code == 404
    assert client.get("/static/" + document.file.name).status_code == 404
    client.force_login(ClientFactory())
    assert client.get(reverse("admin:kyc_document_file", args=[document.pk])).status_code in (302, 403)


def test_review_queue_query_count_is_flat(client, django_assert_max_num_queries):
    officer, _ = make_staff("Compliance")
    for _ in range(10):
        user = ClientFactory()
        kyc_case_submit(case=onboard(user), user=user)
    client.force_login(officer)

    with django_assert_max_num_queries(14):
        assert client.get(reverse("admin:kyc_kyccase_changelist")).status_code == 200


def test_verified_details_are_frozen(client, client_user, officer):
    from kyc.services import kyc_case_approve

    kyc_case_approve(case=kyc_case_submit(case=onboard(client_user), user=client_user), reviewer=officer)
    client.force_login(client_user)
    details = {
        "legal_name": "Someone Else",
        "date_of_birth": "1990-05-17",
        "country": "GB",
        "address_line": "2 New Road",
        "city": "London",
        "postcode": "N1 1AA",
        "phone": "+44 20 7946 0001",
    }

    refused = client.post(reverse("portal:verification_details"), details)
    assert "Contact support" in refused.content.decode()
    moved = client.post(reverse("portal:verification_details"), {**details, "legal_name": "Jane Example"})
    assert moved.status_code == 302  # a new address is fine; the verified fields are unchanged
