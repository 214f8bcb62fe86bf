"""KYC cases: start, add documents, submit, review (approve, reject, ask for resubmission), expire.

Each decision moves the case through a logged transition with the actor and the reason, updates the client's
verification level in the same transaction, and emails the client after commit.
"""

from __future__ import annotations

import logging
from datetime import date

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ApplicationError
from core.fsm import apply_transition
from crm.models import ClientProfile
from kyc.models import KycCase, KycDocument, VerificationLevel
from kyc.services.compliance import BASE_LEVEL, client_compliance, client_level_set
from kyc.uploads import validate_upload

logger = logging.getLogger(__name__)

OPEN_STATES = (
    KycCase.State.DRAFT,
    KycCase.State.SUBMITTED,
    KycCase.State.IN_REVIEW,
    KycCase.State.RESUBMISSION_REQUESTED,
)
EDITABLE_STATES = (KycCase.State.DRAFT, KycCase.State.RESUBMISSION_REQUESTED)
DOCUMENT_GROUPS = {"identity": KycDocument.IDENTITY_TYPES, "address": KycDocument.ADDRESS_TYPES}
GROUP_LABELS = {"identity": "an identity document", "address": "a proof of address"}


def _next_level(user) -> VerificationLevel:
    current = client_compliance(user=user).level
    higher = VerificationLevel.objects.filter(rank__gt=current.rank).order_by("rank").first()
    if higher is None:
        raise ApplicationError("You are fully verified already.")
    return higher


def kyc_case_open(*, user) -> KycCase:
    """The client's open case, or a new draft aiming at the next verification level. Idempotent."""
    existing = KycCase.objects.filter(user=user, state__in=OPEN_STATES).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return KycCase.objects.create(user=user, target_level=_next_level(user), provider=settings.KYC_PROVIDER)
    except IntegrityError:  # a concurrent request opened it first
        return KycCase.objects.get(user=user, state__in=OPEN_STATES)


def kyc_document_add(
    *, case: KycCase, user, doc_type: str, name: str, content, expires_on: date | None = None
) -> KycDocument:
    """Validate an upload by its content and store it privately under a server-chosen name.

    Nothing is stored when the file is refused (`UploadRejected` carries the message for the client).
    """
    if case.user_id != user.pk:
        raise ApplicationError("This verification case is not yours.", code="not_found")
    if case.state not in EDITABLE_STATES:
        raise ApplicationError("Documents can be added only before the case is submitted.")
    if doc_type not in KycDocument.Type.values:
        raise ApplicationError("Choose what kind of document this is.")
    if expires_on is not None and expires_on <= timezone.localdate():
        raise ApplicationError("This document has expired. Please upload a valid one.")
    upload = validate_upload(name=name, content=content)
    document = KycDocument(
        case=case,
        doc_type=doc_type,
        original_name=upload.original_name,
        content_type=upload.content_type,
        size=upload.size,
        sha256=upload.sha256,
        pages=upload.pages,
        width=upload.width,
        height=upload.height,
        expires_on=expires_on,
        uploaded_by=user,
    )
    document.file.save(upload.storage_name, ContentFile(upload.content), save=False)
    try:
        document.save()
    except Exception:
        document.file.delete(save=False)  # no orphan file when the row cannot be written
        raise
    return document


def kyc_case_missing(*, case: KycCase) -> list[str]:
    """What still stops the client from submitting, in words the status page shows."""
    user = case.user
    missing = []
    profile = ClientProfile.objects.filter(user_id=case.user_id).first()
    if profile is None or not profile.details_complete:
        missing.append("your personal details")
    compliance = client_compliance(user=user)
    if compliance.questionnaire_score is None:
        missing.append("the appropriateness questionnaire")
    if compliance.disclosure_version != settings.KYC_DISCLOSURE_VERSION:
        missing.append("accepting the risk disclosure")
    # Documents that already carried an approval still count: an upgrade asks only for what is new.
    types = set(_supporting_documents(case).values_list("doc_type", flat=True))
    for group in case.target_level.required_documents:
        if not types & DOCUMENT_GROUPS[group]:
            missing.append(GROUP_LABELS[group])
    return missing


def kyc_case_submit(*, case: KycCase, user) -> KycCase:
    """Send the case for review once nothing is missing; the provider is told after commit."""
    if case.user_id != user.pk:
        raise ApplicationError("This verification case is not yours.", code="not_found")
    missing = kyc_case_missing(case=case)
    if missing:
        raise ApplicationError("Before you submit, please complete: " + ", ".join(missing) + ".")
    with transaction.atomic():
        locked = KycCase.objects.select_for_update().get(pk=case.pk)
        apply_transition(locked, "submit", by=user, description="submitted by the client")
        locked.submitted_at = timezone.now()
        locked.save()
        from kyc.tasks import kyc_case_notify_provider

        transaction.on_commit(lambda: kyc_case_notify_provider.delay(locked.pk))
    return locked


