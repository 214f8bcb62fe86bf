"""Leave half of every trading-account page free on PostgreSQL, so snapshot syncs update rows in place (HOT).

Every sync rewrites the balance, equity and margin of every open account. PostgreSQL writes a new row version for
each; when the page has no room for it, the version goes to another page and every index of the table (seven) gets
a new entry: most of a sync's database time and the tables' bloat. With room on the page and no updated column
indexed, the update is heap-only and the old version is pruned on the page at the next visit. The setting applies to
pages written from now on: an existing table reaches it as rows move, or at once with `VACUUM FULL` in a quiet hour.
SQLite has no such setting; nothing to do there.
"""

from django.db import migrations

TABLE = "mt5bridge_tradingaccount"


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 50)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("mt5bridge", "0004_deal_position_index"),
    ]

    operations = [
        migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False),
    ]
