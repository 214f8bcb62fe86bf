"""Grant the MT5 bridge's permissions to staff roles (see crm/roles.py)."""

from django.db import migrations

from crm.roles import sync_roles_operation

VIEW_ALL = [
    "mt5bridge.view_tradeserver",
    "mt5bridge.view_tradinggroup",
    "mt5bridge.view_tradingaccount",
    "mt5bridge.view_balanceoperation",
    "mt5bridge.view_deal",
    "mt5bridge.view_positionsnapshot",
]
GRANTS = {
    "Dealing": [
        *VIEW_ALL,
        "mt5bridge.change_tradeserver",
        "mt5bridge.change_tradinggroup",
        "mt5bridge.change_tradingaccount",
        "mt5bridge.change_balanceoperation",
    ],
    "Support": ["mt5bridge.view_tradingaccount", "mt5bridge.view_balanceoperation"],
    "Finance": ["mt5bridge.view_tradingaccount", "mt5bridge.view_balanceoperation", "mt5bridge.view_deal"],
    "Compliance": ["mt5bridge.view_tradingaccount", "mt5bridge.view_balanceoperation", "mt5bridge.view_deal"],
    "IB Manager": ["mt5bridge.view_tradingaccount", "mt5bridge.view_deal"],
}


class Migration(migrations.Migration):
    dependencies = [
        ("mt5bridge", "0001_initial"),
        ("crm", "0002_staff_roles"),
        ("django_fsm_log", "__latest__"),
    ]

    operations = [sync_roles_operation(GRANTS)]
