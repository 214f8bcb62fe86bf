"""Feed payments' records to the AML rules (kyc.aml) as plain facts. `kyc` never imports `payments`; this does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from crm.models import ClientProfile
from kyc.aml import ClientFacts, FactWindow, MoneyMovement
from kyc.services import client_compliance
from payments.models import Deposit, Withdrawal

LOOKBACK = timedelta(days=31)
SETTLED = (Deposit.State.SUCCEEDED, Deposit.State.CREDITED, Deposit.State.COMPLETED)


def _movement(deposit: Deposit) -> MoneyMovement:
    return MoneyMovement(
        kind="deposit",
        client_id=deposit.user_id,
        amount=deposit.amount,
        currency=deposit.currency,
        at=deposit.created_at,
        method="card",
        instrument_fingerprint=f"{deposit.provider}:card",
        settled=deposit.state in SETTLED,
        reference=f"deposit:{deposit.pk}",
        payer_name=deposit.payer_name or None,
    )


WITHDRAWN = (Withdrawal.State.APPROVED, Withdrawal.State.SENT, Withdrawal.State.COMPLETED)


def _withdrawal_movement(withdrawal: Withdrawal) -> MoneyMovement:
    if withdrawal.method == Withdrawal.Method.CARD_REFUND and withdrawal.source_deposit_id:
        instrument = f"{withdrawal.source_deposit.provider}:card"
    else:
        instrument = f"wire:{withdrawal.destination}"
    return MoneyMovement(
        kind="withdrawal",
        client_id=withdrawal.user_id,
        amount=withdrawal.amount,
        currency=withdrawal.currency,
        at=withdrawal.created_at,
        method="card" if withdrawal.method == Withdrawal.Method.CARD_REFUND else "wire",
        instrument_fingerprint=instrument,
        settled=withdrawal.state in WITHDRAWN,
        reference=f"withdrawal:{withdrawal.pk}",
    )


def _client_facts(user) -> ClientFacts:
    profile = ClientProfile.objects.filter(user=user).first()
    return ClientFacts(
        client_id=user.pk,
        legal_name=(profile.legal_name if profile else "") or f"{user.first_name} {user.last_name}".strip(),
        # ZZ is ISO 3166's code for "unknown": a client who never gave a country is still screened.
        country=(profile.country if profile else "") or "ZZ",
        risk_level=client_compliance(user=user).risk_level,
        created_at=user.date_joined,
    )


def client_fact_window(*, user, now=None) -> FactWindow:
    """The nightly view of one client: every deposit and withdrawal of the last month, no triggering event."""
    now = now or timezone.now()
    since = now - LOOKBACK
    deposits = Deposit.objects.filter(user=user, created_at__gte=since, state__in=SETTLED)
    withdrawals = Withdrawal.objects.filter(user=user, created_at__gte=since).select_related("source_deposit")
    return FactWindow(
        client=_client_facts(user),
        movements=tuple(_movement(d) for d in deposits) + tuple(_withdrawal_movement(w) for w in withdrawals),
        now=now,
        fx_to_usd={code: Decimal(rate) for code, rate in settings.PAYMENTS_FX_TO_USD.items()},
    )


def deposit_fact_window(*, deposit: Deposit) -> FactWindow:
    """The client's money movements of the last month, with this deposit as the triggering event."""
    user = deposit.user
    now = timezone.now()
    recent = Deposit.objects.filter(user=user, created_at__gte=now - LOOKBACK, state__in=SETTLED).exclude(pk=deposit.pk)
    return FactWindow(
        client=_client_facts(user),
        movements=tuple(_movement(d) for d in recent),
        now=now,
        event=_movement(deposit),
        fx_to_usd={code: Decimal(rate) for code, rate in settings.PAYMENTS_FX_TO_USD.items()},
    )
