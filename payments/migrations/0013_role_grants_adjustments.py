"""Finance proposes and approves wallet adjustments (four eyes, enforced by the service); Compliance looks."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "Finance": [
        "payments.view_manualadjustment",
        "payments.add_manualadjustment",
        "payments.change_manualadjustment",
        "payments.approve_manualadjustment",
    ],
    "Compliance": ["payments.view_manualadjustment"],
}


class Migration(migrations.Migration):
    dependencies = [("payments", "0012_adjustments"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
