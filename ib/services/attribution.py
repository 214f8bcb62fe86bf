"""Referral links, clicks and attribution: one IB per client; the signup's code wins over the first-touch cookie;
competing claims are flagged for staff; staff reassign with a reason, and every change is logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from core.errors import ApplicationError
from ib.models import (
    AttributionConflict,
    AttributionEvent,
    ClientReferral,
    IntroducingBroker,
    ReferralClick,
    ReferralLink,
    ReferralSpan,
    last_deal_id,
)
from ib.selectors import ib_downline_ids

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def hash_ip(ip: str | None) -> str:
    """A keyed hash of the visitor's IP: lets staff see repeated clicks from one address, never the address.
    The key is IB_CLICK_SALT, or one derived from SECRET_KEY with a purpose label."""
    salt = settings.IB_CLICK_SALT or hashlib.sha256(b"ib.click-salt.v1:" + settings.SECRET_KEY.encode()).hexdigest()
    return hmac.new(salt.encode(), (ip or "").encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Resolved:
    ib: IntroducingBroker
    link: ReferralLink | None


def referral_code_resolve(code: str) -> Resolved | None:
    """An IB referral code or a link code (case-insensitive) of an approved IB, else None."""
    code = (code or "").strip()
    if not code:
        return None
    link = ReferralLink.objects.select_related("ib").filter(code__iexact=code).first()
    if link is not None:
        ib, found_link = link.ib, link
    else:
        ib, found_link = IntroducingBroker.objects.filter(referral_code__iexact=code).first(), None
    if ib is None or ib.state != IntroducingBroker.State.APPROVED:
        return None
    return Resolved(ib=ib, link=found_link)


def referral_link_create(*, ib: IntroducingBroker, campaign: str) -> ReferralLink:
    """A new link for a campaign. Only approved IBs share links."""
    campaign = campaign.strip()
    if ib.state != IntroducingBroker.State.APPROVED:
        raise ApplicationError("Only an approved IB can create referral links.", code="inactive")
    if not campaign:
        raise ApplicationError("Give the campaign a name.", code="campaign_required")
    if len(campaign) > 64:
        raise ApplicationError("A campaign name has at most 64 characters.", code="too_long")
    if ReferralLink.objects.filter(ib=ib, campaign__iexact=campaign).exists():
        raise ApplicationError(f"You already have a link for the campaign “{campaign}”.", code="duplicate")
    stem = slugify(campaign)[:20] or "link"
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return ReferralLink.objects.create(
                    ib=ib, campaign=campaign, code=f"{ib.referral_code.lower()}-{stem}-{secrets.token_hex(2)}"
                )
        except IntegrityError:
            continue
    raise ApplicationError("Could not allocate a link code; please try again.", code="retry")


def referral_click_record(
    *, code: str, ip: str | None, user_agent: str = "", params: dict | None = None, referer: str = ""
) -> ReferralClick:
    """Record a visit through a referral link. Unknown or inactive codes are refused (nothing stored)."""
    resolved = referral_code_resolve(code)
    if resolved is None:
        raise ApplicationError(
            "This referral link is not valid (the code is unknown or no longer active).", code="unknown_code"
        )
    link = (
        resolved.link
        or ReferralLink.objects.get_or_create(
            ib=resolved.ib, code=resolved.ib.referral_code, defaults={"campaign": "default"}
        )[0]
    )
    params = params or {}
    return ReferralClick.objects.create(
        link=link,
        ip_hash=hash_ip(ip),
        user_agent=user_agent[:300],
        landing_page=link.landing_path[:300],
        referer=referer[:300],
        **{name: str(params.get(name, ""))[:100] for name in UTM_FIELDS},
    )


def _flag(*, client, current_ib, claimant_ib, reason: str) -> None:
    try:
        with transaction.atomic():
            AttributionConflict.objects.create(
                client=client, current_ib=current_ib, claimant_ib=claimant_ib, reason=reason[:255]
            )
    except IntegrityError:
        pass  # the same claim is already open


def _self_referral(client, ib: IntroducingBroker) -> bool:
    """A client may not belong to itself as an IB, nor to any IB in its own downline."""
    own = IntroducingBroker.objects.filter(user=client).only("pk").first()
    return ib.user_id == client.pk or (own is not None and ib.pk in ib_downline_ids(ib_id=own.pk))


def client_attribute_signup(*, user, typed_code: str = "", click_id: int | None = None) -> ClientReferral | None:
    """Attribute a newly signed-up client. The referral code typed at signup wins; otherwise the first-touch
    referral cookie if its click is within IB_ATTRIBUTION_WINDOW_DAYS. A cookie for another IB, or a typed code
    that matches no active IB, is flagged for staff. Idempotent: a client already attributed stays as is."""
    window_start = timezone.now() - timedelta(days=settings.IB_ATTRIBUTION_WINDOW_DAYS)
    click = None
    if click_id is not None:
        click = ReferralClick.objects.select_related("link__ib").filter(pk=click_id).first()
        if click is not None and (click.created_at < window_start or click.link.ib.state != "approved"):
            click = None
    typed = referral_code_resolve(typed_code) if typed_code.strip() else None
    with transaction.atomic():
        existing = ClientReferral.objects.filter(client=user).first()
        if existing is not None:
            return existing
        if typed is not None and not _self_referral(user, typed.ib):
            ib, link, source, used_click = typed.ib, typed.link, ClientReferral.Source.SIGNUP_CODE, None
            if click is not None and click.link.ib_id != ib.pk:
                _flag(
                    client=user,
                    current_ib=ib,
                    claimant_ib=click.link.ib,
                    reason="Referral cookie of another IB; the code typed at signup won.",
                )
        elif click is not None and not _self_referral(user, click.link.ib):
            ib, link, source, used_click = click.link.ib, click.link, ClientReferral.Source.COOKIE, click
        else:
            ib = None
        if typed_code.strip() and typed is None:
            _flag(
                client=user,
                current_ib=ib,
                claimant_ib=None,
                reason=f"Unknown referral code typed at signup: {typed_code.strip()[:40]}",
            )
        if ib is None:
            return None
        referral = ClientReferral.objects.create(
            client=user, ib=ib, source=source, link=link, click=used_click, attributed_at=timezone.now()
        )
        AttributionEvent.objects.create(client=user, to_ib=ib, source=source, reason="signup")
        return referral


def client_attribution_check(*, client, ib: IntroducingBroker) -> None:
    """Raise ApplicationError when `client` may not be attributed to `ib` (for forms that validate early)."""
    _check_target(client, ib)


def _check_target(client, ib: IntroducingBroker) -> None:
    if ib.state not in (IntroducingBroker.State.APPROVED,):
        raise ApplicationError(f"{ib.referral_code} is not an active IB.", code="inactive")
    if client.is_staff:
        raise ApplicationError("Staff accounts are not clients.", code="forbidden")
    if _self_referral(client, ib):
        raise ApplicationError(
            "A client cannot be attributed to itself or to an IB in its own downline.", code="self_referral"
        )


def client_attribute_staff(*, client, ib: IntroducingBroker, reason: str, actor) -> ClientReferral:
    """Staff attribute a client who has no IB yet (or move one, which is `client_reassign`)."""
    if ClientReferral.objects.filter(client=client).exists():
        return client_reassign(client=client, ib=ib, reason=reason, actor=actor)
    if not reason.strip():
        raise ApplicationError("Give a reason for the attribution.", code="reason_required")
    _check_target(client, ib)
    with transaction.atomic():
        try:
            with transaction.atomic():
                referral = ClientReferral.objects.create(
                    client=client,
                    ib=ib,
                    source=ClientReferral.Source.STAFF,
                    attributed_at=timezone.now(),
                    reassigned_reason=reason.strip()[:255],
                )
        except IntegrityError:
            raise ApplicationError("This client was attributed meanwhile; reassign instead.", code="conflict") from None
        AttributionEvent.objects.create(
            client=client, to_ib=ib, source=ClientReferral.Source.STAFF, reason=reason.strip()[:255], actor=actor
        )
        return referral


def client_reassign(*, client, ib: IntroducingBroker, reason: str, actor) -> ClientReferral:
    """Move a client to another IB, with a reason (logged). The client's deals imported so far stay with the IB
    they belonged to (a `ReferralSpan` records which); deals imported from now on earn for the new IB and its
    uplines, whenever the engine computes them."""
    if not reason.strip():
        raise ApplicationError("Give a reason for the reassignment.", code="reason_required")
    _check_target(client, ib)
    with transaction.atomic():
        referral = ClientReferral.objects.select_for_update().filter(client=client).first()
        if referral is None:
            raise ApplicationError("This client has no IB yet; attribute it instead.", code="not_attributed")
        if referral.ib_id == ib.pk:
            raise ApplicationError(f"The client already belongs to {ib.referral_code}.", code="unchanged")
        previous = referral.ib_id
        boundary = last_deal_id()
        ReferralSpan.objects.create(
            client=client, ib_id=previous, after_deal_id=referral.after_deal_id or 0, until_deal_id=boundary
        )
        referral.after_deal_id = boundary
        referral.ib = ib
        referral.source = ClientReferral.Source.STAFF
        referral.link = referral.click = None
        referral.attributed_at = timezone.now()
        referral.reassigned_reason = reason.strip()[:255]
        referral.save()
        AttributionEvent.objects.create(
            client=client,
            from_ib_id=previous,
            to_ib=ib,
            source=ClientReferral.Source.STAFF,
            reason=reason.strip()[:255],
            actor=actor,
        )
        return referral


def conflict_resolve(*, conflict: AttributionConflict, give_to_claimant: bool, actor, note: str = "") -> None:
    """Close a flagged claim: keep the current IB, or give the client to the claimant (a logged reassignment)."""
    with transaction.atomic():
        conflict = AttributionConflict.objects.select_for_update().get(pk=conflict.pk)
        if conflict.state != AttributionConflict.State.OPEN:
            raise ApplicationError("This conflict is already resolved.", code="resolved")
        if give_to_claimant:
            if conflict.claimant_ib is None:
                raise ApplicationError("There is no claimant IB to give the client to.", code="no_claimant")
            reason = note.strip() or f"conflict #{conflict.pk} resolved for the claimant"
            client_attribute_staff(client=conflict.client, ib=conflict.claimant_ib, reason=reason, actor=actor)
            conflict.state = AttributionConflict.State.REASSIGNED
        else:
            conflict.state = AttributionConflict.State.KEPT
        conflict.resolved_by = actor
        conflict.resolution_note = note.strip()[:255]
        conflict.save()
