"""Release due IB commissions to the IBs' wallets now (the nightly job does the same)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ib.services import payouts_release_due


class Command(BaseCommand):
    help = "Release every approved IB's due commissions (daily, monthly, after review windows) to its wallet."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"{payouts_release_due()} payouts released.")
