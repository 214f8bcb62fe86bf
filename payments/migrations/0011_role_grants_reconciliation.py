"""Finance and Compliance read reconciliation reports (see crm/roles.py)."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "Finance": ["payments.view_reconciliationreport"],
    "Compliance": ["payments.view_reconciliationreport"],
}


class Migration(migrations.Migration):
    dependencies = [("payments", "0010_reconciliation"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
