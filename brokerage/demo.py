"""The demo cast `make run` creates: one staff user per role and a few clients. Never used in production."""

from __future__ import annotations

from dataclasses import dataclass

from crm import roles

DEMO_PASSWORD = "Meridian-demo-2026"  # noqa: S105 - documented demo credential, refused in production
# Staff are enrolled in TOTP with this well-known secret so a newcomer can sign in without a phone:
# `manage.py demo_totp` prints the current code. Real staff enrol their own authenticator.
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105


@dataclass(frozen=True)
class DemoStaff:
    email: str
    role: str
    first_name: str
    superuser: bool = False


@dataclass(frozen=True)
class DemoClient:
    email: str
    first_name: str
    last_name: str
    referral_code: str = ""


STAFF = (
    DemoStaff("admin@demo.example", roles.ADMINISTRATOR, "Ada", superuser=True),
    DemoStaff("support@demo.example", roles.SUPPORT, "Sam"),
    DemoStaff("compliance@demo.example", roles.COMPLIANCE, "Cleo"),
    DemoStaff("finance@demo.example", roles.FINANCE, "Fin"),
    DemoStaff("finance2@demo.example", roles.FINANCE, "Fran"),
    DemoStaff("dealing@demo.example", roles.DEALING, "Dee"),
    DemoStaff("ibmanager@demo.example", roles.IB_MANAGER, "Ira"),
)

CLIENTS = (
    DemoClient("alice@demo.example", "Alice", "Martin"),
    DemoClient("bob@demo.example", "Bob", "Nguyen", referral_code="PARTNER-01"),
    DemoClient("carol@demo.example", "Carol", "Okafor"),
)
