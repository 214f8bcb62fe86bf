from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """allauth hooks. Emails are stored lower-case so one mailbox is one account."""

    def clean_email(self, email: str) -> str:
        return super().clean_email(email).strip().lower()
