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
    level: str = "registered"  # verification level the demo starts them at


STAFF = (
    DemoStaff("admin@demo.example", roles.ADMINISTRATOR, "Ada", superuser=True),
    DemoStaff("support@demo.example", roles.SUPPORT, "Sam"),
    DemoStaff("compliance@demo.example", roles.COMPLIANCE, "Cleo"),
    DemoStaff("finance@demo.example", roles.FINANCE, "Fin"),
    DemoStaff("finance2@demo.example", roles.FINANCE, "Fran"),
    DemoStaff("dealing@demo.example", roles.DEALING, "Dee"),
    DemoStaff("ibmanager@demo.example", roles.IB_MANAGER, "Ira"),
)

IB_MASTER_CODE = "PARTNER-01"  # the master IB's code, which bob typed at signup

CLIENTS = (
    DemoClient("alice@demo.example", "Alice", "Martin", level="full"),
    DemoClient("bob@demo.example", "Bob", "Nguyen", referral_code=IB_MASTER_CODE, level="identity"),
    DemoClient("carol@demo.example", "Carol", "Okafor"),  # not verified yet: walks through onboarding
)


@dataclass(frozen=True)
class DemoServer:
    name: str
    kind: str
    url: str
    port: int
    first_login: int
    # The groups the bundled mock server starts with, so accounts can be requested before it first answers;
    # `mt5bridge.trade_servers_refresh` re-reads them from the server every minute.
    groups: tuple[tuple[str, str, str, tuple[int, ...], str], ...]


REAL_LEVERAGES = (30, 50, 100, 200)
DEMO_LEVERAGES = (30, 50, 100, 200, 500)
# The IB program's demo: a master IB (bob signed up with its code) and a sub-IB that alice belongs to.
IB_MASTER = DemoClient("ib.master@demo.example", "Morgan", "Reyes", level="full")
IB_SUB = DemoClient("ib.sub@demo.example", "Sasha", "Kowalski", level="full")

SERVERS = (
    DemoServer(
        "mt5-live",
        "live",
        "http://127.0.0.1:8447",
        8447,
        500000,
        (
            ("real\\standard-usd", "standard", "USD", REAL_LEVERAGES, "0"),
            ("real\\standard-eur", "standard", "EUR", REAL_LEVERAGES, "0"),
            ("real\\pro-usd", "pro", "USD", REAL_LEVERAGES, "3.50"),
        ),
    ),
    DemoServer(
        "mt5-demo",
        "demo",
        "http://127.0.0.1:8448",
        8448,
        90000000,
        (
            ("demo\\standard-usd", "standard", "USD", DEMO_LEVERAGES, "0"),
            ("demo\\pro-eur", "pro", "EUR", DEMO_LEVERAGES, "3.00"),
        ),
    ),
)

# (client email, kind, account type, currency, leverage)
ACCOUNTS = (
    ("alice@demo.example", "live", "standard", "USD", 100),
    ("alice@demo.example", "demo", "standard", "USD", 500),
    ("bob@demo.example", "live", "pro", "USD", 200),
    ("carol@demo.example", "demo", "pro", "EUR", 100),
)
