"""The client's compliance state: level, questionnaire, risk disclosure, risk assessment, screening, holds."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError
from crm.models import ClientProfile
from kyc import questionnaire
from kyc.models import AmlAlert, ClientCompliance, ComplianceHold, VerificationLevel
from kyc.screening import screening_provider

BASE_LEVEL = "registered"


def client_compliance(*, user) -> ClientCompliance:
    """The client's compliance record, created at the base level on first use (idempotent under races)."""
    try:
        return ClientCompliance.objects.select_related("level").get(user=user)
    except ClientCompliance.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            return ClientCompliance.objects.create(user=user, level=VerificationLevel.objects.get(code=BASE_LEVEL))
    except IntegrityError:
        return ClientCompliance.objects.select_related("level").get(user=user)


def client_level_set(*, user, level: VerificationLevel) -> ClientCompliance:
    compliance = client_compliance(user=user)
    ClientCompliance.objects.filter(pk=compliance.pk).update(level=level, updated_at=timezone.now())
    compliance.level = level
    return compliance


@transaction.atomic
def questionnaire_submit(*, user, answers: dict[str, str]) -> questionnaire.Outcome:
    """Score the appropriateness test and record score, version and the leverage cap it implies."""
    try:
        outcome = questionnaire.score_answers(answers)
    except ValueError as exc:
        raise ApplicationError(str(exc)) from None
    compliance = client_compliance(user=user)
    ClientCompliance.objects.filter(pk=compliance.pk).update(
        questionnaire_score=outcome.score,
        questionnaire_version=questionnaire.VERSION,
        questionnaire_at=timezone.now(),
        leverage_cap=outcome.leverage_cap,
        updated_at=timezone.now(),
    )
    client_risk_assess(user=user)
    return outcome


def disclosure_accept(*, user, version: str) -> ClientCompliance:
    """Record that the client accepted the risk disclosure, with its version and time."""
    if version != settings.KYC_DISCLOSURE_VERSION:
        raise ApplicationError("The risk disclosure has changed. Please read the current version.")
    compliance = client_compliance(user=user)
    now = timezone.now()
    ClientCompliance.objects.filter(pk=compliance.pk).update(
        disclosure_version=version, disclosure_accepted_at=now, updated_at=now
    )
    compliance.disclosure_version, compliance.disclosure_accepted_at = version, now
    return compliance


def client_screen(*, user) -> ClientCompliance:
    """Screen the client's legal name against PEP and sanctions lists and record the outcome."""
    profile = ClientProfile.objects.filter(user_id=user.pk).first()
    name = (profile.legal_name if profile else "") or f"{user.first_name} {user.last_name}"
    matches = screening_provider().screen(full_name=name, country=profile.country if profile else "")
    compliance = client_compliance(user=user)
    ClientCompliance.objects.filter(pk=compliance.pk).update(
        screening_status="match" if matches else "clear",
        screening_matches=[{"list": m.list_name, "name": m.name, "score": m.score} for m in matches],
        screened_at=timezone.now(),
    )
    return client_risk_assess(user=user)


def client_risk_assess(*, user) -> ClientCompliance:
    """Derive the risk level from country, screening, questionnaire and open alerts, with the reasons."""
    compliance = client_compliance(user=user)
    compliance.refresh_from_db()
    profile = ClientProfile.objects.filter(user_id=user.pk).first()
    reasons: list[str] = []
    level = ClientCompliance.Risk.LOW
    if profile and profile.country and profile.country in settings.KYC_HIGH_RISK_COUNTRIES:
        reasons.append(f"Resident of high-risk country {profile.country}.")
        level = ClientCompliance.Risk.HIGH
    if compliance.screening_status == "match":
        reasons.append("Possible PEP or sanctions match.")
        level = ClientCompliance.Risk.HIGH
    if AmlAlert.objects.filter(user=user, severity="high").exclude(state=AmlAlert.State.CLOSED).exists():
        reasons.append("Open high-severity AML alert.")
        level = ClientCompliance.Risk.HIGH
    if compliance.questionnaire_score is not None and compliance.leverage_cap == 30:
        reasons.append("Appropriateness test: leveraged trading may not be appropriate.")
        if level == ClientCompliance.Risk.LOW:
            level = ClientCompliance.Risk.MEDIUM
    ClientCompliance.objects.filter(pk=compliance.pk).update(risk_level=level, risk_reasons=reasons)
    compliance.risk_level, compliance.risk_reasons = level, reasons
    return compliance


def compliance_hold_place(
    *,
    user,
    reason: str,
    placed_by,
    blocks_withdrawals: bool = True,
    blocks_deposits: bool = False,
    blocks_trading: bool = False,
) -> ComplianceHold:
    if not reason.strip():
        raise ApplicationError("Say why the hold is placed.")
    if placed_by is not None and not placed_by.has_perm("kyc.add_compliancehold"):
        raise ApplicationError("You may not place compliance holds.", code="permission")
    return ComplianceHold.objects.create(
        user=user,
        reason=reason,
        placed_by=placed_by,
        blocks_withdrawals=blocks_withdrawals,
        blocks_deposits=blocks_deposits,
        blocks_trading=blocks_trading,
    )


@transaction.atomic
def compliance_hold_release(*, hold: ComplianceHold, released_by, reason: str) -> ComplianceHold:
    if not reason.strip():
        raise ApplicationError("Say why the hold is released.")
    if not released_by.has_perm("kyc.change_compliancehold"):
        raise ApplicationError("You may not release compliance holds.", code="permission")
    hold = ComplianceHold.objects.select_for_update().get(pk=hold.pk)
    if hold.released_at:
        raise ApplicationError("This hold was already released.")
    hold.released_at, hold.released_by, hold.release_reason = timezone.now(), released_by, reason
    hold.save()
    return hold


VERIFIED_FIELDS = ("legal_name", "date_of_birth", "country")


def client_details_update(*, user, **details) -> ClientProfile:
    """Save onboarding details and re-screen. Once an approval rests on them, the verified fields (legal name, date
    of birth, country) are frozen: changing them means verifying again, through support."""
    from crm.services import client_profile_update

    compliance = client_compliance(user=user)
    if compliance.level.rank > 0:
        profile = ClientProfile.objects.filter(user=user).first()
        changed = [f for f in VERIFIED_FIELDS if profile is not None and details.get(f) != getattr(profile, f)]
        if changed:
            raise ApplicationError(
                "Your name, date of birth and country were verified. Contact support to change them."
            )
    profile = client_profile_update(user=user, **details)
    client_screen(user=user)
    return profile
