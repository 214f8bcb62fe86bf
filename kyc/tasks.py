"""Celery doors of the KYC app."""

from __future__ import annotations

from celery import shared_task

from core.tasks import RETRYING


@shared_task(name="kyc.kyc_case_notify_provider", **RETRYING)
def kyc_case_notify_provider(case_id: int) -> str:
    from kyc.models import KycCase
    from kyc.providers import provider_for

    case = KycCase.objects.get(pk=case_id)
    provider_for(case.provider).case_submitted(case=case)
    return case.provider


@shared_task(name="kyc.kyc_cases_expire")
def kyc_cases_expire() -> int:
    from kyc.services import kyc_cases_expire as expire

    return expire()
