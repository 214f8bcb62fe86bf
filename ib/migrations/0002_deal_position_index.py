"""The engine finds each closing deal's opening deal by (server, position id). mt5bridge declares that index itself
(its migration 0004); this step only orders the IB program's migrations after it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ib", "0001_initial"), ("mt5bridge", "0004_deal_position_index")]

    operations: list = []
