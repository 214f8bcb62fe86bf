"""KYC cases through the services: onboarding, submission, every decision, expiry, and illegal transitions."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from django.core import mail
from django_fsm_log.models import StateLog

from core.errors import ApplicationError
from core.fsm import apply_transition
from kyc.gate import Action, client_may
from kyc.models import KycCase, KycDocument
from kyc.services import (
    client_compliance,
    kyc_case_approve,
    kyc_case_missing,
    kyc_case_open,
    kyc_case_reject,
    kyc_case_request_resubmission,
    kyc_case_submit,
    kyc_cases_expire,
    kyc_document_add,
)
from kyc.uploads import UploadRejected
from tests.crm.factories import ClientFactory, make_staff
from tests.kyc.conftest import onboard
from tests.kyc.factories import jpeg_bytes

pytestmark = pytest.mark.django_db


def _submitted(user):
    case = onboard(user)
    return kyc_case_submit(case=case, user=user)


def test_a_new_case_aims_at_the_next_level_and_lists_what_is_missing(client_user):
    case = kyc_case_open(user=client_user)

    assert case.target_level.code == "identity"
    assert kyc_case_open(user=client_user).pk == case.pk
    assert kyc_case_missing(case=case) == [
        "your personal details",
        "the appropriateness questionnaire",
        "accepting the risk disclosure",
        "an identity document",
    ]
    with pytest.raises(ApplicationError, match="Before you submit"):
        kyc_case_submit(case=case, user=client_user)
    assert KycCase.objects.get(pk=case.pk).state == KycCase.State.DRAFT


def test_documents_are_stored_privately_with_their_fingerprint(client_user, settings):
    case = kyc_case_open(user=client_user)
    content = jpeg_bytes()

    document = kyc_document_add(
        case=case,
        user=client_user,
        doc_type="passport",
        name="../../etc/passport.jpg",
        content=content,
        expires_on=date(2030, 1, 1),
    )

    assert document.content_type == "image/jpeg"
    assert document.sha256 == hashlib.sha256(content).hexdigest()
    assert document.original_name == "passport.jpg"
    assert str(settings.KYC_DOCUMENT_ROOT) in document.file.path
    assert "passport" not in document.file.name  # the server chose the stored name
    assert document.file.read() == content


def test_hostile_upload_stores_nothing(client_user, settings):
    case = kyc_case_open(user=client_user)

    with pytest.raises(UploadRejected):
        kyc_document_add(
            case=case,
            user=client_user,
            doc_type="passport",
            name="passport.jpg",
            content=b"<html><script>alert(1)</script></html>" * 10,
        )
    assert not KycDocument.objects.exists()
    assert not any(settings.KYC_DOCUMENT_ROOT.rglob("*.*")) if settings.KYC_DOCUMENT_ROOT.exists() else True


def test_expired_document_and_someone_elses_case_are_refused(client_user):
    case = kyc_case_open(user=client_user)

    with pytest.raises(ApplicationError, match="expired"):
        kyc_document_add(
            case=case,
            user=client_user,
            doc_type="passport",
            name="p.jpg",
            content=jpeg_bytes(),
            expires_on=date(2020, 1, 1),
        )
    with pytest.raises(ApplicationError, match="not yours"):
        kyc_document_add(case=case, user=ClientFactory(), doc_type="passport", name="p.jpg", content=jpeg_bytes())


def test_approval_raises_the_level_opens_the_gate_and_emails_the_client(
    client_user, officer, django_capture_on_commit_callbacks
):
    case = _submitted(client_user)
    assert not client_may(user=client_user, action=Action.DEPOSIT).allowed

    with django_capture_on_commit_callbacks(execute=True):
        approved = kyc_case_approve(case=case, reviewer=officer)

    assert approved.state == KycCase.State.APPROVED
    assert approved.expires_at == date(2031, 1, 1)
    assert client_compliance(user=client_user).level.code == "identity"
    assert client_may(user=client_user, action=Action.DEPOSIT).allowed
    assert mail.outbox[-1].subject.endswith("Your account is verified")
    log = list(StateLog.objects.for_(approved).values_list("transition", "by_id"))
    assert log == [("submit", client_user.pk), ("start_review", officer.pk), ("approve", officer.pk)]


def test_rejection_needs_both_reasons_and_tells_the_client(client_user, officer):
    case = _submitted(client_user)

    with pytest.raises(ApplicationError, match="internal reason"):
        kyc_case_reject(case=case, reviewer=officer, reason="", client_message="")
    rejected = kyc_case_reject(case=case, reviewer=officer, reason="forged", client_message="We cannot verify you.")

    assert rejected.state == KycCase.State.REJECTED
    assert client_compliance(user=client_user).level.code == "registered"
    assert kyc_case_open(user=client_user).pk != case.pk  # the client may start again


def test_resubmission_round_trip(client_user, officer):
    case = _submitted(client_user)

    asked = kyc_case_request_resubmission(case=case, reviewer=officer, client_message="Upload the back side.")
    assert asked.state == KycCase.State.RESUBMISSION_REQUESTED
    kyc_document_add(case=asked, user=client_user, doc_type="national_id", name="id.jpg", content=jpeg_bytes())
    again = kyc_case_submit(case=asked, user=client_user)

    assert again.state == KycCase.State.SUBMITTED
    assert again.documents.count() == 2


def test_only_compliance_may_decide(client_user):
    case = _submitted(client_user)
    support, _ = make_staff("Support")

    with pytest.raises(ApplicationError, match="may not review"):
        kyc_case_approve(case=case, reviewer=support)
    assert KycCase.objects.get(pk=case.pk).state == KycCase.State.SUBMITTED


def test_expiry_takes_the_level_back(client_user, officer):
    case = kyc_case_approve(case=_submitted(client_user), reviewer=officer)

    assert kyc_cases_expire(today=date(2030, 12, 31)) == 0
    assert kyc_cases_expire(today=date(2031, 1, 2)) == 1
    assert KycCase.objects.get(pk=case.pk).state == KycCase.State.EXPIRED
    assert client_compliance(user=client_user).level.code == "registered"


ILLEGAL = {
    KycCase.State.DRAFT: ["start_review", "approve", "reject", "request_resubmission", "expire"],
    KycCase.State.SUBMITTED: ["submit", "approve", "reject", "request_resubmission", "expire"],
    KycCase.State.IN_REVIEW: ["submit", "start_review", "expire"],
    KycCase.State.APPROVED: ["submit", "start_review", "approve", "request_resubmission"],
    KycCase.State.REJECTED: ["submit", "start_review", "approve", "reject", "request_resubmission", "expire"],
    KycCase.State.RESUBMISSION_REQUESTED: ["start_review", "approve", "reject", "request_resubmission", "expire"],
    KycCase.State.EXPIRED: ["submit", "start_review", "approve", "reject", "request_resubmission", "expire"],
}
PATHS = {
    KycCase.State.DRAFT: [],
    KycCase.State.SUBMITTED: ["submit"],
    KycCase.State.IN_REVIEW: ["submit", "start_review"],
    KycCase.State.APPROVED: ["submit", "start_review", "approve"],
    KycCase.State.REJECTED: ["submit", "start_review", "reject"],
    KycCase.State.RESUBMISSION_REQUESTED: ["submit", "start_review", "request_resubmission"],
    KycCase.State.EXPIRED: ["submit", "start_review", "approve", "expire"],
}


@pytest.mark.parametrize(("state", "transition"), [(state, name) for state, names in ILLEGAL.items() for name in names])
def test_every_illegal_transition_is_a_readable_error_and_changes_nothing(client_user, state, transition):
    case = kyc_case_open(user=client_user)
    for step in PATHS[state]:
        apply_transition(case, step)
    assert case.state == state

    with pytest.raises(ApplicationError, match="not allowed from that state"):
        apply_transition(case, transition)
    assert case.state == state


def test_an_upgrade_asks_only_for_the_new_documents(client_user, officer):
    kyc_case_approve(case=_submitted(client_user), reviewer=officer)

    upgrade = kyc_case_open(user=client_user)

    assert upgrade.target_level.code == "full"
    assert kyc_case_missing(case=upgrade) == ["a proof of address"]


def test_an_old_case_expiring_keeps_the_level_a_newer_case_backs(client_user, officer):
    kyc_case_approve(case=_submitted(client_user), reviewer=officer)
    upgrade = kyc_case_open(user=client_user)
    kyc_document_add(
        case=upgrade,
        user=client_user,
        doc_type="utility_bill",
        name="bill.pdf.jpg",
        content=jpeg_bytes(),
        expires_on=date(2035, 1, 1),
    )
    approved = kyc_case_approve(case=kyc_case_submit(case=upgrade, user=client_user), reviewer=officer)
    # The upgrade rests on the passport too, so it expires with it.
    assert approved.expires_at == date(2031, 1, 1)
    assert client_compliance(user=client_user).level.code == "full"

    assert kyc_cases_expire(today=date(2031, 1, 2)) == 2
    assert client_compliance(user=client_user).level.code == "registered"


def test_nobody_reviews_their_own_case(officer):
    case = _submitted(officer)

    with pytest.raises(ApplicationError, match="own verification"):
        kyc_case_approve(case=case, reviewer=officer)
