"""Load the demo data. Idempotent: running it twice leaves the same users, roles and passwords."""

from __future__ import annotations

from decimal import Decimal

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
from kyc.models import VerificationLevel
from kyc.services.compliance import client_level_set
from mt5bridge.models import TradeServer, TradingAccount, TradingGroup
from mt5bridge.services import trading_account_open


class Command(BaseCommand):
    help = "Create the demo staff (one per role) and clients. Safe to run repeatedly; refused in production."

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError("Demo data is never loaded with DJANGO_ENV=production.")
        steps = (
            [(self._staff, s) for s in demo.STAFF]
            + [(self._client, c) for c in demo.CLIENTS]
            + [(self._server, s) for s in demo.SERVERS]
            + [(self._account, a) for a in demo.ACCOUNTS]
            + [(self._ib_program, None)]
        )
        for step, item in tqdm(steps, desc="Demo data", unit="record", disable=options["verbosity"] == 0):
            with transaction.atomic():
                step(item)
        if options["verbosity"]:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo data ready: {len(demo.STAFF)} staff, {len(demo.CLIENTS)} clients, "
                    f"{len(demo.SERVERS)} trade servers, {len(demo.ACCOUNTS)} trading accounts, 2 IBs."
                )
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
        # Demo shortcut: the verified demo clients skip onboarding (a real client goes through KYC review).
        client_level_set(user=user, level=VerificationLevel.objects.get(code=client.level))

    def _ib_program(self, _) -> None:
        from ib.demo import seed_ib_demo
        from ib.models import ClientReferral
        from ib.services.attribution import client_attribute_signup

        for ib_user in (demo.IB_MASTER, demo.IB_SUB):
            self._client(ib_user)
        seed_ib_demo(
            master_email=demo.IB_MASTER.email, sub_email=demo.IB_SUB.email, client_email="alice@demo.example",
            master_code=demo.IB_MASTER_CODE,
        )  # fmt: skip
        bob = User.objects.get(email="bob@demo.example")
        if not ClientReferral.objects.filter(client=bob).exists():
            client_attribute_signup(user=bob, typed_code=bob.client_profile.referral_code)

    def _server(self, spec: demo.DemoServer) -> None:
        server, _ = TradeServer.objects.get_or_create(
            name=spec.name,
            defaults={
                "kind": spec.kind,
                "url": spec.url,
                "manager_login": 1000,
                "password_env": "MT5_MOCK_PASSWORD",
                "next_login": spec.first_login,
            },
        )
        for name, account_type, currency, leverages, commission in spec.groups:
            TradingGroup.objects.get_or_create(
                server=server,
                name=name,
                defaults={
                    "account_type": account_type,
                    "currency": currency,
                    "leverages": list(leverages),
                    "commission_per_lot": Decimal(commission),
                },
            )

    def _account(self, spec: tuple) -> None:
        email, kind, account_type, currency, leverage = spec
        user = User.objects.get(email=email)
        exists = TradingAccount.objects.filter(
            user=user, server__kind=kind, group__account_type=account_type, currency=currency
        ).exists()
        if not exists:
            # Provisioned by the worker once the mock servers answer (the task retries until they do).
            trading_account_open(user=user, kind=kind, account_type=account_type, currency=currency, leverage=leverage)
