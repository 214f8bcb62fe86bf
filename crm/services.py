"""Business writes of the CRM: client registration and housekeeping."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from crm.models import ClientProfile, User


@transaction.atomic
def client_register(*, user: User, referral_code: str = "", signup_ip: str | None = None) -> ClientProfile:
    """Give a newly signed-up user a client profile. Idempotent: a second call returns the existing profile and
    never overwrites the referral code the client first gave (first claim is what attribution is based on)."""
    profile, _created = ClientProfile.objects.get_or_create(
        user=user, defaults={"referral_code": referral_code.strip(), "signup_ip": signup_ip}
    )
    return profile


PROFILE_FIELDS = ("legal_name", "date_of_birth", "country", "address_line", "city", "postcode", "phone")


@transaction.atomic
def client_profile_update(*, user: User, **details) -> ClientProfile:
    """Save the client's personal details (only the onboarding fields; anything else is refused)."""
    unknown = set(details) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"Not profile fields: {', '.join(sorted(unknown))}")
    profile, _ = ClientProfile.objects.select_for_update().get_or_create(user=user)
    for field, value in details.items():
        setattr(profile, field, value.strip() if isinstance(value, str) else value)
    profile.full_clean()
    profile.save()
    return profile


def sessions_clear_expired() -> int:
    """Delete expired sessions; returns how many went. Safe to run at any time and any number of times."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
