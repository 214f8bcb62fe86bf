"""Deposits for the staff roles (see crm/roles.py); the sandbox PSP's own table stays Administrator-only."""

from django.db import migrations

GRANTS = {
    "Finance": ["payments.view_deposit", "payments.change_deposit"],
    "Compliance": ["payments.view_deposit"],
    "Support": ["payments.view_deposit"],
}


def forwards(apps, schema_editor):
    from crm.roles import sync_roles

    sync_roles(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("payments", "0004_deposits"), ("crm", "0002_staff_roles")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
