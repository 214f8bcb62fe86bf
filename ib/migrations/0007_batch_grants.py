"""IB Managers and Finance see the engine's batches (and their audit) and past attributions."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "IB Manager": ["ib.view_commissionbatch", "ib.view_referralspan"],
    "Finance": ["ib.view_commissionbatch"],
}


class Migration(migrations.Migration):
    dependencies = [("ib", "0006_commission_batches")]

    operations = [sync_roles_operation(GRANTS)]
