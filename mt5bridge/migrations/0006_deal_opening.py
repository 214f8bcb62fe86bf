"""Each closing trade deal keeps its position as opened (`Deal.open_*`), fixed when it is stored, and the database
generates what the commission engine reads of it (lots and round-turn commission in hundredths, hold time). The
deal table loses its index on the server alone (two others lead with it).

Deals stored before this migration get it here, by the rule `deals_store` applies from now on: the position's
opening trade deals with a lower ticket. One statement; each subquery is an index lookup (`deal_position_entry`).
"""

import django.db.models.deletion
from django.db import migrations, models

import mt5bridge.models

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
        migrations.AddField(
            model_name="deal",
            name="hold_ms",
            field=models.GeneratedField(
                db_persist=True,
                expression=mt5bridge.models.VendorSQL(
                    output_field=models.BigIntegerField(),
                    postgresql="FLOOR(date_part('epoch', \"time\" - open_time) * 1000)::bigint",
                    sqlite='CAST(ROUND((julianday("time") - julianday(open_time)) * 86400000) AS INTEGER)',
                ),
                help_text="Closing deal: milliseconds since its position's first opening deal (NULL when unknown).",
                output_field=models.BigIntegerField(null=True),
            ),
        ),
        migrations.AddField(
            model_name="deal",
            name="lots_centi",
            field=models.GeneratedField(
                db_persist=True,
                expression=mt5bridge.models.VendorSQL(
                    output_field=models.BigIntegerField(),
                    postgresql="ROUND(volume * 100)::bigint",
                    sqlite="CAST(ROUND(volume * 100) AS INTEGER)",
                ),
                help_text="Volume in hundredths of a lot.",
                output_field=models.BigIntegerField(),
            ),
        ),
        migrations.AddField(
            model_name="deal",
            name="turn_commission_centi",
            field=models.GeneratedField(
                db_persist=True,
                expression=mt5bridge.models.VendorSQL(
                    output_field=models.BigIntegerField(),
                    postgresql="ROUND((ABS(commission) + COALESCE(CASE WHEN open_volume = volume OR open_volume = 0 THEN ABS(open_commission) ELSE ROUND(ABS(open_commission) * volume / open_volume, 2) END, 0)) * 100)::bigint",
                    sqlite="CAST(ROUND(ABS(commission) * 100) AS INTEGER) + COALESCE(CASE WHEN CAST(ROUND(open_volume * 100) AS INTEGER) = CAST(ROUND(volume * 100) AS INTEGER) OR CAST(ROUND(open_volume * 100) AS INTEGER) = 0 THEN CAST(ROUND(ABS(open_commission) * 100) AS INTEGER) ELSE CAST(ROUND(CAST(ROUND(ABS(open_commission) * 100) AS INTEGER) * 1.0 * CAST(ROUND(volume * 100) AS INTEGER) / CAST(ROUND(open_volume * 100) AS INTEGER)) AS INTEGER) END, 0)",
                ),
                help_text="Closing deal: the commission on the round turn it completes, in hundredths of the currency.",
                output_field=models.BigIntegerField(),
            ),
        ),
        migrations.AlterField(
            model_name="deal",
            name="server",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deals",
                to="mt5bridge.tradeserver",
            ),
        ),
    ]
