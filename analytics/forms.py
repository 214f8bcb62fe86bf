"""The dashboards' filter bar: a date range (trading days), currency, country, provider and trade server."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from analytics.days import broker_today
from analytics.selectors import Filters

DEFAULT_DAYS = 30
MAX_DAYS = 731


class FilterForm(forms.Form):
    first = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    last = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    currency = forms.CharField(required=False, max_length=8)
    country = forms.CharField(required=False, max_length=60)
    provider = forms.CharField(required=False, max_length=32)
    server = forms.CharField(required=False, max_length=40)

    def clean_country(self) -> str:
        value = self.cleaned_data["country"].strip().upper()
        if value and not (len(value) == 2 and value.isascii() and value.isalpha()):
            raise forms.ValidationError("Use a two-letter country code, e.g. DE.")
        return value

    def clean_currency(self) -> str:
        value = self.cleaned_data["currency"].strip().upper() or "USD"
        if not (value.isascii() and value.isalpha()):
            raise forms.ValidationError("Use a currency code, e.g. USD.")
        return value

    def clean(self):
        data = super().clean()
        yesterday = broker_today() - timedelta(days=1)
        last = data.get("last") or yesterday
        first = data.get("first") or last - timedelta(days=DEFAULT_DAYS - 1)
        if "first" in self.errors or "last" in self.errors:
            return data
        if first > last:
            raise forms.ValidationError("The range is reversed: “From” is after “To”.")
        if (last - first).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"Pick at most {MAX_DAYS} days.")
        data["first"], data["last"] = first, last
        return data

    def filters(self) -> Filters:
        """The validated filters (call after is_valid())."""
        data = self.cleaned_data
        return Filters(
            first=data["first"],
            last=data["last"],
            currency=data.get("currency") or "USD",
            country=data.get("country", ""),
            provider=data.get("provider", "").strip(),
            server=data.get("server", "").strip(),
        )


def default_filters() -> Filters:
    last = broker_today() - timedelta(days=1)
    return Filters(first=last - timedelta(days=DEFAULT_DAYS - 1), last=last)