def _reviewer_check(reviewer, case: KycCase) -> None:
    if reviewer is None:
        return  # the provider decides (webhook)
    if not reviewer.has_perm("kyc.change_kyccase"):
        raise ApplicationError("You may not review verification cases.", code="permission")
    if reviewer.pk == case.user_id:
        raise ApplicationError("Nobody reviews their own verification.", code="permission")


def _supporting_documents(case: KycCase):
    """The documents an approval rests on: this case's and those of the client's earlier approved cases."""
    return KycDocument.objects.filter(Q(case=case) | Q(case__user_id=case.user_id, case__state=KycCase.State.APPROVED))


def _recompute_level(user) -> None:
    """The client's level is the highest one still backed by an approved case (or the base level)."""
    best = (
        KycCase.objects.filter(user=user, state=KycCase.State.APPROVED)
        .select_related("target_level")
        .order_by("-target_level__rank")
        .first()
    )
    level = best.target_level if best else VerificationLevel.objects.get(code=BASE_LEVEL)
    client_level_set(user=user, level=level)


def _decide(case: KycCase, transition: str, *, reviewer, reason: str, client_message: str = "") -> KycCase:
    with transaction.atomic():
        locked = KycCase.objects.select_for_update(of=("self",)).select_related("user", "target_level").get(pk=case.pk)
        was_approved = locked.state == KycCase.State.APPROVED
        if transition in ("approve", "reject", "request_resubmission") and locked.state == KycCase.State.SUBMITTED:
            apply_transition(locked, "start_review", by=reviewer, description="review started")
        apply_transition(locked, transition, by=reviewer, description=reason or client_message)
        locked.decided_at, locked.decided_by = timezone.now(), reviewer
        locked.internal_reason, locked.client_message = reason, client_message
        if transition == "approve":
            expiries = [d for d in _supporting_documents(locked).values_list("expires_on", flat=True) if d]
            locked.expires_at = min(expiries) if expiries else None
        locked.save()
        if transition == "approve" or (transition in ("reject", "expire") and was_approved):
            _recompute_level(locked.user)
        transaction.on_commit(lambda: _email_outcome(locked), robust=True)
    logger.info("KYC case %s: %s by %s", locked.pk, transition, getattr(reviewer, "pk", "provider"))
    return locked


def kyc_case_start_review(*, case: KycCase, reviewer) -> KycCase:
    _reviewer_check(reviewer, case)
    with transaction.atomic():
        locked = KycCase.objects.select_for_update().get(pk=case.pk)
        apply_transition(locked, "start_review", by=reviewer, description="review started")
        locked.save()
    return locked


def kyc_case_approve(*, case: KycCase, reviewer, reason: str = "") -> KycCase:
    """Approve: the client moves to the case's target level at once."""
    _reviewer_check(reviewer, case)
    return _decide(case, "approve", reviewer=reviewer, reason=reason or "documents verified")


def kyc_case_reject(*, case: KycCase, reviewer, reason: str, client_message: str) -> KycCase:
    """Reject for good; a previously approved case no longer backs the client's level (it is recomputed)."""
    _reviewer_check(reviewer, case)
    if not reason.strip() or not client_message.strip():
        raise ApplicationError("Give the internal reason and the message the client will read.")
    return _decide(case, "reject", reviewer=reviewer, reason=reason, client_message=client_message)


def kyc_case_request_resubmission(*, case: KycCase, reviewer, client_message: str, reason: str = "") -> KycCase:
    _reviewer_check(reviewer, case)
    if not client_message.strip():
        raise ApplicationError("Tell the client what to send again.")
    return _decide(
        case, "request_resubmission", reviewer=reviewer, reason=reason or client_message, client_message=client_message
    )


def kyc_cases_expire(*, today: date | None = None) -> int:
    """Expire approved cases whose earliest document has run out; the client keeps only what other approved
    cases still back. One failing case (e.g. its email) does not stop the others."""
    today = today or timezone.localdate()
    count = 0
    for case in KycCase.objects.filter(state=KycCase.State.APPROVED, expires_at__lt=today):
        _decide(
            case,
            "expire",
            reviewer=None,
            reason="a document expired",
            client_message="One of your documents has expired. Please verify again with a valid document.",
        )
        count += 1
    return count


SUBJECTS = {
    KycCase.State.APPROVED: "Your account is verified",
    KycCase.State.REJECTED: "We could not verify your account",
    KycCase.State.RESUBMISSION_REQUESTED: "Please send us new documents",
    KycCase.State.EXPIRED: "Your verification has expired",
}


def _email_outcome(case: KycCase) -> None:
    subject = SUBJECTS.get(case.state)
    if not subject:
        return
    lines = [f"Hello {case.user.first_name or case.user.email},", ""]
    if case.state == KycCase.State.APPROVED:
        lines.append(f"Your verification is complete: your account is now “{case.target_level.name}”.")
    else:
        lines.append(case.client_message)
    lines += ["", f"See your verification status at {settings.SITE_URL}/portal/verification/", "", settings.BROKER_NAME]
    send_mail(f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}", "\n".join(lines), None, [case.user.email])
