"""Signal receivers: quick, never raising into the sender, each hands over to one service or task."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


def on_deals_imported(sender, *, server_id: int, count: int, **kwargs) -> None:
    """New deals were stored: compute their commissions after the import's transaction commits."""
    from ib.tasks import commissions_run

    transaction.on_commit(lambda: commissions_run.delay(trigger=f"import:{server_id}"))


def on_user_signed_up(sender, *, request, user, **kwargs) -> None:
    """Attribute the new client: the referral code typed at signup wins, else the first-touch cookie."""
    from django.core import signing

    from crm.models import ClientProfile
    from ib.services import client_attribute_signup

    profile = ClientProfile.objects.filter(user=user).only("referral_code").first()
    typed = profile.referral_code if profile else ""
    click_id = None
    if request is not None:
        try:
            click_id = request.get_signed_cookie(
                settings.IB_REFERRAL_COOKIE,
                default=None,
                salt="ib.referral",
                max_age=settings.IB_ATTRIBUTION_WINDOW_DAYS * 86400,
            )
        except signing.BadSignature:
            click_id = None
    try:
        client_attribute_signup(user=user, typed_code=typed, click_id=int(click_id) if click_id else None)
    except Exception:
        # Signup must never fail because of attribution; staff see unattributed clients and can assign them.
        logger.exception("IB attribution failed for user %s", user.pk)
