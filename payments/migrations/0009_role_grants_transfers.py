"""Transfers for the staff roles (see crm/roles.py)."""

from django.db import migrations

GRANTS = {
    "Finance": ["payments.view_transfer"],
    "Support": ["payments.view_transfer"],
    "Compliance": ["payments.view_transfer"],
    "Dealing": ["payments.view_transfer"],
}


def forwards(apps, schema_editor):
    from crm.roles import sync_roles

    sync_roles(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("payments", "0008_transfers"), ("crm", "0002_staff_roles")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
