"""Commission rows: no database constraint on the payout and created-by keys (like the others: PostgreSQL queues a
check per inserted row even for a NULL), and the batch found through a BRIN index on PostgreSQL (a batch's rows are
written together, so its block ranges are few; a B-tree index cost the engine's insert a sixth of its time). SQLite
keeps a plain index.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEX = "ib_commission_batch"


def create_batch_index(apps, schema_editor):
    using = "USING brin " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"CREATE INDEX {INDEX} ON ib_commission {using}(batch_id)")


def drop_batch_index(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("ib", "0007_batch_grants"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="commission",
            name="batch",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="rows",
                to="ib.commissionbatch",
            ),
        ),
        migrations.AlterField(
            model_name="commission",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="commission",
            name="payout",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="items",
                to="ib.commissionpayout",
            ),
        ),
        # Django knows the index as a plain one (so SQLite's table rebuilds keep it); PostgreSQL holds it as BRIN.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="commission", index=models.Index(fields=["batch"], name=INDEX))
            ],
            database_operations=[migrations.RunPython(create_batch_index, drop_batch_index, elidable=False)],
        ),
    ]
