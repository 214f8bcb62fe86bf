from __future__ import annotations

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group

from crm.models import ClientProfile, User

PASSWORD = "Correct-horse-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        obj.save()
        if create and extracted is not False:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class ClientFactory(UserFactory):
    profile = factory.RelatedFactory("tests.crm.factories.ClientProfileFactory", factory_related_name="user")


class ClientProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClientProfile

    user = factory.SubFactory(UserFactory)
    referral_code = ""


def make_staff(role: str, *, mfa: bool = True, **kwargs) -> tuple[User, str | None]:
    """A staff user in a role group; returns the user and its TOTP secret (None without MFA)."""
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(Group.objects.get(name=role))
    secret = None
    if mfa:
        secret = generate_totp_secret()
        TOTP.activate(user, secret)
    return user, secret


def totp_code(secret: str, step_offset: int = 0) -> str:
    """The code an authenticator app would show now (or `step_offset` 30-second steps away)."""
    import time

    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 + step_offset))
