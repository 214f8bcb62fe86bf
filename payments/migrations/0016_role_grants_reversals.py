"""Finance and Compliance see refunds and chargebacks (they are made by PSP events, never by hand)."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "Finance": ["payments.view_depositreversal"],
    "Compliance": ["payments.view_depositreversal"],
    "Support": ["payments.view_depositreversal"],
}


class Migration(migrations.Migration):
    dependencies = [("payments", "0015_reversals_fx_routing"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
