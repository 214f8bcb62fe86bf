"""PEP and sanctions screening behind an adapter. The bundled `MockScreeningProvider` checks a small built-in list
of fictional names so the flow works offline; a real provider (ComplyAdvantage, Refinitiv...) implements the same
`screen` method and is chosen by settings.KYC_SCREENING_PROVIDER."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class ScreeningMatch:
    list_name: str
    name: str
    score: float


class ScreeningProvider(Protocol):
    def screen(self, *, full_name: str, country: str, date_of_birth=None) -> list[ScreeningMatch]: ...


def _tokens(name: str) -> set[str]:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return {t for t in "".join(c if c.isalnum() else " " for c in folded).split() if len(t) > 1}


class MockScreeningProvider:
    """Fictional entries only; a match needs every token of the listed name in the client's name."""

    LISTS = {
        "Mock sanctions list": ["Ivan Sanctionov", "Boris Embargo"],
        "Mock PEP list": ["Petra Politica", "Minister Example"],
    }

    def screen(self, *, full_name: str, country: str, date_of_birth=None) -> list[ScreeningMatch]:
        tokens = _tokens(full_name)
        return [
            ScreeningMatch(list_name, listed, 1.0)
            for list_name, names in self.LISTS.items()
            for listed in names
            if _tokens(listed) <= tokens
        ]


def screening_provider() -> ScreeningProvider:
    return import_string(getattr(settings, "KYC_SCREENING_PROVIDER", "kyc.screening.MockScreeningProvider"))()
