"""Withdrawals for the staff roles: Finance approves (four eyes), Compliance and Support look (see crm/roles.py)."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "Finance": ["payments.view_withdrawal", "payments.change_withdrawal", "payments.approve_withdrawal"],
    "Compliance": ["payments.view_withdrawal"],
    "Support": ["payments.view_withdrawal"],
}


class Migration(migrations.Migration):
    dependencies = [("payments", "0006_withdrawals"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
