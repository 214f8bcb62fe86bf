"""Print the current TOTP code of the demo staff accounts (they share a documented demo secret)."""

from __future__ import annotations

import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from brokerage import demo


class Command(BaseCommand):
    help = "Print the current two-factor code for the demo staff logins (local and test only)."

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError("There are no demo logins in production.")
        period = 30
        now = int(time.time())
        code = format_hotp_value(hotp_value(demo.DEMO_TOTP_SECRET, now // period))
        self.stdout.write(f"{code}  (valid for {period - now % period} more seconds)")
