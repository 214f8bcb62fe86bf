"""Run reconciliation now (the nightly job does the same): PSPs against deposits, MT5 against the ledger."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from payments.tasks import reconcile_all


class Command(BaseCommand):
    help = "Reconcile every PSP (last two days) and every live trade server; reports appear in the admin."

    def handle(self, *args, **options) -> None:
        for scope, result in reconcile_all().items():
            self.stdout.write(f"{scope}: {result} discrepanc{'y' if result == 1 else 'ies'} to look at")
