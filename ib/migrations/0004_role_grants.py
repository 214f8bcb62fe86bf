"""IB Managers run the programme (applications, plans, symbol groups, attribution, conflicts, adjustments);
Finance sees commissions and payouts; Support sees who introduced a client."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "IB Manager": [
        "ib.view_introducingbroker",
        "ib.change_introducingbroker",
        "ib.approve_introducingbroker",
        "ib.view_commissionplan",
        "ib.add_commissionplan",
        "ib.change_commissionplan",
        "ib.view_commissionrule",
        "ib.add_commissionrule",
        "ib.change_commissionrule",
        "ib.delete_commissionrule",
        "ib.view_symbolgroup",
        "ib.add_symbolgroup",
        "ib.change_symbolgroup",
        "ib.view_symbolgroupmember",
        "ib.add_symbolgroupmember",
        "ib.change_symbolgroupmember",
        "ib.delete_symbolgroupmember",
        "ib.view_clientreferral",
        "ib.add_clientreferral",
        "ib.change_clientreferral",
        "ib.view_attributionevent",
        "ib.view_attributionconflict",
        "ib.change_attributionconflict",
        "ib.view_referrallink",
        "ib.view_referralclick",
        "ib.view_commission",
        "ib.adjust_commission",
        "ib.view_commissionadjustment",
        "ib.add_commissionadjustment",
        "ib.view_commissionpayout",
        "ib.view_commissionrun",
    ],
    "Finance": [
        "ib.view_introducingbroker",
        "ib.view_commission",
        "ib.view_commissionadjustment",
        "ib.view_commissionpayout",
        "ib.view_commissionrun",
    ],
    "Support": ["ib.view_introducingbroker", "ib.view_clientreferral"],
}


class Migration(migrations.Migration):
    dependencies = [("ib", "0003_symbol_groups"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
