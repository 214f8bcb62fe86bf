"""Load the demo data. Idempotent: running it twice leaves the same users, roles and passwords."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from brokerage import demo
from crm.models import User
from crm.services import client_register


class Command(BaseCommand):
    help = "Create the demo staff (one per role) and clients. Safe to run repeatedly; refused in production."

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError("Demo data is never loaded with DJANGO_ENV=production.")
        steps = [(self._staff, s) for s in demo.STAFF] + [(self._client, c) for c in demo.CLIENTS]
        for step, item in tqdm(steps, desc="Demo data", unit="user", disable=options["verbosity"] == 0):
            with transaction.atomic():
                step(item)
        if options["verbosity"]:
            self.stdout.write(
                self.style.SUCCESS(f"Demo data ready: {len(demo.STAFF)} staff, {len(demo.CLIENTS)} clients.")
            )

    def _user(self, email: str, first_name: str, last_name: str = "") -> User:
        user, _ = User.objects.get_or_create(email=email, defaults={"first_name": first_name, "last_name": last_name})
        user.set_password(demo.DEMO_PASSWORD)
        user.save()
        EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        return user

    def _staff(self, staff: demo.DemoStaff) -> None:
        user = self._user(staff.email, staff.first_name)
        user.is_staff = True
        user.is_superuser = staff.superuser
        user.save(update_fields=["is_staff", "is_superuser"])
        user.groups.set([Group.objects.get(name=staff.role)])
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, demo.DEMO_TOTP_SECRET)

    def _client(self, client: demo.DemoClient) -> None:
        user = self._user(client.email, client.first_name, client.last_name)
        client_register(user=user, referral_code=client.referral_code)
