"""Transfers for the staff roles (see crm/roles.py)."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "Finance": ["payments.view_transfer"],
    "Support": ["payments.view_transfer"],
    "Compliance": ["payments.view_transfer"],
    "Dealing": ["payments.view_transfer"],
}


class Migration(migrations.Migration):
    dependencies = [("payments", "0008_transfers"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
