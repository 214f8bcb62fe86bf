"""KYC providers behind one interface, chosen by settings.KYC_PROVIDER and looked up by name per case."""

from __future__ import annotations

from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class KycProvider(Protocol):
    name: str

    def case_submitted(self, *, case) -> None:
        """Tell the provider a case is ready (create the applicant, start the check). Idempotent."""


@cache
def provider_for(name: str) -> KycProvider:
    try:
        return import_string(settings.KYC_PROVIDERS[name])()
    except KeyError:
        raise ValueError(f"Unknown KYC provider {name!r}; known: {', '.join(settings.KYC_PROVIDERS)}") from None
