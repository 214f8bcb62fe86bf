"""Forms of the IB pages: input validation only; the services decide."""

from __future__ import annotations

from django import forms

from ib.models import ClientReferral, code_validator


class ApplyForm(forms.Form):
    introduced_by = forms.CharField(
        label="Introduced by (IB code, optional)",
        required=False,
        max_length=32,
        validators=[code_validator],
        help_text="If another IB brought you to us, their code makes you their sub-IB.",
    )
    note = forms.CharField(
        label="How will you introduce clients?",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=2000,
        help_text="Your audience, channels and the markets you cover.",
    )
    accept = forms.BooleanField(label="I accept the IB programme terms and will not offer investment advice.")

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        referral = ClientReferral.objects.select_related("ib").filter(client=user).first()
        if referral is not None and not self.is_bound:
            self.fields["introduced_by"].initial = referral.ib.referral_code


class LinkForm(forms.Form):
    campaign = forms.CharField(label="Campaign", max_length=64, help_text="e.g. YouTube March, Telegram group")


class StatementFilterForm(forms.Form):
    month = forms.ChoiceField(label="Month", required=False)
    client = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, months: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["month"].choices = [("", "All months"), *[(m, m) for m in months]]
