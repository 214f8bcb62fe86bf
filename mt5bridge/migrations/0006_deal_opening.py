"""Each closing trade deal keeps its position as opened (`Deal.open_*`), fixed when it is stored.

Deals stored before this migration get it here, by the rule `deals_store` applies from now on: the position's
opening trade deals with a lower ticket. One statement; each subquery is an index lookup (`deal_position_entry`).
"""

from django.db import migrations, models

MATCH = """FROM mt5bridge_deal o WHERE o.server_id = mt5bridge_deal.server_id
    AND o.position_id = mt5bridge_deal.position_id AND o.entry = 0 AND o.action IN (0, 1)
    AND o.ticket < mt5bridge_deal.ticket"""


def backfill(apps, schema_editor):
    schema_editor.execute(
        f"""UPDATE mt5bridge_deal SET
            open_ticket = (SELECT MIN(o.ticket) {MATCH}),
            open_time = (SELECT MIN(o.time) {MATCH}),
            open_volume = (SELECT SUM(o.volume) {MATCH}),
            open_commission = (SELECT SUM(o.commission) {MATCH})
        WHERE action IN (0, 1) AND entry IN (1, 2, 3) AND position_id > 0"""
    )


class Migration(migrations.Migration):
    dependencies = [
        ("mt5bridge", "0005_tradingaccount_fillfactor"),
    ]

    operations = [
        migrations.AddField(
            model_name="deal",
            name="open_commission",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=18, null=True),
        ),
        migrations.AddField(
            model_name="deal",
            name="open_ticket",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="deal",
            name="open_time",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="deal",
            name="open_volume",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=14, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
    ]
