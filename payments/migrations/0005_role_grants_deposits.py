"""Deposits for the staff roles (see crm/roles.py); the sandbox PSP's own table stays Administrator-only."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "Finance": ["payments.view_deposit", "payments.change_deposit"],
    "Compliance": ["payments.view_deposit"],
    "Support": ["payments.view_deposit"],
}


class Migration(migrations.Migration):
    dependencies = [("payments", "0004_deposits"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
