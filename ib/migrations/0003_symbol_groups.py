"""Seed the symbol groups plans are written against, with the broker's spread markup per standard lot (data:
IB Managers edit it in the admin)."""

from decimal import Decimal

from django.db import migrations

GROUPS = [
    # code, name, markup per lot (USD), symbols
    ("fx_majors", "FX majors", "3.00", ["EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD"]),
    ("fx_minors", "FX minors", "5.00", ["EURGBP", "EURJPY", "GBPJPY", "EURCHF", "AUDJPY", "EURAUD", "GBPCHF",
                                        "AUDNZD", "CADJPY", "CHFJPY"]),
    ("metals", "Metals", "10.00", ["XAUUSD", "XAGUSD"]),
    ("indices", "Indices", "2.00", ["US30", "US500", "NAS100", "GER40", "UK100"]),
    ("crypto", "Crypto", "15.00", ["BTCUSD", "ETHUSD"]),
]  # fmt: skip


def forwards(apps, schema_editor):
    group_model = apps.get_model("ib", "SymbolGroup")
    member_model = apps.get_model("ib", "SymbolGroupMember")
    for code, name, markup, symbols in GROUPS:
        group, _ = group_model.objects.get_or_create(
            code=code, defaults={"name": name, "spread_markup_per_lot": Decimal(markup)}
        )
        for symbol in symbols:
            member_model.objects.get_or_create(symbol=symbol, defaults={"group": group})


class Migration(migrations.Migration):
    dependencies = [("ib", "0002_deal_position_index")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
