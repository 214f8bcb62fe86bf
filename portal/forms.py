from __future__ import annotations

from django import forms

from mt5bridge.selectors import offer_choices


class OpenAccountForm(forms.Form):
    kind = forms.ChoiceField(label="Account", widget=forms.RadioSelect)
    account_type = forms.ChoiceField(label="Account type")
    currency = forms.ChoiceField(label="Currency")
    leverage = forms.TypedChoiceField(label="Leverage", coerce=int)

    def __init__(self, *args, groups, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, choices in offer_choices(groups).items():
            self.fields[name].choices = choices
        if self.fields["kind"].choices:
            self.fields["kind"].initial = self.fields["kind"].choices[0][0]
        self.fields["leverage"].initial = 100


class LeverageForm(forms.Form):
    leverage = forms.TypedChoiceField(label="New leverage", coerce=int)

    def __init__(self, *args, account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["leverage"].choices = [(v, f"1:{v}") for v in account.group.leverages]
        self.fields["leverage"].initial = account.leverage
