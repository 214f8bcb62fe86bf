"""Run the IB commission engine now (it also runs after each deal import and nightly)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max
from tqdm import tqdm

from ib.models import EngineCursor
from ib.services import commissions_run
from ib.services.engine import CURSOR, commissions_recompute


class Command(BaseCommand):
    help = "Compute IB commissions for deals after the engine's cursor (or re-check a range with --recompute)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=None, help="deal ids per transaction")
        parser.add_argument(
            "--recompute",
            nargs=2,
            type=int,
            metavar=("FROM_ID", "TO_ID"),
            help="compute whatever part of deal ids (FROM, TO] no batch covers yet, without moving the cursor",
        )

    def handle(self, *args, batch_size=None, recompute=None, **options) -> None:
        if recompute:
            low, high = recompute
            if high <= low:
                raise CommandError("TO_ID must be above FROM_ID.")
            created = commissions_recompute(from_deal_id=low, to_deal_id=high, batch_size=batch_size)
            self.stdout.write(f"{created} missing commission lines computed.")
            return
        from mt5bridge.models import Deal

        cursor = EngineCursor.objects.filter(name=CURSOR).values_list("last_deal_id", flat=True).first() or 0
        top = Deal.objects.aggregate(top=Max("id"))["top"] or 0
        with tqdm(total=max(top - cursor, 0), unit="deal", desc="commissions") as bar:
            run = commissions_run(trigger="command", batch_size=batch_size, progress=bar.update)
        self.stdout.write(
            f"Run {run.pk}: {run.batches} batches, {run.rows_created} commission lines, "
            f"{run.cpa_rows_created} CPA rows."
        )
