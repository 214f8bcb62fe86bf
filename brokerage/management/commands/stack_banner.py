"""Check what the stack needs before starting it, and print where everything is and how to sign in."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from brokerage import demo
from brokerage.health import READINESS_CHECKS


class Command(BaseCommand):
    help = "Verify the database and broker answer, then print the URLs and demo logins."

    def handle(self, *args, **options) -> None:
        # The trade servers are started by `make run` itself, after this check; only what must already be up is asked.
        for name in ("database", "broker"):
            check = READINESS_CHECKS[name]
            try:
                check()
            except Exception as exc:  # any failure here must stop `make run` with a readable line
                raise CommandError(f"{name} is not reachable ({type(exc).__name__}: {exc}).") from None
        port = os.environ.get("PORT", "8000")
        base = f"http://127.0.0.1:{port}"
        db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
        out = self.stdout.write
        out("")
        out(self.style.SUCCESS(f"{settings.BROKER_NAME} back-office is starting (database: {db}, broker: {broker})"))
        out(f"  Client portal   {base}/")
        out(f"  Sign in         {base}/accounts/login/")
        out(f"  Back-office     {base}/admin/")
        out(f"  API docs        {base}/api/docs/")
        out(f"  Health          {base}/healthz   {base}/readyz")
        out(f"  Mock MT5        {settings.MT5_MOCK_URL} (live), http://127.0.0.1:8448 (demo)")
        out("")
        out(f"  Every demo login uses the password {demo.DEMO_PASSWORD}")
        for staff in demo.STAFF:
            out(f"    staff   {staff.email:<28} {staff.role}")
        for client in demo.CLIENTS:
            out(f"    client  {client.email:<28}")
        out("  Staff sign-in asks for a two-factor code: run `.venv/bin/python manage.py demo_totp` to get it.")
        out("  Emails (verification, password reset) are printed in this console.")
        out("")
