from __future__ import annotations

from django import forms
from django.http import HttpRequest

from crm.models import User, referral_code_validator
from crm.services import client_register


class SignupExtraForm(forms.Form):
    """What allauth's signup form asks beyond email and password: the optional IB referral code."""

    referral_code = forms.CharField(
        label="Referral code (optional)",
        required=False,
        max_length=32,
        validators=[referral_code_validator],
        help_text="If a partner introduced you, enter their code.",
    )

    def signup(self, request: HttpRequest, user: User) -> None:
        client_register(
            user=user,
            referral_code=self.cleaned_data.get("referral_code", ""),
            signup_ip=request.META.get("REMOTE_ADDR"),
        )
